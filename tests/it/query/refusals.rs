//! What the builder refuses, and that a refusal sends nothing.

use rls_tenancy::demo::subtask_page;
use rls_tenancy::sea_query::{Expr, ExprTrait, Query};
use rls_tenancy::{Filtered, JoinKind, QueryError, Result, StatementError, TenancyDeclaration};

use crate::fixture::TwoTenants;

fn refused_with(result: Result<(String, impl std::fmt::Debug), QueryError>) -> Option<QueryError> {
    result.err()
}

#[tokio::test]
async fn a_statement_for_one_tenant_is_refused_in_another_tenants_transaction() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    let mut tx = t.pool.begin(&t.beta).await?;
    let mismatch = |r: Result<u64, StatementError>| {
        matches!(r, Err(StatementError::Refused(QueryError::ScopeMismatch { statement, other }))
            if statement == t.alpha.id() && other == t.beta.id())
    };
    let select = t.alpha.select(&decl).from("tasks").column("id");
    let rows: Result<Vec<(i64,)>, StatementError> = tx.fetch_all(&select).await;
    assert!(mismatch(rows.map(|r| r.len() as u64)));
    assert!(mismatch(
        tx.execute(
            &t.alpha
                .insert(&decl, "projects")
                .columns(["name"])
                .values(["x"])
        )
        .await
    ));
    assert!(mismatch(
        tx.execute(&t.alpha.update(&decl, "tasks").value("name", "x"))
            .await
    ));
    assert!(mismatch(
        tx.execute(&t.alpha.delete(&decl, "subtasks")).await
    ));
    // Nothing reached the server: the transaction is not aborted and still works.
    let page = subtask_page(&mut tx, 1, 10).await.expect("the page");
    assert_eq!(page.tenant, *t.beta.slug());
    tx.commit().await?;
    Ok(())
}

#[test]
fn a_sub_select_of_another_tenant_is_refused() -> Result<()> {
    let decl = TenancyDeclaration::reference()?;
    let alpha = rls_tenancy::TenantScope::new(rls_tenancy::TenantId::new(1)?, "alpha".parse()?);
    let beta = rls_tenancy::TenantScope::new(rls_tenancy::TenantId::new(2)?, "beta".parse()?);
    let theirs = beta.select(&decl).from("tasks").column("id");
    let mine = alpha.select(&decl).from("subtasks").column("id");
    for built in [
        mine.clone()
            .and_where_in(Expr::col("task_id"), theirs.clone())
            .build(),
        mine.clone().and_where_exists(theirs.clone()).build(),
        alpha
            .select(&decl)
            .from_subquery(theirs.clone(), "x")
            .column("id")
            .build(),
        alpha
            .delete(&decl, "subtasks")
            .and_where_in(Expr::col("task_id"), theirs.clone())
            .build(),
    ] {
        assert!(matches!(
            refused_with(built),
            Some(QueryError::ScopeMismatch { .. })
        ));
    }
    Ok(())
}

#[test]
fn expressions_that_could_smuggle_a_table_or_a_value_are_refused() -> Result<()> {
    let decl = TenancyDeclaration::reference()?;
    let scope = rls_tenancy::TenantScope::new(rls_tenancy::TenantId::new(1)?, "alpha".parse()?);
    let raw = Query::select()
        .column("id")
        .from(("app", "tasks"))
        .to_owned();
    let q = || scope.select(&decl).from("subtasks").column("id");
    let cases = [
        (
            q().and_where(Expr::col("task_id").in_subquery(raw.clone()))
                .build(),
            QueryError::RawSubquery,
        ),
        (
            q().and_where(Expr::exists(raw.clone())).build(),
            QueryError::RawSubquery,
        ),
        (
            q().expr(Expr::cust("(SELECT count(*) FROM app.tasks)"))
                .build(),
            QueryError::RawSql,
        ),
        (
            q().and_where(Expr::cust_with_values("name = ?", ["x"]))
                .build(),
            QueryError::RawSql,
        ),
        (
            q().and_having(Expr::col("id").in_subquery(raw.clone()))
                .build(),
            QueryError::RawSubquery,
        ),
        (
            q().join(JoinKind::Inner, "tasks", Expr::col("id").in_subquery(raw))
                .build(),
            QueryError::RawSubquery,
        ),
        (
            scope
                .update(&decl, "tasks")
                .value("name", Expr::cust("current_user"))
                .build(),
            QueryError::RawSql,
        ),
        (
            scope
                .insert(&decl, "projects")
                .columns(["name"])
                .values([Expr::cust("version()")])
                .build(),
            QueryError::RawSql,
        ),
    ];
    for (i, (built, expected)) in cases.into_iter().enumerate() {
        assert_eq!(refused_with(built), Some(expected), "case {i}");
    }
    Ok(())
}

#[test]
fn undeclared_tables_bad_names_and_half_built_statements_are_refused() -> Result<()> {
    let decl = TenancyDeclaration::reference()?;
    let scope = rls_tenancy::TenantScope::new(rls_tenancy::TenantId::new(1)?, "alpha".parse()?);
    let unknown = |r| matches!(refused_with(r), Some(QueryError::UnknownTable { .. }));
    assert!(unknown(
        scope.select(&decl).from("accounts").column("id").build()
    ));
    assert!(unknown(
        scope
            .select(&decl)
            .from("pg_catalog.pg_user")
            .column("usename")
            .build()
    ));
    assert!(unknown(
        scope
            .select(&decl)
            .from("tasks")
            .join(JoinKind::Left, "accounts", Expr::val(true))
            .build()
    ));
    assert!(unknown(
        scope
            .insert(&decl, "accounts")
            .columns(["slug"])
            .values(["x"])
            .build()
    ));
    assert!(unknown(
        scope.update(&decl, "app.tasks").value("name", "x").build()
    ));
    assert!(unknown(scope.delete(&decl, "\"tasks\"").build()));
    assert_eq!(
        refused_with(
            scope
                .select(&decl)
                .from("tasks")
                .from("tasks")
                .column("id")
                .build()
        ),
        Some(QueryError::DuplicateName {
            name: "tasks".into()
        })
    );
    assert_eq!(
        refused_with(
            scope
                .select(&decl)
                .from_as("tasks", "x")
                .join_as(JoinKind::Inner, "projects", "x", Expr::val(true))
                .build()
        ),
        Some(QueryError::DuplicateName { name: "x".into() })
    );
    assert!(matches!(
        refused_with(
            scope
                .select(&decl)
                .from_as("tasks", "t\" OR 1=1 --")
                .build()
        ),
        Some(QueryError::InvalidName { .. })
    ));
    assert_eq!(
        refused_with(scope.select(&decl).column("id").build()),
        Some(QueryError::NoTable)
    );
    assert_eq!(
        refused_with(scope.insert(&decl, "projects").columns(["name"]).build()),
        Some(QueryError::NoValues {
            statement: "insert"
        })
    );
    assert_eq!(
        refused_with(
            scope
                .select(&decl)
                .from("tasks")
                .column("id")
                .offset(u64::MAX)
                .build()
        ),
        Some(QueryError::OutOfRange { value: u64::MAX })
    );
    Ok(())
}
