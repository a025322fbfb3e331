//! The select list: columns and checked expressions, DISTINCT.

use sea_query::{Expr, IntoColumnRef};

use super::{Item, Select};
use crate::query::builder::sealed::Builder;
use crate::query::check::check_expr;
use crate::query::scoping::Scoping;
use crate::query::table::name_of;

impl<S: Scoping> Select<'_, S> {
    /// Adds a column to the select list.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.select(&decl).from("users").column("email").build()?;
    /// assert_eq!(sql, r#"SELECT "email" FROM "app"."users" WHERE "users"."account_id" = $1"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn column(mut self, column: impl IntoColumnRef) -> Self {
        self.selects.push((Item::Expr(Expr::col(column)), None));
        self
    }

    /// Adds columns to the select list.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.select(&decl).from("users").columns(["id", "email"]).build()?;
    /// assert_eq!(sql, r#"SELECT "id", "email" FROM "app"."users" WHERE "users"."account_id" = $1"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn columns<C: IntoColumnRef>(mut self, columns: impl IntoIterator<Item = C>) -> Self {
        self.selects.extend(
            columns
                .into_iter()
                .map(|c| (Item::Expr(Expr::col(c)), None)),
        );
        self
    }

    /// Adds an expression to the select list (checked: no raw sub-selects, custom SQL or
    /// functions off [`ALLOWED_FUNCTIONS`](crate::ALLOWED_FUNCTIONS)).
    ///
    /// ```
    /// # use rls_tenancy::{QueryError, TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait, Func};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.select(&decl).from("users").expr(Func::lower(Expr::col("email"))).build()?;
    /// assert_eq!(sql, r#"SELECT LOWER("email") FROM "app"."users" WHERE "users"."account_id" = $1"#);
    /// let (sql, _) = scope.select(&decl).from("users").expr(Func::cust("nullif").arg(Expr::col("last_name")).arg("")).build()?;
    /// assert_eq!(sql, r#"SELECT nullif("last_name", $1) FROM "app"."users" WHERE "users"."account_id" = $2"#);
    /// assert_eq!(scope.select(&decl).from("users").expr(Expr::cust("(SELECT 1)")).build().err(), Some(QueryError::RawSql));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn expr(self, expr: impl Into<Expr>) -> Self {
        let expr = expr.into();
        self.step(|q| {
            check_expr(&expr)?;
            q.selects.push((Item::Expr(expr), None));
            Ok(())
        })
    }

    /// Adds an expression to the select list under the name `alias` (which GROUP BY and
    /// ORDER BY may use).
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.select(&decl).from("tasks").expr_as(Expr::col("id").count(), "n").build()?;
    /// assert_eq!(sql, r#"SELECT COUNT("id") AS "n" FROM "app"."tasks" WHERE "tasks"."account_id" = $1"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn expr_as(self, expr: impl Into<Expr>, alias: &str) -> Self {
        let expr = expr.into();
        self.step(|q| {
            check_expr(&expr)?;
            let alias = name_of("alias", alias)?;
            q.selects.push((Item::Expr(expr), Some(alias)));
            Ok(())
        })
    }

    /// Makes it `SELECT DISTINCT`.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.select(&decl).from("tasks").column("project_id").distinct().build()?;
    /// assert_eq!(sql, r#"SELECT DISTINCT "project_id" FROM "app"."tasks" WHERE "tasks"."account_id" = $1"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn distinct(mut self) -> Self {
        self.distinct = true;
        self
    }
}

impl<'d, S: Scoping> Select<'d, S> {
    /// Adds a scoped sub-select of the same tenant that yields one value (a scalar
    /// sub-select) to the select list under the name `alias`; it carries its own tenant
    /// predicate. PostgreSQL runs an uncorrelated one once per statement, so a page can carry
    /// its total without a second round trip.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Asterisk, Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let total = scope.select(&decl).from("tasks").expr(Expr::col(Asterisk).count());
    /// let (sql, _) = scope.select(&decl).from("tasks").column("name").expr_subquery_as(total, "total").limit(5).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT "name", (SELECT COUNT(*) FROM "app"."tasks" WHERE "tasks"."account_id" = $1) AS "total" FROM "app"."tasks" WHERE "tasks"."account_id" = $2 LIMIT $3"#
    /// );
    /// // Another tenant's sub-select is refused, not built.
    /// let other = TenantScope::new(TenantId::new(8)?, "other".parse()?);
    /// let theirs = other.select(&decl).from("tasks").expr(Expr::col(Asterisk).count());
    /// assert!(scope.select(&decl).from("tasks").expr_subquery_as(theirs, "total").build().is_err());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn expr_subquery_as(self, sub: Select<'d, S>, alias: &str) -> Self {
        self.step(|q| {
            let alias = name_of("alias", alias)?;
            q.selects.push((Item::Subquery(Box::new(sub)), Some(alias)));
            Ok(())
        })
    }
}
