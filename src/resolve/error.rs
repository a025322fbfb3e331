//! [`ResolveError`]: why a request's tenant could not be found.

use super::HostError;
use crate::policy::IdentError;
use crate::tenant::{LabelError, TenantError, TenantSlug};

/// Why a tenant could not be resolved. Everything but [`ResolveError::Registry`] is the
/// caller's input: HTTP 400, or 404 for a tenant that does not exist.
///
/// ```
/// use rls_tenancy::{ResolveError, TenantHeader};
/// let header = TenantHeader::new("x-tenant")?;
/// let err = header.slug(&http::HeaderMap::new()).unwrap_err();
/// assert!(matches!(err, ResolveError::MissingTenantHeader { .. }));
/// # Ok::<(), ResolveError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// A request's host does not name a tenant in the accepted form (HTTP 400).
    #[error("invalid host: {0}")]
    InvalidHost(#[from] HostError),

    /// The configured base domain is not a plain lowercase domain name.
    #[error(
        "invalid base domain {input:?}: {reason}; pass a domain name such as example.com or localhost"
    )]
    InvalidBaseDomain {
        /// What was given, truncated for display.
        input: String,
        /// The rule it breaks.
        reason: HostError,
    },

    /// The configured tenant header name is not a valid HTTP header name.
    #[error(
        "invalid header name {input:?}: use ASCII letters, digits and hyphens, such as x-tenant"
    )]
    InvalidHeaderName {
        /// What was given, truncated for display.
        input: String,
    },

    /// The configured path prefix is not a plain identifier.
    #[error("invalid path prefix: {0}")]
    InvalidPathPrefix(#[from] IdentError),

    /// The request lacks the header that names the tenant (HTTP 400).
    #[error("the {header} header is missing: send the tenant's slug in it")]
    MissingTenantHeader {
        /// The header's name.
        header: String,
    },

    /// The header that names the tenant was sent more than once (HTTP 400).
    #[error("the {header} header was sent more than once: send exactly one tenant")]
    DuplicateTenantHeader {
        /// The header's name.
        header: String,
    },

    /// The header that names the tenant holds no valid tenant name (HTTP 400).
    #[error("invalid {header} header: {reason}")]
    InvalidTenantHeader {
        /// The header's name.
        header: String,
        /// The rule its value breaks.
        reason: LabelError,
    },

    /// The path does not start with the tenant prefix (HTTP 400, or route elsewhere).
    #[error("the path names no tenant: start it with /{prefix}/ and the tenant's slug")]
    MissingTenantPath {
        /// The configured prefix segment.
        prefix: String,
    },

    /// The path's tenant segment is not a valid tenant name (HTTP 400).
    #[error("invalid tenant in the path: {reason}")]
    InvalidTenantPath {
        /// The rule the segment breaks.
        reason: LabelError,
    },

    /// An id or slug handed to the registry is malformed (HTTP 400).
    #[error(transparent)]
    Tenant(#[from] TenantError),

    /// No active tenant has this slug (HTTP 404). Unknown and inactive look the same on
    /// purpose: the answer must not tell an outsider which tenants exist.
    #[error("no active tenant {name}: check the name, or activate the tenant in the registry")]
    TenantNotFound {
        /// The slug or id that was looked up.
        name: String,
    },

    /// The registry could not be read (HTTP 503 when the database is unreachable).
    #[error("cannot read the tenant registry: {0}")]
    Registry(#[from] sqlx::Error),
}

impl ResolveError {
    /// The not-found answer for a slug.
    pub(crate) fn not_found(slug: &TenantSlug) -> Self {
        Self::TenantNotFound {
            name: slug.to_string(),
        }
    }
}
