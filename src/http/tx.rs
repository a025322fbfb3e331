//! [`Tx`] and [`TenantTxLayer`]: one tenant transaction per request.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRef, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use sqlx::PgConnection;
use tokio::sync::{Mutex, OwnedMappedMutexGuard, OwnedMutexGuard};
use tower::{Layer, Service};

use super::pin::{WritingRoute, writes};
use super::{AppError, AppState, extract::resolve};
use crate::db::TenantTx;
use crate::route::{RoutedTx, ServedBy};

/// The request's tenant transaction, lent to the handler. Requires [`TenantTxLayer`] on the
/// router (without it, extraction fails with a logged 500).
///
/// It dereferences to [`TenantTx`], so library functions taking `&mut TenantTx` accept
/// `&mut tx`; for sqlx queries use [`Tx::conn`] (or `&mut **tx`).
///
/// It runs on the primary, read-write, unless the state routes reads
/// ([`AppState::with_routing`]): then a request with a safe method (GET, HEAD, OPTIONS,
/// TRACE) reads in a read-only transaction where [`crate::RoutingPool::read`] sends it (a
/// replica, unless pinned to the primary); [`Tx::served_by`] says which.
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use rls_tenancy::http::{AppError, AppState, TenantTxLayer, Tx};
///
/// async fn count(mut tx: Tx) -> Result<String, AppError> {
///     let n: i64 = sqlx::query_scalar("SELECT count(*) FROM app.projects")
///         .fetch_one(tx.conn())
///         .await?; // this tenant's projects only
///     Ok(format!("{n} projects"))
/// } // Ok: committed by the layer; Err: rolled back
///
/// # fn demo(state: AppState) {
/// let app: Router = Router::new()
///     .route("/count", get(count))
///     .layer(TenantTxLayer)
///     .with_state(state);
/// # }
/// ```
#[derive(Debug)]
pub struct Tx(OwnedMappedMutexGuard<Option<RoutedTx>, RoutedTx>);

impl Tx {
    /// The connection, as the executor for sqlx queries.
    ///
    /// ```no_run
    /// # async fn demo(mut tx: rls_tenancy::http::Tx) -> Result<(), sqlx::Error> {
    /// sqlx::query("SELECT 1").execute(tx.conn()).await?;
    /// # Ok(()) }
    /// ```
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.0
    }

    /// The server the transaction runs on: a replica only for a request that reads, with
    /// routing ([`AppState::with_routing`]).
    ///
    /// ```no_run
    /// # fn demo(tx: rls_tenancy::http::Tx) {
    /// println!("served by the {}", tx.served_by().as_str());
    /// # }
    /// ```
    pub fn served_by(&self) -> ServedBy {
        self.0.served_by()
    }
}

impl Deref for Tx {
    type Target = TenantTx;

    fn deref(&self) -> &TenantTx {
        &self.0
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut TenantTx {
        &mut self.0
    }
}

impl<S> FromRequestParts<S> for Tx
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        let slot = parts.extensions.get::<TxSlot>().cloned().ok_or_else(|| {
            AppError::Internal(
                "a handler takes `Tx` but the router has no TenantTxLayer: add .layer(TenantTxLayer)"
                    .into(),
            )
        })?;
        let state = AppState::from_ref(state);
        let scope = resolve(parts, &state).await?.ok_or(AppError::NotFound)?;
        let twice = || {
            AppError::Internal(
                "a request took `Tx` twice: take it once and pass `&mut tx` on".into(),
            )
        };
        let held = slot.0.try_lock_owned().map_err(|_| twice())?;
        if held.is_some() {
            return Err(twice());
        }
        let routing = state.routing();
        let tx = if state.routes_reads() {
            routing
                .begin_for_request(
                    &scope,
                    writes(&parts.method) || parts.extensions.get::<WritingRoute>().is_some(),
                )
                .await?
        } else {
            routing.begin(&scope).await?
        };
        Ok(Self(OwnedMutexGuard::map(held, |held| held.insert(tx))))
    }
}

/// The per-request place the transaction lives in: a [`Tx`] holds its lock while the handler
/// uses it; the layer takes the transaction out afterwards.
#[derive(Debug, Clone, Default)]
struct TxSlot(Arc<Mutex<Option<RoutedTx>>>);

impl TxSlot {
    /// Commits or rolls back according to `response`, and returns the response to send;
    /// a committed one carries the [`ServedBy`] of its transaction in its extensions.
    async fn finish(&self, mut response: Response) -> Response {
        let Ok(mut held) = self.0.try_lock() else {
            // A `Tx` outlived the handler. Its transaction is rolled back when the last
            // handle goes; the client must not be told its work was saved.
            return AppError::Internal(
                "a tenant transaction outlived its request (moved out of the handler?); it was not committed"
                    .into(),
            )
            .into_response();
        };
        let Some(tx) = held.take() else {
            return response;
        };
        drop(held);
        let status = response.status();
        if status.is_success() || status.is_redirection() {
            let served_by = tx.served_by();
            match tx.commit().await {
                Ok(()) => {
                    response.extensions_mut().insert(served_by);
                    response
                }
                Err(e) => AppError::from(e).into_response(),
            }
        } else {
            if let Err(e) = tx.rollback().await {
                tracing::warn!(error = %e, "could not roll back a failed request's transaction");
            }
            response
        }
    }
}

/// The middleware that gives each request a slot for its [`Tx`] and commits or rolls the
/// transaction back once the response is known. See [the HTTP module](crate::http#one-transaction-per-request-a-layer-and-an-extractor)
/// for why it takes both.
///
/// ```no_run
/// use axum::Router;
/// use rls_tenancy::http::{AppState, TenantTxLayer};
/// # fn demo(routes: Router<AppState>, state: AppState) {
/// let app: Router = routes.layer(TenantTxLayer).with_state(state);
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TenantTxLayer;

impl<S> Layer<S> for TenantTxLayer {
    type Service = TenantTxService<S>;

    fn layer(&self, inner: S) -> TenantTxService<S> {
        TenantTxService { inner }
    }
}

/// The service [`TenantTxLayer`] wraps around the routes.
///
/// ```no_run
/// use tower::Layer;
/// # fn demo(routes: axum::Router) {
/// let service = rls_tenancy::http::TenantTxLayer.layer(routes);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TenantTxService<S> {
    inner: S,
}

impl<S> Service<Request> for TenantTxService<S>
where
    S: Service<Request, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let slot = TxSlot::default();
        request.extensions_mut().insert(slot.clone());
        // The clone that was polled ready is the one to call (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).await?;
            Ok(slot.finish(response).await)
        })
    }
}
