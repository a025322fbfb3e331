//! Every select shape the builder supports, written once and built both scoped and
//! cross-tenant, and the check that the scoped SQL has a tenant predicate on every table.
//!
//! Join and sub-select conditions are chosen so that, without the tenant predicate, rows of
//! the other tenant would change the result (ids are global identities and `beta`'s are
//! larger than `alpha`'s): a missing predicate cannot hide behind a foreign key.

use rls_tenancy::sea_query::{Expr, ExprTrait, Func};
use rls_tenancy::{
    CrossTenant, Filtered, JoinKind, Result, Scoping, Select, TenancyDeclaration, TenantId,
    TenantScope,
};

use super::{assert_every_table_scoped, scoping_gaps};

/// A select shape. Each selects `(row id, LEAST(account ids), GREATEST(account ids))` over
/// the tables whose rows it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    From,
    InnerJoin,
    LeftJoin,
    ThreeTables,
    SelfJoin,
    WhereIn,
    WhereNotIn,
    Exists,
    NotExists,
    FromSubquery,
    NestedSubqueries,
}

pub(crate) const SHAPES: [Shape; 11] = [
    Shape::From,
    Shape::InnerJoin,
    Shape::LeftJoin,
    Shape::ThreeTables,
    Shape::SelfJoin,
    Shape::WhereIn,
    Shape::WhereNotIn,
    Shape::Exists,
    Shape::NotExists,
    Shape::FromSubquery,
    Shape::NestedSubqueries,
];

/// The row every shape returns.
pub(crate) type Row = (i64, Option<i64>, Option<i64>);

fn tenants(names: &[&'static str]) -> [Expr; 2] {
    let ids = || names.iter().map(|n| Expr::col((*n, "account_id")));
    [Func::least(ids()).into(), Func::greatest(ids()).into()]
}

fn row<'d, S: Scoping>(
    q: Select<'d, S>,
    id: &'static str,
    names: &[&'static str],
) -> Select<'d, S> {
    let [least, greatest] = tenants(names);
    q.column((id, "id")).expr(least).expr(greatest)
}

/// Builds `shape`, starting every (sub-)select with `new`.
pub(crate) fn build<'d, S: Scoping>(
    shape: Shape,
    new: &dyn Fn() -> Select<'d, S>,
) -> Select<'d, S> {
    match shape {
        Shape::From => row(new().from_as("tasks", "a"), "a", &["a"]),
        Shape::InnerJoin => row(
            new().from_as("subtasks", "s").join_as(
                JoinKind::Inner,
                "tasks",
                "t",
                Expr::col(("t", "is_complete")).equals(("s", "is_complete")),
            ),
            "s",
            &["s", "t"],
        ),
        Shape::LeftJoin => row(
            new().from_as("subtasks", "s").join_as(
                JoinKind::Left,
                "tasks",
                "t",
                Expr::col(("t", "is_complete")).equals(("s", "is_complete")),
            ),
            "s",
            &["s", "t"],
        ),
        Shape::ThreeTables => row(
            new()
                .from_as("subtasks", "s")
                .join_as(
                    JoinKind::Inner,
                    "tasks",
                    "t",
                    Expr::col(("t", "id")).equals(("s", "task_id")),
                )
                .join_as(
                    JoinKind::Left,
                    "projects",
                    "p",
                    Expr::col(("p", "id")).gte(Expr::col(("t", "project_id"))),
                ),
            "s",
            &["s", "t", "p"],
        ),
        Shape::SelfJoin => row(
            new().from_as("tasks", "a").join_as(
                JoinKind::Inner,
                "tasks",
                "b",
                Expr::col(("b", "project_id")).ne(Expr::col(("a", "project_id"))),
            ),
            "a",
            &["a", "b"],
        ),
        Shape::WhereIn => row(
            new().from_as("projects", "o").and_where_in(
                Expr::col(("o", "id")),
                new().from("projects").expr(Expr::col("id").max()),
            ),
            "o",
            &["o"],
        ),
        Shape::WhereNotIn => row(
            new().from_as("projects", "o").and_where_not_in(
                Expr::col(("o", "id")),
                new().from("projects").expr(Expr::col("id").min()),
            ),
            "o",
            &["o"],
        ),
        Shape::Exists => row(
            new().from_as("tasks", "a").and_where_exists(
                new()
                    .from_as("projects", "p")
                    .expr(Expr::val(1))
                    .and_where(Expr::col(("p", "id")).gt(Expr::col(("a", "project_id")))),
            ),
            "a",
            &["a"],
        ),
        Shape::NotExists => row(
            new().from_as("tasks", "a").and_where_not_exists(
                new()
                    .from_as("projects", "p")
                    .expr(Expr::val(1))
                    .and_where(Expr::col(("p", "id")).gt(Expr::col(("a", "project_id")))),
            ),
            "a",
            &["a"],
        ),
        Shape::FromSubquery => row(
            new().from_subquery(new().from("tasks").columns(["id", "account_id"]), "sub"),
            "sub",
            &["sub"],
        ),
        Shape::NestedSubqueries => row(
            new().from_as("projects", "o").and_where_in(
                Expr::col(("o", "id")),
                new().from("tasks").column("project_id").and_where_in(
                    Expr::col("id"),
                    new().from("subtasks").expr(Expr::col("task_id").max()),
                ),
            ),
            "o",
            &["o"],
        ),
    }
}

#[test]
fn every_select_shape_puts_the_tenant_predicate_on_every_table_it_references() -> Result<()> {
    let decl = TenancyDeclaration::reference()?;
    let scope = TenantScope::new(TenantId::new(41)?, "acme".parse()?);
    for shape in SHAPES {
        let select = build(shape, &|| scope.select(&decl));
        assert_every_table_scoped(&select, scope.id())?;
    }
    Ok(())
}

#[test]
fn joined_tables_are_scoped_in_their_on_clause_so_left_joins_stay_left_joins() -> Result<()> {
    let decl = TenancyDeclaration::reference()?;
    let scope = TenantScope::new(TenantId::new(41)?, "acme".parse()?);
    let (sql, _) = build(Shape::LeftJoin, &|| scope.select(&decl)).build()?;
    let on = sql.find(" ON ").unwrap_or(usize::MAX);
    let predicate = sql.find(r#""t"."account_id" = $"#).unwrap_or(0);
    let r#where = sql.find(" WHERE ").unwrap_or(0);
    assert!(
        on < predicate && predicate < r#where,
        "t's predicate is not in ON: {sql}"
    );
    assert!(sql.contains(r#"LEFT JOIN "app"."tasks" AS "t""#), "{sql}");
    Ok(())
}

#[test]
fn the_predicate_check_itself_catches_an_unscoped_statement() -> Result<()> {
    let decl = TenancyDeclaration::reference()?;
    let cross = CrossTenant::new("test: an unscoped statement must fail the check");
    for shape in SHAPES {
        let unscoped = build(shape, &|| cross.select(&decl));
        let gaps = scoping_gaps(&unscoped, TenantId::new(41)?)?;
        assert!(
            !gaps.is_empty(),
            "{shape:?}: the check passed SQL without predicates"
        );
    }
    Ok(())
}
