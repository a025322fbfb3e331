//! [`Update`]: an UPDATE that always carries the tenant predicate and never moves a row.

use sea_query::{Expr, PostgresQueryBuilder, Query};
use sea_query_sqlx::{SqlxBinder, SqlxValues};

use super::QueryError;
use super::builder::sealed::{Builder, HasFilter, HasReturning};
use super::builder::{Base, Columns};
use super::check::check_expr;
use super::filter::Filter;
use super::scoping::Scoping;
use super::table::{WriteTable, name_of};
use crate::policy::{Ident, TenancyDeclaration};
use crate::tenant::TenantScope;

/// An UPDATE of a tenant table (never a global one: [`QueryError::GlobalTableWrite`]).
///
/// Always carries `"table"."account_id" = $tenant` (a scoped update with no other condition
/// updates every row of its tenant and no other), and refuses to set the tenant column:
/// [`QueryError::TenantColumnUpdate`]. Conditions come from [`Filtered`](crate::Filtered),
/// `RETURNING` from [`Returning`](crate::Returning).
///
/// ```
/// use rls_tenancy::{Filtered, TenancyDeclaration, TenantId, TenantScope};
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
    base: Base<'d, S>,
    table: Option<WriteTable>,
    values: Vec<(Ident, Expr)>,
    filter: Filter<'d, S>,
    returning: Columns,
}

impl<'d, S: Scoping> Builder<'d> for Update<'d, S> {
    type Scoping = S;
    fn base(&mut self) -> &mut Base<'d, S> {
        &mut self.base
    }
}

impl<'d, S: Scoping> HasFilter<'d> for Update<'d, S> {
    fn filter(&mut self) -> &mut Filter<'d, S> {
        &mut self.filter
    }
}

impl<'d, S: Scoping> HasReturning<'d> for Update<'d, S> {
    fn returning_list(&mut self) -> &mut Columns {
        &mut self.returning
    }
}

impl<'d, S: Scoping> Update<'d, S> {
    pub(crate) fn new(scoping: S, decl: &'d TenancyDeclaration, table: &str) -> Self {
        let (table, error) = match WriteTable::resolve(decl, table) {
            Ok(table) => (Some(table), None),
            Err(e) => (None, Some(e)),
        };
        Self {
            base: Base::new(scoping, decl, error),
            table,
            values: Vec::new(),
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
    /// assert_eq!(scope.update(&decl, "tasks").scoping(), &scope);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn scoping(&self) -> &S {
        &self.base.scoping
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
            let column = name_of("column", column)?;
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

    /// The SQL and its bound values, tenant predicate included.
    ///
    /// # Errors
    /// [`QueryError`]: the first mistake made while building, or no values.
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
        self.base.check()?;
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
        let scoping = &self.base.scoping;
        let predicate = scoping.tenant().map(|tenant| table.predicate(tenant));
        self.filter.apply(&mut q, predicate, scoping)?;
        if let Some(returning) = self.returning.clause() {
            q.returning(returning);
        }
        Ok(q.build_sqlx(PostgresQueryBuilder))
    }
}
