//! [`Select`]: a SELECT whose every tenant table carries the tenant predicate.

use sea_query::{
    Condition, Expr, IntoColumnRef, JoinType, Order, PostgresQueryBuilder, Query, SelectStatement,
};
use sea_query_sqlx::{SqlxBinder, SqlxValues};

use super::QueryError;
use super::check::{check_expr, check_u64};
use super::filter::Filter;
use super::scoping::{Scoping, same_scoping};
use super::table::{TableUse, name};
use crate::policy::{Ident, TenancyDeclaration};
use crate::tenant::TenantScope;

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
    fn sea(self) -> JoinType {
        match self {
            JoinKind::Inner => JoinType::InnerJoin,
            JoinKind::Left => JoinType::LeftJoin,
        }
    }
}

#[derive(Debug, Clone)]
enum Source<'d, S: Scoping> {
    Table(TableUse),
    Subquery {
        sub: Box<Select<'d, S>>,
        alias: Ident,
    },
}

impl<S: Scoping> Source<'_, S> {
    fn name(&self) -> &str {
        match self {
            Source::Table(table) => table.name(),
            Source::Subquery { alias, .. } => alias.as_str(),
        }
    }
}

/// One entry of the select list: an expression, or a scoped sub-select of one value.
#[derive(Debug, Clone)]
enum Item<'d, S: Scoping> {
    Expr(Expr),
    Subquery(Box<Select<'d, S>>),
}

#[derive(Debug, Clone)]
struct Join {
    kind: JoinKind,
    table: TableUse,
    on: Expr,
}

/// A SELECT over tenant tables, built from a [`TenantScope`] (or, explicitly, from
/// [`crate::CrossTenant`]).
///
/// Every tenant table it names gets `"name"."account_id" = $tenant`: tables in FROM in the
/// WHERE clause, joined tables in their ON clause (so a LEFT JOIN stays a LEFT JOIN), and
/// sub-selects, which can only be other scoped selects of the same tenant, carry their own.
/// Tables are named by their bare name and must be declared tenant tables; the schema comes
/// from the declaration. Caller expressions may not contain raw sub-selects, custom SQL or
/// inlined constants ([`QueryError`]). Values are always bound.
///
/// Methods consume and return the builder; the first mistake is kept and reported by
/// [`Select::build`] or at execution, so nothing half-built ever runs.
///
/// ```
/// use rls_tenancy::{JoinKind, TenancyDeclaration, TenantId, TenantScope};
/// use rls_tenancy::sea_query::{Expr, ExprTrait, Order};
/// let decl = TenancyDeclaration::reference()?;
/// let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
/// let (sql, values) = scope
///     .select(&decl)
///     .from_as("subtasks", "s")
///     .join_as(JoinKind::Left, "tasks", "t", Expr::col(("t", "id")).equals(("s", "task_id")))
///     .columns([("s", "name"), ("t", "name")])
///     .and_where(Expr::col(("s", "is_complete")).eq(false))
///     .order_by(("s", "name"), Order::Asc)
///     .build()?;
/// assert_eq!(
///     sql,
///     r#"SELECT "s"."name", "t"."name" FROM "app"."subtasks" AS "s" LEFT JOIN "app"."tasks" AS "t" ON "t"."account_id" = $1 AND "t"."id" = "s"."task_id" WHERE "s"."account_id" = $2 AND "s"."is_complete" = $3 ORDER BY "s"."name" ASC"#
/// );
/// assert_eq!(values.0.0.len(), 3);
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Select<'d, S: Scoping = TenantScope> {
    scoping: S,
    decl: &'d TenancyDeclaration,
    distinct: bool,
    selects: Vec<(Item<'d, S>, Option<Ident>)>,
    from: Vec<Source<'d, S>>,
    joins: Vec<Join>,
    filter: Filter<'d, S>,
    groups: Vec<Expr>,
    having: Vec<Expr>,
    orders: Vec<(Expr, Order)>,
    limit: Option<u64>,
    offset: Option<u64>,
    error: Option<QueryError>,
}

