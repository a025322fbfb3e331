//! FROM and JOIN: declared tables (tenant or global) and scoped sub-selects.

use sea_query::{Expr, JoinType};

use super::Select;
use crate::policy::Ident;
use crate::query::QueryError;
use crate::query::builder::sealed::Builder;
use crate::query::check::check_expr;
use crate::query::scoping::Scoping;
use crate::query::table::{TableUse, name_of};
use crate::tenant::TenantId;

/// How a table is joined. Only joins that keep the tenant predicate correct in `ON` exist:
/// in a RIGHT or FULL join the predicate in `ON` would not stop the right side's rows of other
/// tenants, so write those as a LEFT JOIN with the tables swapped.
///
/// ```
/// use rls_tenancy::JoinKind;
/// assert_ne!(JoinKind::Inner, JoinKind::Left);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    /// `INNER JOIN`.
    Inner,
    /// `LEFT JOIN`: rows of the left side stay when the right side has no match.
    Left,
}

impl JoinKind {
    pub(super) fn sea(self) -> JoinType {
        match self {
            JoinKind::Inner => JoinType::InnerJoin,
            JoinKind::Left => JoinType::LeftJoin,
        }
    }
}

/// An item of the FROM clause.
#[derive(Debug, Clone)]
pub(super) enum Source<'d, S: Scoping> {
    Table(TableUse),
    Subquery {
        sub: Box<Select<'d, S>>,
        alias: Ident,
    },
}

impl<S: Scoping> Source<'_, S> {
    pub(super) fn name(&self) -> &str {
        match self {
            Source::Table(table) => table.name(),
            Source::Subquery { alias, .. } => alias.as_str(),
        }
    }

    /// The tenant predicate of a tenant table in FROM (a sub-select carries its own).
    pub(super) fn predicate(&self, tenant: TenantId) -> Option<Expr> {
        match self {
            Source::Table(table) => table.predicate(tenant),
            Source::Subquery { .. } => None,
        }
    }
}

/// A joined table and its condition.
#[derive(Debug, Clone)]
pub(super) struct Join {
    pub(super) kind: JoinKind,
    pub(super) table: TableUse,
    pub(super) on: Expr,
}

impl<'d, S: Scoping> Select<'d, S> {
    fn taken(&self, name: &str) -> bool {
        self.from.iter().any(|s| s.name() == name)
            || self.joins.iter().any(|j| j.table.name() == name)
    }

    fn add_source(&mut self, source: Source<'d, S>) -> Result<(), QueryError> {
        if self.taken(source.name()) {
            return Err(QueryError::DuplicateName {
                name: source.name().to_owned(),
            });
        }
        self.from.push(source);
        Ok(())
    }

    fn add_join(&mut self, kind: JoinKind, table: TableUse, on: Expr) -> Result<(), QueryError> {
        check_expr(&on)?;
        if self.taken(table.name()) {
            return Err(QueryError::DuplicateName {
                name: table.name().to_owned(),
            });
        }
        self.joins.push(Join { kind, table, on });
        Ok(())
    }

    /// Reads the declared table `table`: a tenant table gets its predicate in WHERE, a
    /// global table none.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.select(&decl).from("projects").column("name").build()?;
    /// assert_eq!(sql, r#"SELECT "name" FROM "app"."projects" WHERE "projects"."account_id" = $1"#);
    /// assert!(scope.select(&decl).from("accounts").column("id").build().is_err()); // not declared
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn from(self, table: &str) -> Self {
        self.step(|q| {
            let table = TableUse::resolve(q.base.decl, table, None)?;
            q.add_source(Source::Table(table))
        })
    }

