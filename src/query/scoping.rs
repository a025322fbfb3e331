//! Who a statement is for: one tenant ([`TenantScope`]) or, explicitly, all of them
//! ([`CrossTenant`]).

use std::fmt;

use super::QueryError;
use crate::tenant::{TenantId, TenantScope};

mod sealed {
    #[allow(unreachable_pub)]
    pub trait Sealed {}
    impl Sealed for crate::TenantScope {}
    impl Sealed for super::CrossTenant {}
}

/// What a statement is scoped to: implemented by [`TenantScope`] (one tenant, a predicate on
/// every tenant table) and [`CrossTenant`] (no predicate; the explicit, logged escape hatch).
/// Sealed: no other scoping exists.
///
/// ```
/// use rls_tenancy::{CrossTenant, Scoping, TenantId, TenantScope};
/// let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
/// assert_eq!(scope.tenant(), Some(TenantId::new(7)?));
/// assert_eq!(CrossTenant::new("nightly report").tenant(), None);
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
pub trait Scoping: sealed::Sealed + Clone + fmt::Debug + Send + Sync {
    /// The tenant every tenant table is filtered on; `None` only for [`CrossTenant`].
    fn tenant(&self) -> Option<TenantId>;
}

impl Scoping for TenantScope {
    fn tenant(&self) -> Option<TenantId> {
        Some(self.id())
    }
}

/// The one way to run a builder statement over tenant tables without a tenant: reports,
/// administration, seeding. Greppable on purpose.
///
/// Its statements carry no tenant predicate and run only on a `&mut PgConnection` the caller
/// owns (as the runtime role, row-level security still shows nothing without a tenant; a
/// role that may see every tenant must be chosen deliberately). Every execution logs a
/// `tracing` warning with the reason given here.
///
/// ```
/// use rls_tenancy::{CrossTenant, TenancyDeclaration};
/// use rls_tenancy::sea_query::{Expr, ExprTrait};
/// let decl = TenancyDeclaration::reference()?;
/// let report = CrossTenant::new("monthly usage report");
/// let (sql, _) = report
///     .select(&decl)
///     .from("projects")
///     .expr(Expr::col("account_id").count())
///     .build()?;
/// assert_eq!(sql, r#"SELECT COUNT("account_id") FROM "app"."projects""#);
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrossTenant {
    reason: &'static str,
}

impl CrossTenant {
    /// The cross-tenant path, with the reason it is needed (logged with every execution).
    ///
    /// ```
    /// # use rls_tenancy::CrossTenant;
    /// let admin = CrossTenant::new("support: merge duplicate accounts");
    /// assert_eq!(admin.reason(), "support: merge duplicate accounts");
    /// ```
    pub fn new(reason: &'static str) -> Self {
        Self { reason }
    }

    /// Why this path is used.
    ///
    /// ```
    /// # use rls_tenancy::CrossTenant;
    /// assert_eq!(CrossTenant::new("seeding").reason(), "seeding");
    /// ```
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl Scoping for CrossTenant {
    fn tenant(&self) -> Option<TenantId> {
        None
    }
}

/// Checks that a sub-select is scoped like the statement it goes into. The types already
/// keep scoped and cross-tenant statements apart; this keeps two tenants apart.
pub(crate) fn same_scoping<S: Scoping>(outer: &S, inner: &S) -> Result<(), QueryError> {
    match (outer.tenant(), inner.tenant()) {
        (Some(other), Some(statement)) if statement != other => {
            Err(QueryError::ScopeMismatch { statement, other })
        }
        _ => Ok(()),
    }
}
