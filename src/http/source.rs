//! [`TenantSource`]: where the extractors read the request's tenant from, and
//! [`TenantClaim`], the tenant an application's own authentication put on the request.

use axum::http::request::Parts;

use super::host::request_host;
use super::{AppError, AppState};
use crate::resolve::{TenantDomains, TenantHeader, TenantPath};
use crate::tenant::{TenantId, TenantScope, TenantSlug};

/// Where [`super::Tenant`] and [`super::Tx`] find the request's tenant. Whatever the source,
/// the name is checked strictly and looked up in the [`crate::TenantRegistry`] (an unknown or
/// inactive tenant is a 404), and the state's authorization hook
/// ([`super::AppState::with_authorization`]) runs before any transaction opens.
///
/// A host, a header or a path *names* a tenant; none of them proves that the caller belongs
/// to it. Put an authorization hook in front, or take the tenant from what your
/// authentication established ([`TenantSource::Claim`]).
///
/// ```
/// use rls_tenancy::http::TenantSource;
/// use rls_tenancy::{TenantHeader, TenantPath};
/// assert!(matches!(TenantSource::default(), TenantSource::Subdomain));
/// let header = TenantSource::Header(TenantHeader::new("x-tenant")?);
/// let path = TenantSource::PathPrefix(TenantPath::default());
/// # Ok::<(), rls_tenancy::ResolveError>(())
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum TenantSource {
    /// `slug.<base domain>` in the request's host (read as the state's
    /// [`super::HostSource`] says); the bare base domain is no tenant. The default.
    #[default]
    Subdomain,
    /// The whole host, through a map of tenants' own domains.
    Domain(TenantDomains),
    /// The whole host in the registry's domains table (a tenant's own domain), else
    /// `slug.<base domain>`: routing by full domain and by subdomain, as the
    /// schema-per-tenant tools do ([`crate::TenantRegistry::resolve_host`]). A host no
    /// tenant has is a 404; the bare base domain is no tenant.
    Host,
    /// A header naming the tenant's slug (`X-Tenant: acme`), for services behind a gateway
    /// that has decided the tenant.
    Header(TenantHeader),
    /// A path prefix, `/{prefix}/{slug}/...`, for one host name shared by every tenant.
    PathPrefix(TenantPath),
    /// A [`TenantClaim`] the application's own authentication layer put into the request's
    /// extensions (from a session, a JWT claim, an API key). No claim is no tenant.
    Claim,
}

/// The tenant an application's authentication established for a request, put into the
/// request's extensions by its own middleware, for [`TenantSource::Claim`].
///
/// ```
/// use rls_tenancy::http::TenantClaim;
/// let mut request = axum::http::Request::new(());
/// // In the authentication middleware, after checking the token:
/// request.extensions_mut().insert(TenantClaim::Slug("acme".parse()?));
/// # Ok::<(), rls_tenancy::TenantError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantClaim {
    /// The tenant's slug.
    Slug(TenantSlug),
    /// The tenant's id, of the declaration's key type.
    Id(TenantId),
}

impl TenantSource {
    /// The request's tenant, or `None` when the request names none (the bare base domain,
    /// no claim).
    pub(super) async fn resolve(
        &self,
        parts: &Parts,
        state: &AppState,
    ) -> Result<Option<TenantScope>, AppError> {
        let registry = state.registry();
        let scope = match self {
            Self::Subdomain => {
                let host = request_host(parts, state.host_source())?;
                TenantScope::from_subdomain(&host, state.base_domain(), registry).await?
            }
            Self::Domain(domains) => {
                let host = request_host(parts, state.host_source())?;
                Some(registry.resolve(&domains.slug(&host)?).await?)
            }
            Self::Host => {
                let host = request_host(parts, state.host_source())?;
                registry
                    .resolve_host(&host, Some(state.base_domain()))
                    .await?
            }
            Self::Header(header) => {
                Some(TenantScope::from_header(&parts.headers, header, registry).await?)
            }
            Self::PathPrefix(prefix) => {
                let (scope, _) = TenantScope::from_path(parts.uri.path(), prefix, registry).await?;
                Some(scope)
            }
            Self::Claim => match parts.extensions.get::<TenantClaim>() {
                Some(TenantClaim::Slug(slug)) => Some(registry.resolve(slug).await?),
                Some(TenantClaim::Id(id)) => Some(registry.resolve_id(*id).await?),
                None => None,
            },
        };
        Ok(scope)
    }
}
