//! [`Delete`]: a DELETE that always carries the tenant predicate.

use sea_query::{PostgresQueryBuilder, Query};
use sea_query_sqlx::{SqlxBinder, SqlxValues};

use super::QueryError;
use super::builder::sealed::{Builder, HasFilter, HasReturning};
use super::builder::{Base, Columns};
use super::filter::Filter;
use super::scoping::Scoping;
use super::table::WriteTable;
use crate::policy::TenancyDeclaration;
use crate::tenant::TenantScope;

/// A DELETE from a tenant table (never a global one: [`QueryError::GlobalTableWrite`]).
/// Always carries `"table"."account_id" = $tenant`: a scoped delete with no other condition
/// empties the table for its tenant and no other. Conditions come from
/// [`Filtered`](crate::Filtered), `RETURNING` from [`Returning`](crate::Returning).
///
/// ```
/// use rls_tenancy::{Filtered, TenancyDeclaration, TenantId, TenantScope};
/// use rls_tenancy::sea_query::{Expr, ExprTrait};
/// let decl = TenancyDeclaration::reference()?;
/// let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
/// let (sql, _) = scope.delete(&decl, "subtasks").and_where(Expr::col("is_complete").eq(true)).build()?;
/// assert_eq!(sql, r#"DELETE FROM "app"."subtasks" WHERE "subtasks"."account_id" = $1 AND "is_complete" = $2"#);
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Delete<'d, S: Scoping = TenantScope> {
    base: Base<'d, S>,
    table: Option<WriteTable>,
    filter: Filter<'d, S>,
    returning: Columns,
}

impl<'d, S: Scoping> Builder<'d> for Delete<'d, S> {
    type Scoping = S;
    fn base(&mut self) -> &mut Base<'d, S> {
        &mut self.base
    }
}

impl<'d, S: Scoping> HasFilter<'d> for Delete<'d, S> {
    fn filter(&mut self) -> &mut Filter<'d, S> {
        &mut self.filter
    }
}

impl<'d, S: Scoping> HasReturning<'d> for Delete<'d, S> {
    fn returning_list(&mut self) -> &mut Columns {
        &mut self.returning
    }
}

impl<'d, S: Scoping> Delete<'d, S> {
    pub(crate) fn new(scoping: S, decl: &'d TenancyDeclaration, table: &str) -> Self {
        let (table, error) = match WriteTable::resolve(decl, table) {
            Ok(table) => (Some(table), None),
            Err(e) => (None, Some(e)),
        };
        Self {
            base: Base::new(scoping, decl, error),
            table,
            filter: Filter::default(),
            returning: Columns::default(),
        }
    }

    /// What this statement is scoped to.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// assert_eq!(scope.delete(&decl, "tasks").scoping(), &scope);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn scoping(&self) -> &S {
        &self.base.scoping
    }

    /// The SQL and its bound values, tenant predicate included.
    ///
    /// # Errors
    /// [`QueryError`]: the first mistake made while building.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.delete(&decl, "projects").build()?;
    /// assert_eq!(sql, r#"DELETE FROM "app"."projects" WHERE "projects"."account_id" = $1"#);
    /// assert!(scope.delete(&decl, "accounts").build().is_err()); // not a tenant table
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn build(&self) -> Result<(String, SqlxValues), QueryError> {
        self.base.check()?;
        let table = self.table.as_ref().ok_or(QueryError::NoTable)?;
        let mut q = Query::delete();
        q.from_table(table.table_name());
        let scoping = &self.base.scoping;
        let predicate = scoping.tenant().map(|tenant| table.predicate(tenant));
        self.filter.apply(&mut q, predicate, scoping)?;
        if let Some(returning) = self.returning.clause() {
            q.returning(returning);
        }
        Ok(q.build_sqlx(PostgresQueryBuilder))
    }
}
