//! [`Authorize`]: the application's check that the caller belongs to the tenant the request
//! names, run by the extractors before any transaction opens.

use axum::http::request::Parts;
use futures_util::future::BoxFuture;

use super::AppError;
use crate::tenant::TenantScope;

/// Decides whether a request may act for the tenant it names: the application's membership
/// check (is this user a member of this org?). [`super::Tenant`] and [`super::Tx`] run it
/// once per request, after the tenant is resolved and before a transaction is opened; an
/// `Err` is the response (use [`AppError::Forbidden`] for a 403 with a generic body).
///
/// ```
/// use axum::http::request::Parts;
/// use rls_tenancy::TenantScope;
/// use rls_tenancy::http::{AppError, Authorize};
///
/// /// Who the authentication middleware says the caller is, and the tenants they belong to.
/// #[derive(Clone)]
/// struct Member { tenants: Vec<String> }
///
/// struct Members;
///
/// impl Authorize for Members {
///     async fn authorize(&self, parts: &Parts, scope: &TenantScope) -> Result<(), AppError> {
///         match parts.extensions.get::<Member>() {
///             Some(member) if member.tenants.iter().any(|t| t == scope.slug().as_str()) => Ok(()),
///             _ => Err(AppError::Forbidden),
///         }
///     }
/// }
/// ```
pub trait Authorize: Send + Sync + 'static {
    /// `Ok(())` when the request may act for `scope`'s tenant.
    ///
    /// # Errors
    /// The response to send instead, usually [`AppError::Forbidden`].
    fn authorize(
        &self,
        parts: &Parts,
        scope: &TenantScope,
    ) -> impl Future<Output = Result<(), AppError>> + Send;
}

/// [`Authorize`] behind a pointer, for the state to hold any application's hook.
pub(super) trait DynAuthorize: Send + Sync {
    fn authorize<'a>(
        &'a self,
        parts: &'a Parts,
        scope: &'a TenantScope,
    ) -> BoxFuture<'a, Result<(), AppError>>;
}

impl<A: Authorize> DynAuthorize for A {
    fn authorize<'a>(
        &'a self,
        parts: &'a Parts,
        scope: &'a TenantScope,
    ) -> BoxFuture<'a, Result<(), AppError>> {
        Box::pin(Authorize::authorize(self, parts, scope))
    }
}
