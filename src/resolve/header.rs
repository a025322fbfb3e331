//! [`TenantHeader`]: the tenant named by a request header (`X-Tenant: acme`).
//!
//! For services behind a gateway that has already decided the tenant. The value is held to
//! the same rules as a subdomain's tenant label.

use http::{HeaderMap, HeaderName};

use super::ResolveError;
use crate::tenant::{LabelError, TenantSlug, echo, tenant_label};

/// A configured header whose value is the tenant's slug.
///
/// ```
/// use http::HeaderMap;
/// use rls_tenancy::TenantHeader;
/// let header = TenantHeader::new("x-tenant")?;
/// let mut headers = HeaderMap::new();
/// headers.insert("x-tenant", "acme".parse().expect("a header value"));
/// assert_eq!(header.slug(&headers)?.as_str(), "acme");
/// # Ok::<(), rls_tenancy::ResolveError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantHeader(HeaderName);

impl TenantHeader {
    /// The header called `name` (case-insensitive, as HTTP header names are).
    ///
    /// # Errors
    /// [`ResolveError::InvalidHeaderName`] when `name` is not a valid HTTP header name.
    ///
    /// ```
    /// # use rls_tenancy::TenantHeader;
    /// assert_eq!(TenantHeader::new("X-Tenant")?.name(), "x-tenant");
    /// assert!(TenantHeader::new("x tenant").is_err());
    /// # Ok::<(), rls_tenancy::ResolveError>(())
    /// ```
    pub fn new(name: &str) -> Result<Self, ResolveError> {
        HeaderName::try_from(name)
            .map(Self)
            .map_err(|_| ResolveError::InvalidHeaderName { input: echo(name) })
    }

    /// The header's name, in lower case.
    ///
    /// ```
    /// # use rls_tenancy::TenantHeader;
    /// assert_eq!(TenantHeader::new("x-tenant")?.name(), "x-tenant");
    /// # Ok::<(), rls_tenancy::ResolveError>(())
    /// ```
    pub fn name(&self) -> &str {
        self.0.as_str()
    }

    /// The slug the request's headers name.
    ///
    /// # Errors
    /// - [`ResolveError::MissingTenantHeader`] when the header is absent;
    /// - [`ResolveError::DuplicateTenantHeader`] when it is sent more than once;
    /// - [`ResolveError::InvalidTenantHeader`] when its value is not a tenant name.
    ///
    /// ```
    /// # use http::HeaderMap;
    /// # use rls_tenancy::{ResolveError, TenantHeader};
    /// let header = TenantHeader::new("x-tenant")?;
    /// let mut headers = HeaderMap::new();
    /// assert!(matches!(header.slug(&headers), Err(ResolveError::MissingTenantHeader { .. })));
    /// headers.append("x-tenant", "acme".parse().expect("a header value"));
    /// headers.append("x-tenant", "other".parse().expect("a header value"));
    /// assert!(matches!(header.slug(&headers), Err(ResolveError::DuplicateTenantHeader { .. })));
    /// # Ok::<(), rls_tenancy::ResolveError>(())
    /// ```
    pub fn slug(&self, headers: &HeaderMap) -> Result<TenantSlug, ResolveError> {
        let mut values = headers.get_all(&self.0).iter();
        let value = values
            .next()
            .ok_or_else(|| ResolveError::MissingTenantHeader {
                header: self.name().to_owned(),
            })?;
        if values.next().is_some() {
            return Err(ResolveError::DuplicateTenantHeader {
                header: self.name().to_owned(),
            });
        }
        let invalid = |reason| ResolveError::InvalidTenantHeader {
            header: self.name().to_owned(),
            reason,
        };
        let text =
            std::str::from_utf8(value.as_bytes()).map_err(|_| invalid(LabelError::NonAscii))?;
        tenant_label(text).map_err(invalid)
    }
}
