//! [`Tenant`]: the extractor that resolves the request's host to a [`TenantScope`].

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;

use super::host::request_host;
use super::{AppError, AppState};
use crate::tenant::TenantScope;

/// The tenant a request is for, resolved from the host it was sent to.
///
/// `tenant-1.<base domain>` resolves through the [`crate::TenantRegistry`] to tenant
/// `tenant-1`. The host is read from the request's own `Host` (or `:authority`) only,
/// unless the state's [`super::HostSource`] trusts a proxy; it is parsed strictly by
/// [`crate::subdomain_slug`]. Rejections are [`AppError`]s:
///
/// - a malformed host, several `Host` headers, or `Host` and `:authority` disagreeing: 400;
/// - an unknown or inactive tenant: 404;
/// - the bare base domain (no tenant at all): 404 for `Tenant`, `None` for
///   `Option<Tenant>`, which is how a landing page shares a router with tenant pages.
///
/// The resolution is done once per request and kept in the request's extensions, so
/// [`super::Tx`] and `Tenant` in one handler look the registry up once. The tenant id is
/// recorded in the current span's `tenant` field when it has one.
///
/// ```no_run
/// use axum::{Router, routing::get};
/// use rls_tenancy::http::{AppState, Tenant};
///
/// async fn whoami(Tenant(scope): Tenant) -> String {
///     format!("you are tenant {} ({})", scope.slug(), scope.id())
/// }
///
/// async fn home(tenant: Option<Tenant>) -> &'static str {
///     match tenant {
///         Some(_) => "a tenant's home",
///         None => "the landing page: no tenant here",
///     }
/// }
///
/// # fn demo(state: AppState) {
/// let app: Router = Router::new()
///     .route("/", get(home))
///     .route("/whoami", get(whoami))
///     .with_state(state);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant(pub TenantScope);

/// The request's resolved tenant (`None` for the bare base domain), cached per request.
#[derive(Debug, Clone)]
struct Resolved(Option<TenantScope>);

/// Resolves the request's tenant once and remembers it in the request's extensions.
pub(super) async fn resolve(
    parts: &mut Parts,
    state: &AppState,
) -> Result<Option<TenantScope>, AppError> {
    if let Some(Resolved(scope)) = parts.extensions.get::<Resolved>() {
        return Ok(scope.clone());
    }
    let host = request_host(parts, state.host_source())?;
    let scope = TenantScope::from_subdomain(&host, state.base_domain(), state.registry()).await?;
    if let Some(scope) = &scope {
        tracing::Span::current().record("tenant", tracing::field::display(scope.id()));
    }
    parts.extensions.insert(Resolved(scope.clone()));
    Ok(scope)
}

impl<S> FromRequestParts<S> for Tenant
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        resolve(parts, &AppState::from_ref(state))
            .await?
            .map(Tenant)
            .ok_or(AppError::NotFound)
    }
}

impl<S> OptionalFromRequestParts<S> for Tenant
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Option<Self>, AppError> {
        Ok(resolve(parts, &AppState::from_ref(state))
            .await?
            .map(Tenant))
    }
}
