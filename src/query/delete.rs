//! [`Delete`]: a DELETE that always carries the tenant predicate.

use sea_query::{Expr, PostgresQueryBuilder, Query};
use sea_query_sqlx::{SqlxBinder, SqlxValues};

use super::filter::Filter;
use super::scoping::Scoping;
use super::table::{TableUse, name};
use super::{QueryError, Select};
use crate::policy::{Ident, TenancyDeclaration};
use crate::tenant::TenantScope;

/// A DELETE from a tenant table. Always carries `"table"."account_id" = $tenant`: a scoped
/// delete with no other condition empties the table for its tenant and no other.
///
/// ```
/// use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
/// use rls_tenancy::sea_query::{Expr, ExprTrait};
/// let decl = TenancyDeclaration::reference()?;
/// let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
/// let (sql, _) = scope.delete(&decl, "subtasks").and_where(Expr::col("is_complete").eq(true)).build()?;
/// assert_eq!(sql, r#"DELETE FROM "app"."subtasks" WHERE "subtasks"."account_id" = $1 AND "is_complete" = $2"#);
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Delete<'d, S: Scoping = TenantScope> {
    scoping: S,
    table: Option<TableUse>,
    filter: Filter<'d, S>,
    returning: Vec<Ident>,
    error: Option<QueryError>,
}

impl<'d, S: Scoping> Delete<'d, S> {
    pub(crate) fn new(scoping: S, decl: &TenancyDeclaration, table: &str) -> Self {
        let (table, error) = match TableUse::resolve(decl, table, None) {
            Ok(table) => (Some(table), None),
            Err(e) => (None, Some(e)),
        };
        Self {
            scoping,
            table,
            filter: Filter::default(),
            returning: Vec::new(),
            error,
        }
    }

    fn step(mut self, f: impl FnOnce(&mut Self) -> Result<(), QueryError>) -> Self {
        if self.error.is_none()
            && let Err(e) = f(&mut self)
        {
            self.error = Some(e);
        }
        self
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
        &self.scoping
    }

    /// Adds a condition, AND-ed after the tenant predicate.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.delete(&decl, "users").and_where(Expr::col("is_active").eq(false)).build()?;
    /// assert_eq!(sql, r#"DELETE FROM "app"."users" WHERE "users"."account_id" = $1 AND "is_active" = $2"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn and_where(self, condition: Expr) -> Self {
        self.step(|q| q.filter.and(condition))
    }

    /// Adds `expr IN (sub)` for a scoped sub-select of the same tenant.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let done = scope.select(&decl).from("tasks").column("id").and_where(Expr::col("is_complete").eq(true));
    /// let (sql, _) = scope.delete(&decl, "subtasks").and_where_in(Expr::col("task_id"), done).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"DELETE FROM "app"."subtasks" WHERE "subtasks"."account_id" = $1 AND "task_id" IN (SELECT "id" FROM "app"."tasks" WHERE "tasks"."account_id" = $2 AND "is_complete" = $3)"#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn and_where_in(self, expr: Expr, sub: Select<'d, S>) -> Self {
        self.step(|q| q.filter.and_in(expr, false, sub))
    }

    /// Returns these columns of the deleted rows.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.delete(&decl, "tasks").returning(["id"]).build()?;
    /// assert_eq!(sql, r#"DELETE FROM "app"."tasks" WHERE "tasks"."account_id" = $1 RETURNING "id""#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn returning<'c>(self, columns: impl IntoIterator<Item = &'c str>) -> Self {
        self.step(|q| {
            for column in columns {
                q.returning.push(name("column", column)?);
            }
            Ok(())
        })
    }

    /// The SQL and its bound values, tenant predicate included.
    ///
    /// # Errors
    /// [`crate::Error::Query`] with the first mistake made while building.
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
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let table = self.table.as_ref().ok_or(QueryError::NoTable)?;
        let mut q = Query::delete();
        q.from_table(table.table_name());
        if let Some(tenant) = self.scoping.tenant() {
            q.and_where(table.predicate(tenant));
        }
        for condition in self.filter.render(&self.scoping)? {
            q.and_where(condition);
        }
        if !self.returning.is_empty() {
            q.returning(
                Query::returning().columns(self.returning.iter().map(|c| c.as_str().to_owned())),
            );
        }
        Ok(q.build_sqlx(PostgresQueryBuilder))
    }
}
