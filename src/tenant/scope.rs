//! [`TenantScope`]: a resolved tenant, the one thing every tenant operation needs.

use super::{TenantId, TenantSlug};

/// A tenant that has been resolved through the registry: its id and its slug.
///
/// Holding a `TenantScope` is the only way to open a tenant transaction
/// ([`crate::TenantPool::begin`]). It is built by a resolver (subdomain, header, path) or,
/// for trusted code such as seeding, from both parts directly.
///
/// ```
/// use rls_tenancy::{TenantId, TenantScope};
/// let scope = TenantScope::new(TenantId::new(1)?, "tenant-1".parse()?);
/// assert_eq!(scope.id().get(), 1);
/// assert_eq!(scope.slug().as_str(), "tenant-1");
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct TenantScope {
    id: TenantId,
    slug: TenantSlug,
}

impl TenantScope {
    /// A scope for a tenant whose id and slug are already known to belong together.
    ///
    /// ```
    /// # use rls_tenancy::{TenantId, TenantScope};
    /// let scope = TenantScope::new(TenantId::new(2)?, "acme".parse()?);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn new(id: TenantId, slug: TenantSlug) -> Self {
        Self { id, slug }
    }

    /// The tenant's id, the value of the tenant column.
    ///
    /// ```
    /// # use rls_tenancy::{TenantId, TenantScope};
    /// # let scope = TenantScope::new(TenantId::new(2)?, "acme".parse()?);
    /// assert_eq!(scope.id(), TenantId::new(2)?);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn id(&self) -> TenantId {
        self.id
    }

    /// The tenant's slug.
    ///
    /// ```
    /// # use rls_tenancy::{TenantId, TenantScope};
    /// # let scope = TenantScope::new(TenantId::new(2)?, "acme".parse()?);
    /// assert_eq!(scope.slug().as_str(), "acme");
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn slug(&self) -> &TenantSlug {
        &self.slug
    }
}
