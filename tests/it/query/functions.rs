//! GROUP BY / HAVING and the function allow-list against a real database: aggregates count
//! one tenant's rows, and functions off the list are refused before anything is sent.

use rls_tenancy::sea_query::{Expr, ExprTrait, Func, Order};
use rls_tenancy::{Filtered, QueryError, Result, StatementError, TenancyDeclaration, TenantScope};

use crate::fixture::TwoTenants;

#[tokio::test]
async fn group_by_and_having_aggregate_only_the_scope_tenants_rows() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    let per_project = |scope: &TenantScope| {
        scope
            .select(&decl)
            .from("tasks")
            .column("project_id")
            .expr_as(Expr::col("id").count(), "n")
            .group_by("project_id")
            .and_having(Expr::col("id").count().gte(3))
            .order_by("project_id", Order::Asc)
    };
    let bypass = t.bypass().await?;
    for (scope, projects) in [(&t.alpha, 2), (&t.beta, 3)] {
        let mut tx = bypass.begin(scope).await?;
        let rows: Vec<(i64, i64)> = tx.fetch_all(&per_project(scope)).await?;
        tx.rollback().await?;
        assert_eq!(rows.len(), projects, "{scope:?}: {rows:?}");
        assert!(rows.iter().all(|(_, n)| *n == 3), "{rows:?}");
    }
    Ok(())
}

#[tokio::test]
async fn allowed_functions_compute_over_one_tenant() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    for (scope, joined) in [
        (
            &t.alpha,
            ["2024-01-05", "2024-01-20", "2024-02-03"].as_slice(),
        ),
        (&t.beta, ["2024-01-07"; 5].as_slice()),
    ] {
        for (i, day) in joined.iter().enumerate() {
            sqlx::query(
                "INSERT INTO app.users (account_id, email, first_name, last_name, password, date_joined)
                 VALUES ($1, $2, 'F', 'L', 'x', $3::timestamptz)",
            )
            .bind(scope.id().as_i64().expect("bigint id"))
            .bind(format!("user{i}@example.test"))
            .bind(*day)
            .execute(&t.admin)
            .await?;
        }
    }
    let month = Func::cust("to_char").args([
        Func::cust("date_trunc")
            .args([Expr::val("month"), Expr::col("date_joined")])
            .into(),
        Expr::val("YYYY-MM"),
    ]);
    let by_month = t
        .alpha
        .select(&decl)
        .from("users")
        .expr_as(month, "month")
        .expr_as(Expr::col("id").count(), "n")
        .group_by("month")
        .order_by("month", Order::Asc);
    let subtasks = t
        .alpha
        .select(&decl)
        .from("subtasks")
        .expr(Expr::col("id").count())
        .expr(Func::count(
            Func::cust("nullif").args([Expr::col("is_complete"), Expr::val(false)]),
        ))
        .expr(Func::max(Func::upper(Expr::col("name"))))
        .expr(Func::min(Func::cust("length").arg(Expr::col("name"))))
        .expr(Func::cust("coalesce").args([
            Func::max(Func::cust("nullif").args([Expr::col("details"), Expr::val("")])).into(),
            Expr::val("none"),
        ]));
    let bypass = t.bypass().await?;
    let mut tx = bypass.begin(&t.alpha).await?;
    let months: Vec<(String, i64)> = tx.fetch_all(&by_month).await?;
    let summary: (i64, i64, String, i32, String) = tx.fetch_one(&subtasks).await?;
    tx.rollback().await?;
    assert_eq!(
        months,
        vec![("2024-01".to_owned(), 2), ("2024-02".to_owned(), 1)]
    );
    assert_eq!(
        summary,
        (24, 12, "SUBTASK 4".to_owned(), 9, "none".to_owned())
    );
    Ok(())
}

#[tokio::test]
async fn a_function_off_the_allow_list_is_refused_and_nothing_is_sent() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    let mut tx = t.pool.begin(&t.alpha).await?;
    let cases = [
        (
            t.alpha
                .select(&decl)
                .from("tasks")
                .expr(Func::cust("pg_sleep").arg(10)),
            "pg_sleep",
        ),
        (
            t.alpha.select(&decl).from("tasks").column("id").and_where(
                Expr::from(Func::cust("set_config").args([
                    Expr::val("app.tenant_id"),
                    Expr::val(t.beta.id().to_string()),
                    Expr::val(false),
                ]))
                .is_not_null(),
            ),
            "set_config",
        ),
        (
            t.alpha
                .select(&decl)
                .from("tasks")
                .expr(Func::lower(Func::cust("query_to_xml").args([
                    Expr::val("SELECT * FROM app.tasks"),
                    Expr::val(true),
                    Expr::val(true),
                    Expr::val(""),
                ]))),
            "query_to_xml",
        ),
    ];
    for (select, name) in cases {
        let result: std::result::Result<Vec<(i64,)>, _> = tx.fetch_all(&select).await;
        match result {
            Err(StatementError::Refused(QueryError::FunctionNotAllowed { name: refused })) => {
                assert_eq!(refused, name);
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // Nothing reached the server: the transaction still works, still as alpha.
    assert_eq!(t.projects_seen(&mut tx).await?, 2);
    tx.commit().await?;
    Ok(())
}
