//! Liveness and readiness: [`healthz`], [`readyz`] and [`health_routes`] for both.

use axum::Router;
use axum::extract::{FromRef, State};
use axum::routing::get;

use super::{AppError, AppState, Unavailable};

/// Liveness: the process is up and answering. Never touches the database, so an
/// orchestrator does not restart a healthy process during a database outage.
///
/// ```no_run
/// use axum::{Router, routing::get};
/// let app: Router = Router::new().route("/healthz", get(rls_tenancy::http::healthz));
/// ```
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: a connection from the pool runs a trivial tenant-free query (`SELECT 1`, in
/// the simple protocol, so it is pooler-safe) within [`AppState::ready_timeout`]. `200 ready`
/// when it does, else a 503 with `Retry-After`, the cause logged. Point a load balancer's
/// readiness check here: it takes the instance out while the database cannot be reached
/// and back in, with no restart, once it can.
///
/// # Errors
/// [`Unavailable::NotReady`] (a 503) when the query fails or does not answer in time.
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use rls_tenancy::http::{AppState, readyz};
/// # fn demo(state: AppState) {
/// let app: Router = Router::new().route("/readyz", get(readyz)).with_state(state);
/// # }
/// ```
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, AppError> {
    match state.pool().ping(state.ready_timeout()).await {
        Ok(()) => Ok("ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness probe failed");
            Err(Unavailable::NotReady.into())
        }
    }
}

/// `GET /healthz` ([`healthz`]) and `GET /readyz` ([`readyz`]), to merge into an app's
/// router outside its [`RequestLimits`](super::RequestLimits), so probes are never shed.
///
/// ```no_run
/// use axum::Router;
/// use rls_tenancy::http::{AppState, health_routes};
/// # fn demo(state: AppState, routes: Router<AppState>) {
/// let app: Router = routes.merge(health_routes()).with_state(state);
/// # }
/// ```
pub fn health_routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    AppState: FromRef<S>,
{
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}
