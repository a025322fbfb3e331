//! The demo's router: the landing page, the subtask page as HTML and JSON, `/healthz` and
//! `/readyz`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use tower_http::trace::TraceLayer;
use tracing::Span;

use super::html;
use super::page::PageNumber;
use super::subtasks::{SUBTASKS_PER_PAGE, subtask_page};
use crate::http::{AppError, AppState, RequestLimits, Tenant, TenantTxLayer, Tx, health_routes};

/// The demo router's state: the HTTP layer's [`AppState`] and what the landing page shows.
///
/// ```no_run
/// # fn demo(app: rls_tenancy::http::AppState) {
/// use rls_tenancy::demo::{DemoState, router};
/// let app = router(DemoState::new(app, Vec::new()));
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DemoState {
    app: AppState,
    links: Arc<[String]>,
    limits: RequestLimits,
}

impl DemoState {
    /// State for the demo router. `links` are tenant URLs the landing page offers; pass
    /// them only for the tenants the demo seeded itself (embedded mode), never for real
    /// tenants.
    ///
    /// ```no_run
    /// # fn demo(app: rls_tenancy::http::AppState) {
    /// let state = rls_tenancy::demo::DemoState::new(app, vec!["http://tenant-1.localhost:8080/".into()]);
    /// # }
    /// ```
    pub fn new(app: AppState, links: Vec<String>) -> Self {
        Self {
            app,
            links: links.into(),
            limits: RequestLimits::default(),
        }
    }

    /// The request deadline and in-flight bound of the pages (default
    /// [`RequestLimits::default`]); the probes are never limited.
    ///
    /// ```no_run
    /// # fn demo(state: rls_tenancy::demo::DemoState) {
    /// use rls_tenancy::http::RequestLimits;
    /// let state = state.with_limits(RequestLimits::default().max_in_flight(32));
    /// # }
    /// ```
    pub fn with_limits(mut self, limits: RequestLimits) -> Self {
        self.limits = limits;
        self
    }
}

impl FromRef<DemoState> for AppState {
    fn from_ref(state: &DemoState) -> AppState {
        state.app.clone()
    }
}

/// The demo's routes, with request logging, the tenant transaction layer and the
/// [`RequestLimits`] around the pages (not around the probes):
///
/// | request | answer |
/// |---|---|
/// | `GET /` on `<tenant>.<base>` | redirect to `/subtasks` |
/// | `GET /` on `<base>` | the landing page, nothing tenant-specific |
/// | `GET /subtasks?page=N` | the tenant's subtasks by name, 10 a page, as HTML |
/// | `GET /api/subtasks?page=N` | the same as JSON: `tenant`, `page`, `per_page`, `total`, `items` |
/// | `GET /healthz` | `ok`, on any host: the process is alive |
/// | `GET /readyz` | `ready`, or a 503 with `Retry-After` while the database does not answer |
///
/// ```no_run
/// # async fn demo(state: rls_tenancy::demo::DemoState) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// axum::serve(listener, rls_tenancy::demo::router(state)).await?;
/// # Ok(()) }
/// ```
pub fn router(state: DemoState) -> Router {
    let pages = Router::new()
        .route("/", get(home))
        .route("/subtasks", get(subtasks_html))
        .route("/api/subtasks", get(subtasks_json))
        .fallback(not_found)
        .layer(TenantTxLayer);
    state
        .limits
        .apply(pages)
        .merge(health_routes())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    tracing::info_span!(
                        "request",
                        method = %request.method(),
                        path = %request.uri().path(),
                        tenant = tracing::field::Empty,
                    )
                })
                .on_response(|response: &Response, latency: Duration, _: &Span| {
                    tracing::info!(status = response.status().as_u16(), ?latency, "answered");
                })
                // Failures are logged once, by AppError, at the level they deserve.
                .on_failure(()),
        )
        .with_state(state)
}

async fn home(tenant: Option<Tenant>, State(state): State<DemoState>) -> Response {
    match tenant {
        Some(_) => Redirect::to("/subtasks").into_response(),
        None => page_response(html::landing(
            state.app.base_domain().as_str(),
            &state.links,
        )),
    }
}

async fn subtasks_html(page: PageNumber, mut tx: Tx) -> Result<Response, AppError> {
    let page = subtask_page(&mut tx, page.get(), SUBTASKS_PER_PAGE).await?;
    Ok(page_response(html::subtasks(&page, tx.scope())))
}

async fn subtasks_json(page: PageNumber, mut tx: Tx) -> Result<Response, AppError> {
    let page = subtask_page(&mut tx, page.get(), SUBTASKS_PER_PAGE).await?;
    let mut response = Json(page).into_response();
    private(&mut response);
    Ok(response)
}

async fn not_found() -> AppError {
    AppError::NotFound
}

/// An HTML response that runs no script and is never cached or shared between tenants.
fn page_response(body: String) -> Response {
    let mut response = Html(body).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    response.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    private(&mut response);
    response
}

/// Tenant pages depend on the host and must not be kept by shared caches.
fn private(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::VARY, HeaderValue::from_static("host"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}
