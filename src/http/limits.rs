//! [`RequestLimits`]: a deadline for every request and a bound on the requests in flight;
//! what goes past either is answered at once with a 503 and `Retry-After`.

use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::error::Overloaded;
use tower::timeout::error::Elapsed;
use tower::{BoxError, ServiceBuilder};

use super::{AppError, Unavailable};

/// The request deadline and the in-flight bound of a router, built from tower's layers
/// (timeout, load shedding, a concurrency limit shared by every route it is applied to).
///
/// A request admitted under the bound waits for a database connection (up to the pool's
/// acquire timeout) and must answer within the deadline; a request that arrives while the
/// bound is reached is not queued but answered at once with a 503 and `Retry-After`, so a
/// burst cannot pile up latency for everyone. When the deadline passes, the request's
/// future is dropped: its tenant transaction rolls back and the client gets a 503.
///
/// Apply it to the routes that use the database, not to liveness or readiness probes:
///
/// ```no_run
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use rls_tenancy::http::{AppState, RequestLimits, TenantTxLayer, health_routes};
/// # async fn page() -> &'static str { "" }
/// # fn demo(state: AppState) {
/// let tenant_routes = Router::new().route("/page", get(page)).layer(TenantTxLayer);
/// let limits = RequestLimits::default().timeout(Duration::from_secs(15)).max_in_flight(64);
/// let app: Router = limits.apply(tenant_routes).merge(health_routes()).with_state(state);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    timeout: Duration,
    max_in_flight: usize,
}

impl Default for RequestLimits {
    /// A 15 s deadline and 64 requests in flight.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(15),
            max_in_flight: 64,
        }
    }
}

impl RequestLimits {
    /// The deadline of a request, from its arrival to its response (default 15 s).
    ///
    /// ```
    /// # use rls_tenancy::http::RequestLimits;
    /// let limits = RequestLimits::default().timeout(std::time::Duration::from_secs(5));
    /// assert_eq!(limits.get_timeout().as_secs(), 5);
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The most requests in flight at once (at least 1, default 64); more are shed. Set it
    /// above the pool size, so a short burst waits for a connection instead of failing.
    ///
    /// ```
    /// # use rls_tenancy::http::RequestLimits;
    /// assert_eq!(RequestLimits::default().max_in_flight(0).get_max_in_flight(), 1);
    /// ```
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// The configured deadline.
    ///
    /// ```
    /// # use rls_tenancy::http::RequestLimits;
    /// assert_eq!(RequestLimits::default().get_timeout().as_secs(), 15);
    /// ```
    pub fn get_timeout(&self) -> Duration {
        self.timeout
    }

    /// The configured in-flight bound.
    ///
    /// ```
    /// # use rls_tenancy::http::RequestLimits;
    /// assert_eq!(RequestLimits::default().get_max_in_flight(), 64);
    /// ```
    pub fn get_max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Wraps every route of `router` (added so far) in the deadline and the in-flight
    /// bound; the bound is one count shared by all of them.
    ///
    /// ```no_run
    /// # fn demo(routes: axum::Router) {
    /// let routes = rls_tenancy::http::RequestLimits::default().apply(routes);
    /// # }
    /// ```
    pub fn apply<S>(&self, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        router.layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(unavailable))
                .timeout(self.timeout)
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(self.max_in_flight)),
        )
    }
}

/// The answer for a request the layers turned away.
async fn unavailable(err: BoxError) -> AppError {
    if err.is::<Overloaded>() {
        Unavailable::Overloaded.into()
    } else if err.is::<Elapsed>() {
        Unavailable::DeadlineExceeded.into()
    } else {
        AppError::Internal(format!("request layer failed: {err}"))
    }
}
