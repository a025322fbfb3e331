//! The WHERE clause shared by select, update and delete: the caller's checked expressions and
//! scoped sub-selects (`IN`, `NOT IN`, `EXISTS`, `NOT EXISTS`), rendered after the tenant
//! predicates, and the [`Filtered`] trait that gives the three statements the same methods.

use sea_query::{ConditionalStatement, Expr, ExprTrait};

use super::builder::sealed::HasFilter;
use super::check::check_expr;
use super::scoping::{Scoping, same_scoping};
use super::{QueryError, Select};

#[derive(Debug, Clone)]
enum Part<'d, S: Scoping> {
    Expr(Expr),
    In {
        expr: Expr,
        negate: bool,
        sub: Box<Select<'d, S>>,
    },
    Exists {
        negate: bool,
        sub: Box<Select<'d, S>>,
    },
}

/// The caller's conditions, AND-ed together.
#[derive(Debug, Clone)]
#[allow(unreachable_pub)]
pub struct Filter<'d, S: Scoping> {
    parts: Vec<Part<'d, S>>,
}

impl<S: Scoping> Default for Filter<'_, S> {
    fn default() -> Self {
        Self { parts: Vec::new() }
    }
}

impl<'d, S: Scoping> Filter<'d, S> {
    fn and(&mut self, expr: Expr) -> Result<(), QueryError> {
        check_expr(&expr)?;
        self.parts.push(Part::Expr(expr));
        Ok(())
    }

    fn and_in(&mut self, expr: Expr, negate: bool, sub: Select<'d, S>) -> Result<(), QueryError> {
        check_expr(&expr)?;
        self.parts.push(Part::In {
            expr,
            negate,
            sub: Box::new(sub),
        });
        Ok(())
    }

    fn and_exists(&mut self, negate: bool, sub: Select<'d, S>) {
        self.parts.push(Part::Exists {
            negate,
            sub: Box::new(sub),
        });
    }

    /// Writes the WHERE clause of `q`: the tenant `predicates` first, then the caller's
    /// conditions, sub-selects built with their own predicates and checked to be scoped like
    /// `outer`.
    pub(crate) fn apply(
        &self,
        q: &mut impl ConditionalStatement,
        predicates: impl IntoIterator<Item = Expr>,
        outer: &S,
    ) -> Result<(), QueryError> {
        for predicate in predicates {
            q.and_where(predicate);
        }
        for condition in self.render(outer)? {
            q.and_where(condition);
        }
        Ok(())
    }

    fn render(&self, outer: &S) -> Result<Vec<Expr>, QueryError> {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Expr(expr) => Ok(expr.clone()),
                Part::In { expr, negate, sub } => {
                    same_scoping(outer, sub.scoping())?;
                    let statement = sub.statement()?;
                    Ok(if *negate {
                        expr.clone().not_in_subquery(statement)
                    } else {
                        expr.clone().in_subquery(statement)
                    })
                }
                Part::Exists { negate, sub } => {
                    same_scoping(outer, sub.scoping())?;
                    let statement = sub.statement()?;
                    Ok(if *negate {
                        Expr::not_exists(statement)
                    } else {
                        Expr::exists(statement)
                    })
                }
            })
            .collect()
    }
}