impl<'d, S: Scoping> Select<'d, S> {
    pub(crate) fn new(scoping: S, decl: &'d TenancyDeclaration) -> Self {
        Self {
            scoping,
            decl,
            distinct: false,
            selects: Vec::new(),
            from: Vec::new(),
            joins: Vec::new(),
            filter: Filter::default(),
            groups: Vec::new(),
            having: Vec::new(),
            orders: Vec::new(),
            limit: None,
            offset: None,
            error: None,
        }
    }

    /// What this statement is scoped to.
    ///
    /// ```
    /// # use rls_tenancy::{Scoping, TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// assert_eq!(scope.select(&decl).scoping(), &scope);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn scoping(&self) -> &S {
        &self.scoping
    }

    /// Keeps the first error; later steps are skipped once one happened.
    fn step(mut self, f: impl FnOnce(&mut Self) -> Result<(), QueryError>) -> Self {
        if self.error.is_none()
            && let Err(e) = f(&mut self)
        {
            self.error = Some(e);
        }
        self
    }

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

    /// Reads the tenant table `table`; its predicate goes into WHERE.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.select(&decl).from("projects").column("name").build()?;
    /// assert_eq!(sql, r#"SELECT "name" FROM "app"."projects" WHERE "projects"."account_id" = $1"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn from(self, table: &str) -> Self {
        self.step(|q| {
            let table = TableUse::resolve(q.decl, table, None)?;
            q.add_source(Source::Table(table))
        })
    }

    /// Reads the tenant table `table` under the name `alias`.
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
            let table = TableUse::resolve(q.decl, table, Some(alias))?;
            q.add_source(Source::Table(table))
        })
    }

    /// Reads from a scoped sub-select of the same tenant, under the name `alias`.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
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
            let alias = name("alias", alias)?;
            q.add_source(Source::Subquery {
                sub: Box::new(sub),
                alias,
            })
        })
    }

    /// Joins the tenant table `table` on `on`; its predicate goes into the ON clause.
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
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn join(self, kind: JoinKind, table: &str, on: Expr) -> Self {
        self.step(|q| {
            let table = TableUse::resolve(q.decl, table, None)?;
            q.add_join(kind, table, on)
        })
    }

    /// Joins the tenant table `table` under the name `alias` on `on`; aliases make self
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
            let table = TableUse::resolve(q.decl, table, Some(alias))?;
            q.add_join(kind, table, on)
        })
    }

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

    /// Adds an expression to the select list (checked: no raw sub-selects or custom SQL).
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait, Func};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.select(&decl).from("users").expr(Func::lower(Expr::col("email"))).build()?;
    /// assert_eq!(sql, r#"SELECT LOWER("email") FROM "app"."users" WHERE "users"."account_id" = $1"#);
    /// assert!(scope.select(&decl).from("users").expr(Expr::cust("(SELECT 1)")).build().is_err());
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

    /// Adds an expression to the select list under the name `alias`.
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
            let alias = name("alias", alias)?;
            q.selects.push((Item::Expr(expr), Some(alias)));
            Ok(())
        })
    }

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
            let alias = name("alias", alias)?;
            q.selects.push((Item::Subquery(Box::new(sub)), Some(alias)));
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

    /// Adds a condition, AND-ed after the tenant predicates (checked: no raw sub-selects or
    /// custom SQL; use `.or(...)` inside it for alternatives).
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope
    ///     .select(&decl)
    ///     .from("tasks")
    ///     .column("id")
    ///     .and_where(Expr::col("is_complete").eq(true).or(Expr::col("name").like("x%")))
    ///     .build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT "id" FROM "app"."tasks" WHERE "tasks"."account_id" = $1 AND ("is_complete" = $2 OR "name" LIKE $3)"#
    /// );
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
    /// let (sql, _) = scope.select(&decl).from("subtasks").column("id").and_where_in(Expr::col("task_id"), done).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT "id" FROM "app"."subtasks" WHERE "subtasks"."account_id" = $1 AND "task_id" IN (SELECT "id" FROM "app"."tasks" WHERE "tasks"."account_id" = $2 AND "is_complete" = $3)"#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn and_where_in(self, expr: Expr, sub: Select<'d, S>) -> Self {
        self.step(|q| q.filter.and_in(expr, false, sub))
    }

    /// Adds `expr NOT IN (sub)` for a scoped sub-select of the same tenant.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::Expr;
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let used = scope.select(&decl).from("tasks").column("project_id");
    /// let (sql, _) = scope.select(&decl).from("projects").column("id").and_where_not_in(Expr::col("id"), used).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT "id" FROM "app"."projects" WHERE "projects"."account_id" = $1 AND "id" NOT IN (SELECT "project_id" FROM "app"."tasks" WHERE "tasks"."account_id" = $2)"#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn and_where_not_in(self, expr: Expr, sub: Select<'d, S>) -> Self {
        self.step(|q| q.filter.and_in(expr, true, sub))
    }

    /// Adds `EXISTS (sub)` for a scoped sub-select of the same tenant (it may refer to the
    /// outer tables by name).
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let has_tasks = scope.select(&decl).from_as("tasks", "t").expr(Expr::val(1)).and_where(Expr::col(("t", "project_id")).equals(("p", "id")));
    /// let (sql, _) = scope.select(&decl).from_as("projects", "p").column(("p", "id")).and_where_exists(has_tasks).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT "p"."id" FROM "app"."projects" AS "p" WHERE "p"."account_id" = $1 AND EXISTS(SELECT $2 FROM "app"."tasks" AS "t" WHERE "t"."account_id" = $3 AND "t"."project_id" = "p"."id")"#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn and_where_exists(self, sub: Select<'d, S>) -> Self {
        self.step(|q| {
            q.filter.and_exists(false, sub);
            Ok(())
        })
    }

    /// Adds `NOT EXISTS (sub)` for a scoped sub-select of the same tenant.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let subs = scope.select(&decl).from("subtasks").column("id").and_where(Expr::col(("subtasks", "task_id")).equals(("tasks", "id")));
    /// let (sql, _) = scope.select(&decl).from("tasks").column("id").and_where_not_exists(subs).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT "id" FROM "app"."tasks" WHERE "tasks"."account_id" = $1 AND (NOT EXISTS(SELECT "id" FROM "app"."subtasks" WHERE "subtasks"."account_id" = $2 AND "subtasks"."task_id" = "tasks"."id"))"#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn and_where_not_exists(self, sub: Select<'d, S>) -> Self {
        self.step(|q| {
            q.filter.and_exists(true, sub);
            Ok(())
        })
    }

    /// Groups by a column.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.select(&decl).from("tasks").column("project_id").expr(Expr::col("id").count()).group_by("project_id").build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT "project_id", COUNT("id") FROM "app"."tasks" WHERE "tasks"."account_id" = $1 GROUP BY "project_id""#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn group_by(mut self, column: impl IntoColumnRef) -> Self {
        self.groups.push(Expr::col(column));
        self
    }

    /// Adds a HAVING condition (checked like [`Select::and_where`]).
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope
    ///     .select(&decl)
    ///     .from("tasks")
    ///     .column("project_id")
    ///     .group_by("project_id")
    ///     .and_having(Expr::col("id").count().gt(3))
    ///     .build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT "project_id" FROM "app"."tasks" WHERE "tasks"."account_id" = $1 GROUP BY "project_id" HAVING COUNT("id") > $2"#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn and_having(self, condition: Expr) -> Self {
        self.step(|q| {
            check_expr(&condition)?;
            q.having.push(condition);
            Ok(())
        })
    }

    /// Orders by a column.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::Order;
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.select(&decl).from("tasks").column("id").order_by("name", Order::Desc).order_by("id", Order::Asc).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT "id" FROM "app"."tasks" WHERE "tasks"."account_id" = $1 ORDER BY "name" DESC, "id" ASC"#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn order_by(mut self, column: impl IntoColumnRef, order: Order) -> Self {
        self.orders.push((Expr::col(column), order));
        self
    }

    /// Returns at most `n` rows (bound as a parameter; at most `i64::MAX`).
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.select(&decl).from("tasks").column("id").limit(10).build()?;
    /// assert_eq!(sql, r#"SELECT "id" FROM "app"."tasks" WHERE "tasks"."account_id" = $1 LIMIT $2"#);
    /// assert!(scope.select(&decl).from("tasks").column("id").limit(u64::MAX).build().is_err());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn limit(self, n: u64) -> Self {
        self.step(|q| {
            check_u64(n)?;
            q.limit = Some(n);
            Ok(())
        })
    }

    /// Skips the first `n` rows (bound as a parameter; at most `i64::MAX`).
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.select(&decl).from("tasks").column("id").limit(10).offset(20).build()?;
    /// assert_eq!(sql, r#"SELECT "id" FROM "app"."tasks" WHERE "tasks"."account_id" = $1 LIMIT $2 OFFSET $3"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn offset(self, n: u64) -> Self {
        self.step(|q| {
            check_u64(n)?;
            q.offset = Some(n);
            Ok(())
        })
    }

    /// The SQL and its bound values, tenant predicates included.
    ///
    /// # Errors
    /// [`crate::Error::Query`] with the first mistake made while building.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::Value;
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, values) = scope.select(&decl).from("tasks").column("id").build()?;
    /// assert_eq!(sql, r#"SELECT "id" FROM "app"."tasks" WHERE "tasks"."account_id" = $1"#);
    /// assert_eq!(values.0.0, vec![Value::BigInt(Some(7))]);
    /// assert!(scope.select(&decl).column("id").build().is_err()); // no table
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn build(&self) -> Result<(String, SqlxValues), QueryError> {
        Ok(self.statement()?.build_sqlx(PostgresQueryBuilder))
    }

    /// The sea-query statement with every tenant predicate in place.
    pub(crate) fn statement(&self) -> Result<SelectStatement, QueryError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        if self.from.is_empty() {
            return Err(QueryError::NoTable);
        }
        let tenant = self.scoping.tenant();
        let mut q = Query::select();
        if self.distinct {
            q.distinct();
        }
        for (item, alias) in &self.selects {
            let expr = match item {
                Item::Expr(expr) => expr.clone(),
                Item::Subquery(sub) => {
                    same_scoping(&self.scoping, sub.scoping())?;
                    Expr::SubQuery(None, Box::new(sub.statement()?.into()))
                }
            };
            match alias {
                Some(alias) => q.expr_as(expr, alias.as_str().to_owned()),
                None => q.expr(expr),
            };
        }
        for source in &self.from {
            match source {
                Source::Table(table) => q.from(table.table_ref()),
                Source::Subquery { sub, alias } => {
                    same_scoping(&self.scoping, sub.scoping())?;
                    q.from_subquery(sub.statement()?, alias.as_str().to_owned())
                }
            };
        }
        for join in &self.joins {
            let mut on = Condition::all();
            if let Some(tenant) = tenant {
                on = on.add(join.table.predicate(tenant));
            }
            q.join(
                join.kind.sea(),
                join.table.table_ref(),
                on.add(join.on.clone()),
            );
        }
        if let Some(tenant) = tenant {
            for source in &self.from {
                if let Source::Table(table) = source {
                    q.and_where(table.predicate(tenant));
                }
            }
        }
        for condition in self.filter.render(&self.scoping)? {
            q.and_where(condition);
        }
        q.add_group_by(self.groups.iter().cloned());
        for condition in &self.having {
            q.and_having(condition.clone());
        }
        for (expr, order) in &self.orders {
            q.order_by_expr(expr.clone(), order.clone());
        }
        if let Some(limit) = self.limit {
            q.limit(limit);
        }
        if let Some(offset) = self.offset {
            q.offset(offset);
        }
        Ok(q)
    }
}
