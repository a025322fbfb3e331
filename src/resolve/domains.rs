//! [`TenantDomains`]: tenants on domains of their own (`crm.acme.test` is tenant `acme`).
//!
//! For tenants that bring their own domain: the whole host names the tenant, through a map
//! the application configures (from its settings or its own table). The host is held to the
//! same rules as for a subdomain; a host not in the map is an unknown tenant.

use std::collections::HashMap;

use super::host::host_name;
use super::{BaseDomain, ResolveError};
use crate::tenant::TenantSlug;

/// Full domain names, each mapped to the slug of the tenant it belongs to.
///
/// ```
/// use rls_tenancy::TenantDomains;
/// let domains = TenantDomains::new([("crm.acme.test", "acme"), ("billing.globex.test", "globex")])?;
/// assert_eq!(domains.slug("crm.acme.test:8443")?.as_str(), "acme");
/// assert!(domains.slug("crm.initech.test").is_err());
/// assert!(domains.slug("CRM.acme.test").is_err());
/// # Ok::<(), rls_tenancy::ResolveError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantDomains(HashMap<String, TenantSlug>);

impl TenantDomains {
    /// The map from `(domain, slug)` pairs; each domain is validated as a [`BaseDomain`] and
    /// each slug as a [`TenantSlug`].
    ///
    /// # Errors
    /// [`ResolveError::InvalidHost`] for a malformed domain, [`ResolveError::Tenant`] for a
    /// malformed slug.
    ///
    /// ```
    /// # use rls_tenancy::TenantDomains;
    /// assert!(TenantDomains::new([("crm.acme.test", "acme")]).is_ok());
    /// assert!(TenantDomains::new([("crm.acme.test:80", "acme")]).is_err());
    /// assert!(TenantDomains::new([("crm.acme.test", "Acme")]).is_err());
    /// ```
    pub fn new<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ResolveError> {
        pairs
            .into_iter()
            .map(|(domain, slug)| {
                let domain = BaseDomain::parse(domain)?;
                Ok((domain.as_str().to_owned(), slug.parse()?))
            })
            .collect::<Result<HashMap<_, _>, ResolveError>>()
            .map(Self)
    }

    /// The slug of the tenant whose domain `host` (the request's `Host`, port included) is.
    ///
    /// # Errors
    /// [`ResolveError::InvalidHost`] for a malformed host (HTTP 400),
    /// [`ResolveError::TenantNotFound`] for a host no tenant has (HTTP 404).
    ///
    /// ```
    /// # use rls_tenancy::{ResolveError, TenantDomains};
    /// let domains = TenantDomains::new([("crm.acme.test", "acme")])?;
    /// assert!(matches!(domains.slug("crm.acme.test."), Ok(s) if s.as_str() == "acme"));
    /// assert!(matches!(domains.slug("acme.test"), Err(ResolveError::TenantNotFound { .. })));
    /// # Ok::<(), rls_tenancy::ResolveError>(())
    /// ```
    pub fn slug(&self, host: &str) -> Result<TenantSlug, ResolveError> {
        let name = host_name(host)?;
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| ResolveError::TenantNotFound {
                name: name.to_owned(),
            })
    }
}
