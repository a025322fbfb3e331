//! The resolvers as our users know them: `TenantScope::from_subdomain` and friends.

use http::HeaderMap;

use super::{BaseDomain, ResolveError, TenantHeader, TenantPath, TenantRegistry, subdomain_slug};
use crate::tenant::TenantScope;

impl TenantScope {
    /// Resolves the tenant a request's host names: `slug.<base>` → the registry's tenant.
    ///
    /// Returns `Ok(None)` for the bare base domain (no tenant: show the landing page).
    ///
    /// # Errors
    /// [`ResolveError::InvalidHost`] for a malformed host (HTTP 400),
    /// [`ResolveError::TenantNotFound`] for an unknown or inactive tenant (HTTP 404), a
    /// database error when the registry cannot be read.
    ///
    /// ```no_run
    /// use rls_tenancy::{BaseDomain, TenantRegistry, TenantScope};
    /// # async fn demo(registry: TenantRegistry) -> rls_tenancy::Result<()> {
    /// let base: BaseDomain = "localhost".parse()?;
    /// let scope = TenantScope::from_subdomain("tenant-1.localhost:8080", &base, &registry).await?;
    /// assert_eq!(scope.map(|s| s.slug().to_string()).as_deref(), Some("tenant-1"));
    /// assert!(TenantScope::from_subdomain("localhost:8080", &base, &registry).await?.is_none());
    /// # Ok(()) }
    /// ```
    pub async fn from_subdomain(
        host: &str,
        base: &BaseDomain,
        registry: &TenantRegistry,
    ) -> Result<Option<TenantScope>, ResolveError> {
        match subdomain_slug(host, base)? {
            Some(slug) => Ok(Some(registry.resolve(&slug).await?)),
            None => Ok(None),
        }
    }

    /// Resolves the tenant named by a configured header.
    ///
    /// # Errors
    /// As [`TenantHeader::slug`] (HTTP 400) and [`TenantRegistry::resolve`] (HTTP 404).
    ///
    /// ```no_run
    /// use rls_tenancy::{TenantHeader, TenantRegistry, TenantScope};
    /// # async fn demo(registry: TenantRegistry, headers: http::HeaderMap) -> rls_tenancy::Result<()> {
    /// let header = TenantHeader::new("x-tenant")?;
    /// let scope = TenantScope::from_header(&headers, &header, &registry).await?;
    /// # Ok(()) }
    /// ```
    pub async fn from_header(
        headers: &HeaderMap,
        header: &TenantHeader,
        registry: &TenantRegistry,
    ) -> Result<TenantScope, ResolveError> {
        registry.resolve(&header.slug(headers)?).await
    }

    /// Resolves the tenant named by a path prefix; returns it with the rest of the path.
    ///
    /// # Errors
    /// As [`TenantPath::slug`] (HTTP 400) and [`TenantRegistry::resolve`] (HTTP 404).
    ///
    /// ```no_run
    /// use rls_tenancy::{TenantPath, TenantRegistry, TenantScope};
    /// # async fn demo(registry: TenantRegistry) -> rls_tenancy::Result<()> {
    /// let (scope, rest) = TenantScope::from_path("/t/acme/subtasks", &TenantPath::default(), &registry).await?;
    /// assert_eq!(rest, "/subtasks");
    /// # Ok(()) }
    /// ```
    pub async fn from_path<'p>(
        path: &'p str,
        prefix: &TenantPath,
        registry: &TenantRegistry,
    ) -> Result<(TenantScope, &'p str), ResolveError> {
        let (slug, rest) = prefix.slug(path)?;
        Ok((registry.resolve(&slug).await?, rest))
    }
}
