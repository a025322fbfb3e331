//! [`TenantPath`]: the tenant named by a path prefix (`/t/acme/subtasks`).
//!
//! For deployments with one host name for every tenant. The segment is held to the same rules
//! as a subdomain's tenant label; percent-encoding is refused, not decoded.

use super::ResolveError;
use crate::policy::Ident;
use crate::tenant::{TenantSlug, tenant_label};

/// A path prefix `/{prefix}/{slug}/...` naming the tenant; `/t/{slug}/...` by default.
///
/// ```
/// use rls_tenancy::TenantPath;
/// let (slug, rest) = TenantPath::default().slug("/t/acme/subtasks")?;
/// assert_eq!((slug.as_str(), rest), ("acme", "/subtasks"));
/// # Ok::<(), rls_tenancy::ResolveError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantPath {
    /// One path segment, validated as an [`Ident`].
    prefix: String,
}

impl Default for TenantPath {
    fn default() -> Self {
        Self {
            prefix: "t".to_owned(),
        }
    }
}

impl TenantPath {
    /// A resolver for `/{prefix}/{slug}/...`; `prefix` is one segment of lowercase ASCII
    /// letters, digits and underscores.
    ///
    /// # Errors
    /// [`ResolveError::InvalidPathPrefix`] when `prefix` is not of that shape.
    ///
    /// ```
    /// # use rls_tenancy::TenantPath;
    /// let (slug, _) = TenantPath::new("tenants")?.slug("/tenants/acme/")?;
    /// assert_eq!(slug.as_str(), "acme");
    /// assert!(TenantPath::new("t/x").is_err());
    /// # Ok::<(), rls_tenancy::ResolveError>(())
    /// ```
    pub fn new(prefix: &str) -> Result<Self, ResolveError> {
        Ok(Self {
            prefix: Ident::parse("path prefix", prefix)?.as_str().to_owned(),
        })
    }

    /// The slug `path` names, and the rest of the path (at least `/`).
    ///
    /// # Errors
    /// - [`ResolveError::MissingTenantPath`] when `path` does not start with `/{prefix}/`;
    /// - [`ResolveError::InvalidTenantPath`] when the segment after it is not a tenant name.
    ///
    /// ```
    /// # use rls_tenancy::{ResolveError, TenantPath};
    /// let paths = TenantPath::default();
    /// assert_eq!(paths.slug("/t/acme")?.1, "/");
    /// assert!(matches!(paths.slug("/subtasks"), Err(ResolveError::MissingTenantPath { .. })));
    /// assert!(matches!(paths.slug("/t/%61cme/"), Err(ResolveError::InvalidTenantPath { .. })));
    /// # Ok::<(), rls_tenancy::ResolveError>(())
    /// ```
    pub fn slug<'p>(&self, path: &'p str) -> Result<(TenantSlug, &'p str), ResolveError> {
        let missing = || ResolveError::MissingTenantPath {
            prefix: self.prefix.clone(),
        };
        let after = path
            .strip_prefix('/')
            .and_then(|p| p.strip_prefix(self.prefix.as_str()))
            .and_then(|p| p.strip_prefix('/'))
            .ok_or_else(missing)?;
        let (segment, rest) = match after.find('/') {
            Some(at) => after.split_at(at),
            None => (after, "/"),
        };
        let slug =
            tenant_label(segment).map_err(|reason| ResolveError::InvalidTenantPath { reason })?;
        Ok((slug, rest))
    }
}
