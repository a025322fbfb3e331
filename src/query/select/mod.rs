//! [`Select`]: a SELECT whose every tenant table carries the tenant predicate.
//!
//! The struct and its rendering live here; its methods by clause: `from.rs` (FROM and JOIN,
//! tenant and global tables, sub-selects), `list.rs` (the select list), `tail.rs` (GROUP BY,
//! HAVING, ORDER BY, LIMIT, OFFSET, row locks).

mod from;
mod list;
mod tail;

use sea_query::{Condition, Expr, Order, PostgresQueryBuilder, Query, SelectStatement};
use sea_query_sqlx::{SqlxBinder, SqlxValues};

pub use from::JoinKind;
use from::{Join, Source};
use tail::RowLock;

use super::QueryError;
use super::builder::Base;
use super::builder::sealed::{Builder, HasFilter};
use super::filter::Filter;
use super::scoping::{Scoping, same_scoping};
use crate::policy::{Ident, TenancyDeclaration};
use crate::tenant::TenantScope;

/// One entry of the select list: an expression, or a scoped sub-select of one value.
#[derive(Debug, Clone)]
enum Item<'d, S: Scoping> {
    Expr(Expr),
    Subquery(Box<Select<'d, S>>),
}

/// A SELECT over declared tables, built from a [`TenantScope`] (or, explicitly, from
/// [`crate::CrossTenant`]).
///
/// Every tenant table it names gets `"name"."account_id" = $tenant`: tables in FROM in the
/// WHERE clause, joined tables in their ON clause (so a LEFT JOIN stays a LEFT JOIN), and
/// sub-selects, which can only be other scoped selects of the same tenant, carry their own.
/// Global tables (shared lookup data the declaration lists as `[[global_table]]`) are read
/// without a predicate and never written or locked. Tables are named by their bare name and
/// must be declared; the schema comes from the declaration. Caller expressions may not
/// contain raw sub-selects, custom SQL, inlined constants or functions off
/// [`ALLOWED_FUNCTIONS`](crate::ALLOWED_FUNCTIONS) ([`QueryError`]). Values are always bound.
///
/// Methods consume and return the builder; the first mistake is kept and reported by
/// [`Select::build`] or at execution, so nothing half-built ever runs. The WHERE clause
/// comes from the [`Filtered`](crate::Filtered) trait, shared with update and delete.
///
/// ```
/// use rls_tenancy::{Filtered, JoinKind, TenancyDeclaration, TenantId, TenantScope};
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
    base: Base<'d, S>,
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
    lock: RowLock,
}

impl<'d, S: Scoping> Builder<'d> for Select<'d, S> {
    type Scoping = S;
    fn base(&mut self) -> &mut Base<'d, S> {
        &mut self.base
    }
}

impl<'d, S: Scoping> HasFilter<'d> for Select<'d, S> {
    fn filter(&mut self) -> &mut Filter<'d, S> {
        &mut self.filter
    }
}

impl<'d, S: Scoping> Select<'d, S> {
    pub(crate) fn new(scoping: S, decl: &'d TenancyDeclaration) -> Self {
        Self {
            base: Base::new(scoping, decl, None),
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
            lock: RowLock::default(),
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
        &self.base.scoping
    }

    /// The SQL and its bound values, tenant predicates included.
    ///
    /// # Errors
    /// [`QueryError`]: the first mistake made while building.
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

    /// How many expressions the select list has (an insert's select must match its columns).
    pub(crate) fn width(&self) -> usize {
        self.selects.len()
    }

    /// This select with `expr` first in its select list: how a scoped INSERT … SELECT
    /// supplies the tenant column.
    pub(crate) fn with_leading(mut self, expr: Expr) -> Self {
        self.selects.insert(0, (Item::Expr(expr), None));
        self
    }

    /// The sea-query statement with every tenant predicate in place.
    pub(crate) fn statement(&self) -> Result<SelectStatement, QueryError> {
        self.base.check()?;
        if self.from.is_empty() {
            return Err(QueryError::NoTable);
        }
        let scoping = &self.base.scoping;
        let tenant = scoping.tenant();
        let mut q = Query::select();
        if self.distinct {
            q.distinct();
        }
        for (item, alias) in &self.selects {
            let expr = match item {
                Item::Expr(expr) => expr.clone(),
                Item::Subquery(sub) => {
                    same_scoping(scoping, sub.scoping())?;
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
                    same_scoping(scoping, sub.scoping())?;
                    q.from_subquery(sub.statement()?, alias.as_str().to_owned())
                }
            };
        }
        for join in &self.joins {
            let mut on = Condition::all();
            if let Some(predicate) = tenant.and_then(|t| join.table.predicate(t)) {
                on = on.add(predicate);
            }
            q.join(
                join.kind.sea(),
                join.table.table_ref(),
                on.add(join.on.clone()),
            );
        }
        let predicates = tenant.into_iter().flat_map(|tenant| {
            self.from
                .iter()
                .filter_map(move |source| source.predicate(tenant))
        });
        self.filter.apply(&mut q, predicates, scoping)?;
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
        self.lock.apply(&mut q, &self.from, &self.joins)?;
        Ok(q)
    }
}