/// The WHERE clause of [`Select`], [`Update`](super::Update) and [`Delete`](super::Delete):
/// one implementation for the three, AND-ed after the tenant predicates. In the
/// [prelude](crate::prelude).
///
/// Expressions are checked (no raw sub-selects, custom SQL, inlined constants or functions
/// off the allow-list); sub-selects can only be scoped selects of the same tenant, which
/// carry their own predicates.
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
pub trait Filtered<'d>: HasFilter<'d> {
    /// Adds a condition (checked; use `.or(...)` inside it for alternatives).
    ///
    /// ```
    /// # use rls_tenancy::{Filtered, TenancyDeclaration, TenantId, TenantScope};
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
    /// let (sql, _) = scope.update(&decl, "users").value("is_active", false).and_where(Expr::col("email").like("%@old.example")).build()?;
    /// assert_eq!(sql, r#"UPDATE "app"."users" SET "is_active" = $1 WHERE "users"."account_id" = $2 AND "email" LIKE $3"#);
    /// let (sql, _) = scope.delete(&decl, "users").and_where(Expr::col("is_active").eq(false)).build()?;
    /// assert_eq!(sql, r#"DELETE FROM "app"."users" WHERE "users"."account_id" = $1 AND "is_active" = $2"#);
    /// assert!(scope.delete(&decl, "users").and_where(Expr::cust("true")).build().is_err());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    fn and_where(self, condition: Expr) -> Self {
        self.step(|q| q.filter().and(condition))
    }

    /// Adds `expr IN (sub)` for a scoped sub-select of the same tenant.
    ///
    /// ```
    /// # use rls_tenancy::{Filtered, TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let done = || scope.select(&decl).from("tasks").column("id").and_where(Expr::col("is_complete").eq(true));
    /// let (sql, _) = scope.select(&decl).from("subtasks").column("id").and_where_in(Expr::col("task_id"), done()).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT "id" FROM "app"."subtasks" WHERE "subtasks"."account_id" = $1 AND "task_id" IN (SELECT "id" FROM "app"."tasks" WHERE "tasks"."account_id" = $2 AND "is_complete" = $3)"#
    /// );
    /// let (sql, _) = scope.update(&decl, "subtasks").value("is_complete", true).and_where_in(Expr::col("task_id"), done()).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"UPDATE "app"."subtasks" SET "is_complete" = $1 WHERE "subtasks"."account_id" = $2 AND "task_id" IN (SELECT "id" FROM "app"."tasks" WHERE "tasks"."account_id" = $3 AND "is_complete" = $4)"#
    /// );
    /// let (sql, _) = scope.delete(&decl, "subtasks").and_where_in(Expr::col("task_id"), done()).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"DELETE FROM "app"."subtasks" WHERE "subtasks"."account_id" = $1 AND "task_id" IN (SELECT "id" FROM "app"."tasks" WHERE "tasks"."account_id" = $2 AND "is_complete" = $3)"#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    fn and_where_in(self, expr: Expr, sub: Select<'d, Self::Scoping>) -> Self {
        self.step(|q| q.filter().and_in(expr, false, sub))
    }

    /// Adds `expr NOT IN (sub)` for a scoped sub-select of the same tenant.
    ///
    /// ```
    /// # use rls_tenancy::{Filtered, TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::Expr;
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let used = || scope.select(&decl).from("tasks").column("project_id");
    /// let (sql, _) = scope.select(&decl).from("projects").column("id").and_where_not_in(Expr::col("id"), used()).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT "id" FROM "app"."projects" WHERE "projects"."account_id" = $1 AND "id" NOT IN (SELECT "project_id" FROM "app"."tasks" WHERE "tasks"."account_id" = $2)"#
    /// );
    /// let (sql, _) = scope.update(&decl, "projects").value("details", "idle").and_where_not_in(Expr::col("id"), used()).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"UPDATE "app"."projects" SET "details" = $1 WHERE "projects"."account_id" = $2 AND "id" NOT IN (SELECT "project_id" FROM "app"."tasks" WHERE "tasks"."account_id" = $3)"#
    /// );
    /// let (sql, _) = scope.delete(&decl, "projects").and_where_not_in(Expr::col("id"), used()).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"DELETE FROM "app"."projects" WHERE "projects"."account_id" = $1 AND "id" NOT IN (SELECT "project_id" FROM "app"."tasks" WHERE "tasks"."account_id" = $2)"#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    fn and_where_not_in(self, expr: Expr, sub: Select<'d, Self::Scoping>) -> Self {
        self.step(|q| q.filter().and_in(expr, true, sub))
    }

    /// Adds `EXISTS (sub)` for a scoped sub-select of the same tenant (it may refer to the
    /// outer tables by name).
    ///
    /// ```
    /// # use rls_tenancy::{Filtered, TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let has_tasks = |outer: &'static str| scope.select(&decl).from_as("tasks", "t").expr(Expr::val(1)).and_where(Expr::col(("t", "project_id")).equals((outer, "id")));
    /// let (sql, _) = scope.select(&decl).from_as("projects", "p").column(("p", "id")).and_where_exists(has_tasks("p")).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT "p"."id" FROM "app"."projects" AS "p" WHERE "p"."account_id" = $1 AND EXISTS(SELECT $2 FROM "app"."tasks" AS "t" WHERE "t"."account_id" = $3 AND "t"."project_id" = "p"."id")"#
    /// );
    /// let (sql, _) = scope.update(&decl, "projects").value("details", "busy").and_where_exists(has_tasks("projects")).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"UPDATE "app"."projects" SET "details" = $1 WHERE "projects"."account_id" = $2 AND EXISTS(SELECT $3 FROM "app"."tasks" AS "t" WHERE "t"."account_id" = $4 AND "t"."project_id" = "projects"."id")"#
    /// );
    /// let (sql, _) = scope.delete(&decl, "projects").and_where_exists(has_tasks("projects")).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"DELETE FROM "app"."projects" WHERE "projects"."account_id" = $1 AND EXISTS(SELECT $2 FROM "app"."tasks" AS "t" WHERE "t"."account_id" = $3 AND "t"."project_id" = "projects"."id")"#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    fn and_where_exists(self, sub: Select<'d, Self::Scoping>) -> Self {
        self.step(|q| {
            q.filter().and_exists(false, sub);
            Ok(())
        })
    }

    /// Adds `NOT EXISTS (sub)` for a scoped sub-select of the same tenant.
    ///
    /// ```
    /// # use rls_tenancy::{Filtered, TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let subs = || scope.select(&decl).from("subtasks").column("id").and_where(Expr::col(("subtasks", "task_id")).equals(("tasks", "id")));
    /// let (sql, _) = scope.select(&decl).from("tasks").column("id").and_where_not_exists(subs()).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT "id" FROM "app"."tasks" WHERE "tasks"."account_id" = $1 AND (NOT EXISTS(SELECT "id" FROM "app"."subtasks" WHERE "subtasks"."account_id" = $2 AND "subtasks"."task_id" = "tasks"."id"))"#
    /// );
    /// let (sql, _) = scope.update(&decl, "tasks").value("is_complete", true).and_where_not_exists(subs()).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"UPDATE "app"."tasks" SET "is_complete" = $1 WHERE "tasks"."account_id" = $2 AND (NOT EXISTS(SELECT "id" FROM "app"."subtasks" WHERE "subtasks"."account_id" = $3 AND "subtasks"."task_id" = "tasks"."id"))"#
    /// );
    /// let (sql, _) = scope.delete(&decl, "tasks").and_where_not_exists(subs()).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"DELETE FROM "app"."tasks" WHERE "tasks"."account_id" = $1 AND (NOT EXISTS(SELECT "id" FROM "app"."subtasks" WHERE "subtasks"."account_id" = $2 AND "subtasks"."task_id" = "tasks"."id"))"#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    fn and_where_not_exists(self, sub: Select<'d, Self::Scoping>) -> Self {
        self.step(|q| {
            q.filter().and_exists(true, sub);
            Ok(())
        })
    }
}

impl<'d, T: HasFilter<'d>> Filtered<'d> for T {}
