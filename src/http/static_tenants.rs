//! [`route_static_tenants`]: a `Router` of its own for each static tenant, as pgschemas'
//! per-tenant `URLCONF` (`www` a landing site, `blog` its own pages), while every dynamic
//! tenant shares the default one.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use tower::ServiceExt;

use super::AppState;
use crate::tenant::TenantSlug;

/// The application's router: each request goes to its tenant's own router when the tenant
/// (resolved by the state's [`super::TenantSource`], e.g. [`super::TenantSource::Host`]) is
/// one of `statics`, else to `default`. A request that names no tenant, or one that cannot be
/// resolved, goes to `default`, whose extractors answer it (the landing page, a 404, a 400).
/// Each router carries its own state and layers ([`super::TenantTxLayer`]); the tenant is
/// resolved again there, from the registry's cache.
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use rls_tenancy::http::{AppState, TenantSource, TenantTxLayer, route_static_tenants};
/// # fn demo(state: AppState) -> Result<(), rls_tenancy::TenantError> {
/// let state = state.with_tenant_source(TenantSource::Host);
/// let site = |text: &'static str| {
///     Router::new()
///         .route("/", get(move || async move { text }))
///         .layer(TenantTxLayer)
///         .with_state(state.clone())
/// };
/// let app = route_static_tenants(
///     site("the tenants' app"),
///     [("www".parse()?, site("landing page")), ("blog".parse()?, site("blog"))],
///     state.clone(),
/// );
/// # Ok(()) }
/// ```
pub fn route_static_tenants(
    default: Router,
    statics: impl IntoIterator<Item = (TenantSlug, Router)>,
    state: AppState,
) -> Router {
    let statics: Arc<HashMap<TenantSlug, Router>> = Arc::new(statics.into_iter().collect());
    Router::new().fallback(move |request: Request| {
        let (statics, default, state) = (Arc::clone(&statics), default.clone(), state.clone());
        async move {
            let (parts, body) = request.into_parts();
            let chosen = match state.tenant_source().resolve(&parts, &state).await {
                Ok(Some(scope)) => statics.get(scope.slug()).cloned(),
                _ => None,
            };
            let request = Request::from_parts(parts, body);
            chosen.unwrap_or(default).oneshot(request).await
        }
    })
}
