//! The select list: columns and checked expressions, DISTINCT.

use sea_query::{Expr, IntoColumnRef};

use super::Select;
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
        self.selects.push((Expr::col(column), None));
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
        self.selects
            .extend(columns.into_iter().map(|c| (Expr::col(c), None)));
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
            q.selects.push((expr, None));
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
            q.selects.push((expr, Some(alias)));
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
