//! The demo's router: the landing page, the subtask page as HTML and JSON, `/healthz` and
//! `/readyz`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, Path, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::map_response;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tower_http::trace::TraceLayer;
use tracing::Span;

use super::html;
use super::item;
use super::page::PageNumber;
use super::subtasks::{SUBTASKS_PER_PAGE, SubtaskItem, subtask_page};
use crate::http::{
    AppError, AppState, PinKey, RequestLimits, Tenant, TenantTxLayer, Tx, WritePinning,
    health_routes,
};
use crate::route::{RoutingPool, ServedBy};

/// The response header naming the server that served a read, with `--debug-routing`.
const SERVED_BY: HeaderName = HeaderName::from_static("x-served-by");

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
    pinning: WritePinning,
    debug_routing: bool,
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
            pinning: WritePinning::new(random_key()),
            debug_routing: false,
        }
    }

    /// Routes the pages' reads and writes through `routing` (replicas, pinning) instead of
    /// the primary alone: the list pages and `GET /api/subtasks/{id}` read on a replica
    /// unless pinned, the toggle writes on the primary ([`AppState::with_routing`]).
    ///
    /// ```no_run
    /// # fn demo(state: rls_tenancy::demo::DemoState, routing: rls_tenancy::RoutingPool) {
    /// let state = state.with_routing(routing);
    /// # }
    /// ```
    pub fn with_routing(mut self, routing: RoutingPool) -> Self {
        self.app = self.app.with_routing(routing);
        self
    }

    /// The write-pinning cookie's settings (default: [`WritePinning::new`] with a key drawn
    /// at start-up, so pins do not survive a restart).
    ///
    /// ```no_run
    /// # fn demo(state: rls_tenancy::demo::DemoState) -> Result<(), rls_tenancy::http::PinKeyError> {
    /// use rls_tenancy::http::{PinKey, WritePinning};
    /// let state = state.with_pinning(WritePinning::new(PinKey::new(&[7u8; 32])?).secure(true));
    /// # Ok(()) }
    /// ```
    pub fn with_pinning(mut self, pinning: WritePinning) -> Self {
        self.pinning = pinning;
        self
    }

    /// Whether the pages name the server that served them (`x-served-by: primary` or
    /// `replica`); off by default (`--debug-routing`).
    ///
    /// ```no_run
    /// # fn demo(state: rls_tenancy::demo::DemoState) {
    /// let state = state.with_debug_routing(true);
    /// # }
    /// ```
    pub fn with_debug_routing(mut self, on: bool) -> Self {
        self.debug_routing = on;
        self
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
/// | `GET /subtasks?page=N` | the tenant's subtasks by name, 10 a page, as HTML, read on a replica unless pinned |
/// | `GET /api/subtasks?page=N` | the same as JSON: `tenant`, `page`, `per_page`, `total`, `items` |
/// | `GET /api/subtasks/{id}` | one subtask as JSON, read on a replica unless pinned |
/// | `POST /api/subtasks/{id}/toggle` | flips whether it is done on the primary, returns it, sets the pinning cookie |
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
        .route("/api/subtasks/{id}", get(subtask_json))
        .route("/api/subtasks/{id}/toggle", post(toggle_json))
        .fallback(not_found)
        .layer(TenantTxLayer);
    let pages = if state.debug_routing {
        pages.layer(map_response(name_the_server))
    } else {
        pages
    };
    let pages = state
        .pinning
        .clone()
        .apply(pages, state.app.routing().clone());
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

async fn subtask_json(
    Tenant(scope): Tenant,
    Path(id): Path<String>,
    State(state): State<DemoState>,
) -> Result<Response, AppError> {
    let id = item::parse_id(&id)?;
    let (found, served_by) = item::read(state.app.routing(), &scope, id).await?;
    Ok(item_response(found, served_by))
}

async fn toggle_json(
    Tenant(scope): Tenant,
    Path(id): Path<String>,
    State(state): State<DemoState>,
) -> Result<Response, AppError> {
    let id = item::parse_id(&id)?;
    let mut tx = state.app.routing().begin(&scope).await?;
    let Some(toggled) = item::toggle(&mut tx, id).await? else {
        tx.rollback().await?;
        return Err(AppError::NotFound);
    };
    let served_by = tx.served_by();
    tx.commit().await?;
    Ok(item_response(Some(toggled), served_by))
}

/// The subtask as JSON, or a 404, marked with the server that served it.
fn item_response(found: Option<SubtaskItem>, served_by: ServedBy) -> Response {
    let mut response = match found {
        Some(item) => Json(item).into_response(),
        None => AppError::NotFound.into_response(),
    };
    private(&mut response);
    response.extensions_mut().insert(served_by);
    response
}

/// With `--debug-routing`: names the server that served a response in `x-served-by`, from
/// the [`ServedBy`] its transaction left in its extensions (the [`TenantTxLayer`] for the
/// pages, [`item_response`] for the subtask API).
async fn name_the_server(mut response: Response) -> Response {
    if let Some(served_by) = response.extensions().get::<ServedBy>().copied() {
        response
            .headers_mut()
            .insert(SERVED_BY, HeaderValue::from_static(served_by.as_str()));
    }
    response
}

/// A pinning key drawn from rand's thread generator (seeded by the operating system).
fn random_key() -> PinKey {
    let mut secret = [0u8; 32];
    rand::fill(&mut secret);
    PinKey::new(&secret).unwrap_or_else(|_| unreachable!("32 bytes make a key"))
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
