//! [`Update`]: an UPDATE that always carries the tenant predicate and never moves a row.

use sea_query::{Expr, PostgresQueryBuilder, Query};
use sea_query_sqlx::{SqlxBinder, SqlxValues};

use super::check::check_expr;
use super::filter::Filter;
use super::scoping::Scoping;
use super::table::{TableUse, name};
use super::{QueryError, Select};
use crate::policy::{Ident, TenancyDeclaration};
use crate::tenant::TenantScope;

/// An UPDATE of a tenant table.
///
/// Always carries `"table"."account_id" = $tenant` (a scoped update with no other condition
/// updates every row of its tenant and no other), and refuses to set the tenant column:
/// [`QueryError::TenantColumnUpdate`].
///
/// ```
/// use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
/// use rls_tenancy::sea_query::{Expr, ExprTrait};
/// let decl = TenancyDeclaration::reference()?;
/// let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
/// let (sql, _) = scope
///     .update(&decl, "tasks")
///     .value("is_complete", true)
///     .and_where(Expr::col("id").eq(42))
///     .build()?;
/// assert_eq!(sql, r#"UPDATE "app"."tasks" SET "is_complete" = $1 WHERE "tasks"."account_id" = $2 AND "id" = $3"#);
/// assert!(scope.update(&decl, "tasks").value("account_id", 8).build().is_err());
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Update<'d, S: Scoping = TenantScope> {
    scoping: S,
    table: Option<TableUse>,
    values: Vec<(Ident, Expr)>,
    filter: Filter<'d, S>,
    returning: Vec<Ident>,
    error: Option<QueryError>,
}

impl<'d, S: Scoping> Update<'d, S> {
    pub(crate) fn new(scoping: S, decl: &TenancyDeclaration, table: &str) -> Self {
        let (table, error) = match TableUse::resolve(decl, table, None) {
            Ok(table) => (Some(table), None),
            Err(e) => (None, Some(e)),
        };
        Self {
            scoping,
            table,
            values: Vec::new(),
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
    /// assert_eq!(scope.update(&decl, "tasks").scoping(), &scope);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn scoping(&self) -> &S {
        &self.scoping
    }

    /// Sets `column` to `value` (checked like a select's expressions; never the tenant column).
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.update(&decl, "projects").value("name", "Gemini").value("details", "").build()?;
    /// assert_eq!(sql, r#"UPDATE "app"."projects" SET "name" = $1, "details" = $2 WHERE "projects"."account_id" = $3"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn value(self, column: &str, value: impl Into<Expr>) -> Self {
        let value = value.into();
        self.step(|q| {
            let column = name("column", column)?;
            if q.table
                .as_ref()
                .is_some_and(|t| t.column() == column.as_str())
            {
                return Err(QueryError::TenantColumnUpdate {
                    column: column.as_str().to_owned(),
                });
            }
            check_expr(&value)?;
            q.values.push((column, value));
            Ok(())
        })
    }

    /// Adds a condition, AND-ed after the tenant predicate.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.update(&decl, "users").value("is_active", false).and_where(Expr::col("email").like("%@old.example")).build()?;
    /// assert_eq!(sql, r#"UPDATE "app"."users" SET "is_active" = $1 WHERE "users"."account_id" = $2 AND "email" LIKE $3"#);
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
    /// let (sql, _) = scope.update(&decl, "subtasks").value("is_complete", true).and_where_in(Expr::col("task_id"), done).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"UPDATE "app"."subtasks" SET "is_complete" = $1 WHERE "subtasks"."account_id" = $2 AND "task_id" IN (SELECT "id" FROM "app"."tasks" WHERE "tasks"."account_id" = $3 AND "is_complete" = $4)"#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn and_where_in(self, expr: Expr, sub: Select<'d, S>) -> Self {
        self.step(|q| q.filter.and_in(expr, false, sub))
    }

    /// Returns these columns of the updated rows.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.update(&decl, "tasks").value("is_complete", true).returning(["id"]).build()?;
    /// assert_eq!(sql, r#"UPDATE "app"."tasks" SET "is_complete" = $1 WHERE "tasks"."account_id" = $2 RETURNING "id""#);
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
    /// [`crate::Error::Query`] with the first mistake made while building, or no values.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.update(&decl, "tasks").value("name", "x").build()?;
    /// assert_eq!(sql, r#"UPDATE "app"."tasks" SET "name" = $1 WHERE "tasks"."account_id" = $2"#);
    /// assert!(scope.update(&decl, "tasks").build().is_err()); // nothing to set
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn build(&self) -> Result<(String, SqlxValues), QueryError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let table = self.table.as_ref().ok_or(QueryError::NoTable)?;
        if self.values.is_empty() {
            return Err(QueryError::NoValues {
                statement: "update",
            });
        }
        let mut q = Query::update();
        q.table(table.table_name()).values(
            self.values
                .iter()
                .map(|(c, v)| (c.as_str().to_owned(), v.clone())),
        );
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
