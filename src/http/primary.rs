//! [`use_primary`] as an axum middleware: a route whose reads must see the primary.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// Sends every [`crate::RoutingPool::read`] the route makes to the primary, as
/// [`crate::use_primary`] does for a block of code (django-multidb-router's `use_primary_db`
/// as a decorator): for a route that must see the latest committed state. Unlike
/// [`super::writing_route`] it sets no pinning cookie: later requests read where they would
/// have. A middleware for one route or a router.
///
/// ```no_run
/// use axum::{Router, middleware::from_fn, routing::get};
/// async fn balance() -> &'static str { "42" }
/// let app: Router = Router::new().route("/balance", get(balance).layer(from_fn(rls_tenancy::http::use_primary)));
/// ```
pub async fn use_primary(request: Request, next: Next) -> Response {
    crate::route::use_primary(next.run(request)).await
}
