//! What follows WHERE: GROUP BY, HAVING, ORDER BY, LIMIT, OFFSET and row locks.

use sea_query::{Expr, IntoColumnRef, LockBehavior, LockType, Order, SelectStatement};

use super::Select;
use super::from::{Join, Source};
use crate::query::QueryError;
use crate::query::builder::sealed::Builder;
use crate::query::check::{check_expr, check_u64};
use crate::query::scoping::Scoping;

/// `FOR UPDATE` / `FOR SHARE`, maybe with `SKIP LOCKED` or `NOWAIT`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RowLock {
    mode: Option<LockType>,
    behavior: Option<LockBehavior>,
}

impl RowLock {
    /// Puts the lock on `q`. Global tables are read-only, so when the select reads one the
    /// lock names the tenant tables only (`FOR UPDATE OF "t", …`); a lock with nothing but
    /// global tables to lock is refused.
    pub(super) fn apply<S: Scoping>(
        &self,
        q: &mut SelectStatement,
        from: &[Source<'_, S>],
        joins: &[Join],
    ) -> Result<(), QueryError> {
        let Some(mode) = self.mode else {
            return match self.behavior {
                Some(_) => Err(QueryError::NoRowLock),
                None => Ok(()),
            };
        };
        let tables = from
            .iter()
            .filter_map(|source| match source {
                Source::Table(table) => Some(table),
                Source::Subquery { .. } => None,
            })
            .chain(joins.iter().map(|join| &join.table));
        let (global, tenant): (Vec<_>, Vec<_>) = tables.partition(|table| table.is_global());
        match (global.first(), self.behavior) {
            (None, None) => q.lock(mode),
            (None, Some(behavior)) => q.lock_with_behavior(mode, behavior),
            (Some(global), _) if tenant.is_empty() => {
                return Err(QueryError::GlobalTableWrite {
                    table: global.table().to_owned(),
                });
            }
            (Some(_), None) => q.lock_with_tables(mode, tenant.iter().map(|t| t.name().to_owned())),
            (Some(_), Some(behavior)) => q.lock_with_tables_behavior(
                mode,
                tenant.iter().map(|t| t.name().to_owned()),
                behavior,
            ),
        };
        Ok(())
    }
}

impl<S: Scoping> Select<'_, S> {
    /// Groups by a column (or an alias of the select list).
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

    /// Groups by an expression (checked like [`Select::expr`]). An expression with bound
    /// values is a different parameter in the select list and in GROUP BY, which Postgres
    /// does not treat as the same expression: name it with [`Select::expr_as`] and group by
    /// the alias instead.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait, Func};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope
    ///     .select(&decl)
    ///     .from("users")
    ///     .expr(Func::lower(Expr::col("last_name")))
    ///     .expr(Expr::col("id").count())
    ///     .group_by_expr(Func::lower(Expr::col("last_name")))
    ///     .build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT LOWER("last_name"), COUNT("id") FROM "app"."users" WHERE "users"."account_id" = $1 GROUP BY LOWER("last_name")"#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn group_by_expr(self, expr: impl Into<Expr>) -> Self {
        let expr = expr.into();
        self.step(|q| {
            check_expr(&expr)?;
            q.groups.push(expr);
            Ok(())
        })
    }

    /// Adds a HAVING condition (checked like [`Select::expr`]).
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

    /// Orders by a column (or an alias of the select list).
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

    /// Orders by an expression (checked like [`Select::expr`]).
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait, Func, Order};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.select(&decl).from("users").column("id").order_by_expr(Func::lower(Expr::col("email")), Order::Asc).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT "id" FROM "app"."users" WHERE "users"."account_id" = $1 ORDER BY LOWER("email") ASC"#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn order_by_expr(self, expr: impl Into<Expr>, order: Order) -> Self {
        let expr = expr.into();
        self.step(|q| {
            check_expr(&expr)?;
            q.orders.push((expr, order));
            Ok(())
        })
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

    /// Locks the rows read against concurrent change: `FOR UPDATE` (only tenant tables: when
    /// a global table is joined, `FOR UPDATE OF` the tenant tables).
    ///
    /// ```
    /// # use rls_tenancy::{Filtered, TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.select(&decl).from("tasks").column("id").and_where(Expr::col("id").eq(3)).for_update().build()?;
    /// assert_eq!(sql, r#"SELECT "id" FROM "app"."tasks" WHERE "tasks"."account_id" = $1 AND "id" = $2 FOR UPDATE"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn for_update(mut self) -> Self {
        self.lock.mode = Some(LockType::Update);
        self
    }

    /// Locks the rows read against change, sharing the lock with other readers: `FOR SHARE`.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.select(&decl).from("projects").column("id").for_share().build()?;
    /// assert_eq!(sql, r#"SELECT "id" FROM "app"."projects" WHERE "projects"."account_id" = $1 FOR SHARE"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn for_share(mut self) -> Self {
        self.lock.mode = Some(LockType::Share);
        self
    }

    /// Skips rows another transaction has locked (`SKIP LOCKED`): the queue-worker pattern.
    /// Needs [`Select::for_update`] or [`Select::for_share`] ([`QueryError::NoRowLock`]).
    ///
    /// ```
    /// # use rls_tenancy::{QueryError, TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::Order;
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let next = scope.select(&decl).from("tasks").column("id").order_by("id", Order::Asc).limit(1);
    /// let (sql, _) = next.clone().for_update().skip_locked().build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"SELECT "id" FROM "app"."tasks" WHERE "tasks"."account_id" = $1 ORDER BY "id" ASC LIMIT $2 FOR UPDATE SKIP LOCKED"#
    /// );
    /// assert_eq!(next.skip_locked().build().err(), Some(QueryError::NoRowLock));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn skip_locked(mut self) -> Self {
        self.lock.behavior = Some(LockBehavior::SkipLocked);
        self
    }

    /// Fails at once (`55P03`) instead of waiting for a row another transaction has locked
    /// (`NOWAIT`). Needs [`Select::for_update`] or [`Select::for_share`].
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.select(&decl).from("tasks").column("id").for_update().nowait().build()?;
    /// assert_eq!(sql, r#"SELECT "id" FROM "app"."tasks" WHERE "tasks"."account_id" = $1 FOR UPDATE NOWAIT"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn nowait(mut self) -> Self {
        self.lock.behavior = Some(LockBehavior::Nowait);
        self
    }
}
