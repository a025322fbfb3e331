//! Scoped inserts, updates and deletes against a real database.

use rls_tenancy::sea_query::{Expr, ExprTrait, Value};
use rls_tenancy::{
    CrossTenant, Filtered, QueryError, Result, Returning, StatementError, TenancyDeclaration,
    TenantPool, TenantPoolOptions, TenantScope,
};

use super::assert_every_table_scoped;
use crate::fixture::TwoTenants;
use crate::logs::Warnings;

async fn count(t: &TwoTenants, table: &str, scope: &TenantScope, extra: &str) -> Result<i64> {
    let sql = match (table, extra) {
        ("tasks", "") => "SELECT count(*) FROM app.tasks WHERE account_id = $1",
        ("tasks", "complete") => {
            "SELECT count(*) FROM app.tasks WHERE account_id = $1 AND is_complete"
        }
        ("subtasks", "") => "SELECT count(*) FROM app.subtasks WHERE account_id = $1",
        ("projects", "") => "SELECT count(*) FROM app.projects WHERE account_id = $1",
        _ => unreachable!("no such count in the test"),
    };
    Ok(sqlx::query_scalar(sql)
        .bind(scope.id().as_i64().expect("bigint id"))
        .fetch_one(&t.admin)
        .await?)
}

#[tokio::test]
async fn an_insert_writes_the_scope_tenant_and_refuses_another() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    let insert = t
        .alpha
        .insert(&decl, "projects")
        .columns(["name"])
        .values(["new"])
        .returning(["account_id"]);
    let (sql, values) = insert.build()?;
    assert!(
        sql.starts_with(r#"INSERT INTO "app"."projects" ("account_id", "name")"#),
        "{sql}"
    );
    assert_eq!(
        values.0.0[0],
        Value::BigInt(Some(t.alpha.id().as_i64().expect("bigint id")))
    );
    let mut tx = t.pool.begin(&t.alpha).await?;
    let (account_id,): (i64,) = tx.fetch_one(&insert).await?;
    tx.commit().await?;
    assert_eq!(account_id, t.alpha.id().as_i64().expect("bigint id"));
    assert_eq!(count(&t, "projects", &t.alpha, "").await?, 3);
    assert_eq!(count(&t, "projects", &t.beta, "").await?, 3);

    let foreign = t
        .alpha
        .insert(&decl, "projects")
        .columns(["account_id", "name"])
        .values([
            Expr::val(t.beta.id().as_i64().expect("bigint id")),
            Expr::val("smuggled"),
        ]);
    let mut tx = t.pool.begin(&t.alpha).await?;
    let refused = tx.execute(&foreign).await;
    assert!(matches!(
        refused,
        Err(StatementError::Refused(
            QueryError::ForeignTenantValue { .. }
        ))
    ));
    let computed = t
        .alpha
        .insert(&decl, "projects")
        .columns(["account_id", "name"])
        .values([
            Expr::val(t.alpha.id().as_i64().expect("bigint id")).add(0),
            Expr::val("computed"),
        ]);
    let computed = tx.execute(&computed).await;
    assert!(
        matches!(
            &computed,
            Err(StatementError::Refused(QueryError::ForeignTenantValue { column })) if column == "account_id"
        ),
        "only a plain value may name the tenant: {computed:?}"
    );
    let same = t
        .alpha
        .insert(&decl, "projects")
        .columns(["account_id", "name"])
        .values([
            Expr::val(t.alpha.id().as_i64().expect("bigint id")),
            Expr::val("explicit"),
        ]);
    assert_eq!(tx.execute(&same).await?, 1);
    tx.commit().await?;
    assert_eq!(count(&t, "projects", &t.alpha, "").await?, 4);
    assert_eq!(count(&t, "projects", &t.beta, "").await?, 3);
    Ok(())
}

#[tokio::test]
async fn an_update_touches_only_its_tenant_even_with_row_level_security_bypassed() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    let bypass = TenantPool::from_pool(
        t.admin.clone(),
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration")).skip_guard(),
    )
    .await?;
    let everything = t.alpha.update(&decl, "tasks").value("is_complete", true);
    assert_every_table_scoped(&everything, t.alpha.id())?;
    let mut tx = bypass.begin(&t.alpha).await?;
    assert_eq!(tx.execute(&everything).await?, 6);
    tx.commit().await?;
    assert_eq!(count(&t, "tasks", &t.alpha, "complete").await?, 6);
    assert_eq!(count(&t, "tasks", &t.beta, "complete").await?, 0);

    let moving = t
        .alpha
        .update(&decl, "tasks")
        .value("account_id", t.beta.id().as_i64().expect("bigint id"));
    assert!(matches!(
        moving.build(),
        Err(QueryError::TenantColumnUpdate { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn a_delete_with_a_subquery_removes_only_its_tenants_rows() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    let bypass = TenantPool::from_pool(
        t.admin.clone(),
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration")).skip_guard(),
    )
    .await?;
    // Subtasks of every task: without predicates the sub-select would name beta's tasks too.
    let all_tasks = t.alpha.select(&decl).from("tasks").column("id");
    let delete = t
        .alpha
        .delete(&decl, "subtasks")
        .and_where_in(Expr::col("task_id"), all_tasks)
        .and_where(Expr::col("is_complete").eq(true));
    assert_every_table_scoped(&delete, t.alpha.id())?;
    let mut tx = bypass.begin(&t.alpha).await?;
    assert_eq!(tx.execute(&delete).await?, 12);
    tx.commit().await?;
    assert_eq!(count(&t, "subtasks", &t.alpha, "").await?, 12);
    assert_eq!(count(&t, "subtasks", &t.beta, "").await?, 36);

    // The same through the runtime role: both walls, same answer.
    let everything = t.beta.delete(&decl, "subtasks");
    let mut tx = t.pool.begin(&t.beta).await?;
    assert_eq!(tx.execute(&everything).await?, 36);
    tx.commit().await?;
    assert_eq!(count(&t, "subtasks", &t.alpha, "").await?, 12);
    Ok(())
}

#[tokio::test]
async fn the_cross_tenant_path_reaches_every_tenant_only_on_a_connection_that_may() -> Result<()> {
    let log = Warnings::capture();
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    let report = CrossTenant::new("test: count every tenant's tasks");
    let all = report.select(&decl).from("tasks").column("account_id");
    let mut admin = t.admin.acquire().await?;
    let rows: Vec<(i64,)> = CrossTenant::fetch_all(&mut admin, &all).await?;
    assert_eq!(rows.len(), 6 + 9);
    // As the runtime role, RLS still applies: only the transaction's tenant is seen.
    let mut runtime = t.pool.begin(&t.alpha).await?;
    let seen: Vec<(i64,)> = CrossTenant::fetch_all(&mut runtime, &all).await?;
    assert!(
        seen.iter()
            .all(|(id,)| *id == t.alpha.id().as_i64().expect("bigint id"))
    );
    assert_eq!(seen.len(), 6);

    let written = log.text();
    assert_eq!(
        written.matches("cross-tenant statement").count(),
        2,
        "{written}"
    );
    assert!(
        written.contains("test: count every tenant's tasks"),
        "{written}"
    );
    Ok(())
}