    /// Reads the declared table `table` under the name `alias`.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.select(&decl).from_as("projects", "p").column(("p", "name")).build()?;
    /// assert_eq!(sql, r#"SELECT "p"."name" FROM "app"."projects" AS "p" WHERE "p"."account_id" = $1"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn from_as(self, table: &str, alias: &str) -> Self {
        self.step(|q| {
            let table = TableUse::resolve(q.base.decl, table, Some(alias))?;
            q.add_source(Source::Table(table))
        })
    }

    /// Reads from a scoped sub-select of the same tenant, under the name `alias`.
    ///
    /// ```
    /// # use rls_tenancy::{Filtered, TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let open = scope.select(&decl).from("tasks").column("id").and_where(Expr::col("is_complete").eq(false));
    /// let (sql, _) = scope.select(&decl).from_subquery(open, "open").expr(Expr::col("id").count()).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT COUNT("id") FROM (SELECT "id" FROM "app"."tasks" WHERE "tasks"."account_id" = $1 AND "is_complete" = $2) AS "open""#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn from_subquery(self, sub: Select<'d, S>, alias: &str) -> Self {
        self.step(|q| {
            let alias = name_of("alias", alias)?;
            q.add_source(Source::Subquery {
                sub: Box::new(sub),
                alias,
            })
        })
    }

    /// Joins the declared table `table` on `on`: a tenant table's predicate goes into the ON
    /// clause; a global table (shared lookup data) is joined as it is.
    ///
    /// ```
    /// # use rls_tenancy::{JoinKind, TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope
    ///     .select(&decl)
    ///     .from("tasks")
    ///     .join(JoinKind::Inner, "projects", Expr::col(("projects", "id")).equals(("tasks", "project_id")))
    ///     .column(("projects", "name"))
    ///     .build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT "projects"."name" FROM "app"."tasks" INNER JOIN "app"."projects" ON "projects"."account_id" = $1 AND "projects"."id" = "tasks"."project_id" WHERE "tasks"."account_id" = $2"#
    /// );
    ///
    /// // A global table: no predicate on it, the tenant table keeps its own.
    /// let decl = TenancyDeclaration::parse(r#"
    ///     schema = "crm"
    ///     [registry]
    ///     table = "orgs"
    ///     [[tenant_table]]
    ///     name = "invoices"
    ///     column = "org_id"
    ///     [[global_table]]
    ///     name = "currencies"
    /// "#)?;
    /// let (sql, _) = scope
    ///     .select(&decl)
    ///     .from("invoices")
    ///     .join(JoinKind::Inner, "currencies", Expr::col(("currencies", "code")).equals(("invoices", "currency")))
    ///     .columns([("invoices", "id"), ("currencies", "symbol")])
    ///     .build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT "invoices"."id", "currencies"."symbol" FROM "crm"."invoices" INNER JOIN "crm"."currencies" ON "currencies"."code" = "invoices"."currency" WHERE "invoices"."org_id" = $1"#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn join(self, kind: JoinKind, table: &str, on: Expr) -> Self {
        self.step(|q| {
            let table = TableUse::resolve(q.base.decl, table, None)?;
            q.add_join(kind, table, on)
        })
    }

    /// Joins the declared table `table` under the name `alias` on `on`; aliases make self
    /// joins possible, each side with its own predicate.
    ///
    /// ```
    /// # use rls_tenancy::{JoinKind, TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope
    ///     .select(&decl)
    ///     .from_as("tasks", "a")
    ///     .join_as(JoinKind::Inner, "tasks", "b", Expr::col(("b", "project_id")).equals(("a", "project_id")))
    ///     .columns([("a", "id"), ("b", "id")])
    ///     .build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT "a"."id", "b"."id" FROM "app"."tasks" AS "a" INNER JOIN "app"."tasks" AS "b" ON "b"."account_id" = $1 AND "b"."project_id" = "a"."project_id" WHERE "a"."account_id" = $2"#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn join_as(self, kind: JoinKind, table: &str, alias: &str, on: Expr) -> Self {
        self.step(|q| {
            let table = TableUse::resolve(q.base.decl, table, Some(alias))?;
            q.add_join(kind, table, on)
        })
    }
}
