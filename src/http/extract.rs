//! [`Tenant`]: the extractor that resolves the request's tenant to a [`TenantScope`].

use axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;

use super::{AppError, AppState};
use crate::tenant::TenantScope;

/// The tenant a request is for, resolved from where the state's [`super::TenantSource`] says:
/// by default the host it was sent to, else a tenant's own domain, a header, a path prefix,
/// or a [`super::TenantClaim`] the application's authentication put on the request.
///
/// With the default, `tenant-1.<base domain>` resolves through the
/// [`crate::TenantRegistry`] to tenant `tenant-1`. The host is read from the request's own
/// `Host` (or `:authority`) only, unless the state's [`super::HostSource`] trusts a proxy;
/// it is parsed strictly by [`crate::subdomain_slug`]. Rejections are [`AppError`]s:
///
/// - a malformed host, several `Host` headers, or `Host` and `:authority` disagreeing (or a
///   missing or malformed tenant header or path segment): 400;
/// - an unknown or inactive tenant: 404;
/// - the application's authorization hook ([`AppState::with_authorization`]) refusing the
///   caller: its answer, a 403 for [`AppError::Forbidden`]; no transaction is opened;
/// - the bare base domain, or no claim (no tenant at all): 404 for `Tenant`, `None` for
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

/// Resolves the request's tenant once, runs the authorization hook on it, and remembers it
/// in the request's extensions.
pub(super) async fn resolve(
    parts: &mut Parts,
    state: &AppState,
) -> Result<Option<TenantScope>, AppError> {
    if let Some(Resolved(scope)) = parts.extensions.get::<Resolved>() {
        return Ok(scope.clone());
    }
    let scope = state.tenant_source().resolve(parts, state).await?;
    if let Some(scope) = &scope {
        tracing::Span::current().record("tenant", tracing::field::display(scope.id()));
        if let Some(hook) = state.authorization() {
            hook.authorize(parts, scope).await?;
        }
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
