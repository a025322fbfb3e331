//! [`TenantScope`]: a resolved tenant, the one thing every tenant operation needs.

use std::hash::{Hash, Hasher};

use super::{TenantId, TenantSlug};

/// A tenant that has been resolved through the registry: its id and its slug.
///
/// Holding a `TenantScope` is the only way to open a tenant transaction
/// (`TenantPool::begin`). It is built by a resolver (subdomain, header, path, registry id) or,
/// for trusted code such as seeding, from both parts directly.
///
/// Two scopes are the same tenant when their ids are equal, whatever slug each carries: a
/// job that rebuilds a scope from a stored id, after the tenant was renamed, still runs in
/// the transactions of that tenant.
///
/// ```
/// use rls_tenancy::{TenantId, TenantScope};
/// let scope = TenantScope::new(TenantId::new(1)?, "tenant-1".parse()?);
/// assert_eq!(scope.id(), TenantId::new(1)?);
/// assert_eq!(scope.slug().as_str(), "tenant-1");
/// assert_eq!(scope, TenantScope::new(TenantId::new(1)?, "renamed".parse()?));
/// # Ok::<(), rls_tenancy::TenantError>(())
/// ```
#[derive(Debug, Clone, serde::Serialize)]
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
    /// # Ok::<(), rls_tenancy::TenantError>(())
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
    /// # Ok::<(), rls_tenancy::TenantError>(())
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
    /// # Ok::<(), rls_tenancy::TenantError>(())
    /// ```
    pub fn slug(&self) -> &TenantSlug {
        &self.slug
    }
}

impl PartialEq for TenantScope {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for TenantScope {}

impl Hash for TenantScope {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}
