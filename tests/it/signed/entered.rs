//! The setting `rls_tenancy.enter()` leaves for `rls_tenancy.tenant()` to confirm: its name is
//! the secret. The runtime role can neither find it nor keep it past its transaction, and
//! savepoints neither forge nor keep another tenant's entry.

use rls_tenancy::TenantPool;
use sqlx::{AssertSqlSafe, Row};

use super::attacks::{rows_of, visible};
use crate::support::{TwoTenants, sqlstate};

/// The secret setting's name, read by the superuser.
async fn entered_setting(fixture: &TwoTenants) -> String {
    sqlx::query_scalar("SELECT setting FROM rls_tenancy_secret.token_key")
        .fetch_one(&fixture.admin)
        .await
        .expect("the setting's name")
}

#[tokio::test]
async fn the_entered_setting_is_hidden_from_the_runtime_role() {
    let fixture = TwoTenants::signed().await;
    let a = fixture.a.scope.id().as_i64().expect("id");
    let name = entered_setting(&fixture).await;
    assert!(
        name.starts_with("rls_tenancy.c") && name.len() > 64,
        "{name}"
    );
    let pool = fixture.runtime_pool(1).await;
    let mut tx = pool.begin(&fixture.a.scope).await.expect("A's transaction");
    // It is there: whoever knows the name reads A's entry, so the searches below can fail.
    let entry: Option<String> = sqlx::query_scalar("SELECT current_setting($1, true)")
        .bind(&name)
        .fetch_one(&mut *tx)
        .await
        .expect("current_setting");
    assert_eq!(entry, Some(format!("app.tenant_id|{a}")));
    // Nothing the runtime role can list names it.
    let listed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_settings WHERE name = $1 OR setting = $2 OR name LIKE 'rls_tenancy.%'",
    )
    .bind(&name)
    .bind(format!("app.tenant_id|{a}"))
    .fetch_one(&mut *tx)
    .await
    .expect("pg_settings");
    assert_eq!(listed, 0);
    let all = sqlx::raw_sql("SHOW ALL")
        .fetch_all(&mut *tx)
        .await
        .expect("SHOW ALL");
    assert!(all.len() > 100, "SHOW ALL lists the settings");
    for row in &all {
        let (setting, value): (String, String) = (row.get(0), row.get(1));
        assert!(
            setting != name && !value.contains("app.tenant_id|"),
            "SHOW ALL: {setting} = {value}"
        );
    }
    let in_functions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_proc
          WHERE strpos(coalesce(prosrc, '') || coalesce(array_to_string(proconfig, ' '), ''), $1) > 0",
    )
    .bind(&name)
    .fetch_one(&mut *tx)
    .await
    .expect("pg_proc");
    assert_eq!(in_functions, 0, "a function's text or settings name it");
    tx.rollback().await.expect("rollback");
}

#[tokio::test]
async fn the_entry_does_not_outlive_its_transaction() {
    let fixture = TwoTenants::signed().await;
    let a = fixture.a.scope.id().as_i64().expect("id");
    let raw = fixture.raw_runtime_pool(1).await;
    let pool = TenantPool::from_pool(raw.clone(), fixture.pool_options())
        .await
        .expect("tenant pool");
    let mut tx = pool.begin(&fixture.a.scope).await.expect("A's transaction");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *tx)
        .await
        .expect("pid");
    assert!(!visible(&mut tx).await.is_empty(), "A sees its rows");
    tx.commit().await.expect("commit");

    // The same server connection, a later transaction that did not enter: A's entry is gone,
    // and setting the variable to A again does not bring it back.
    let mut conn = raw.acquire().await.expect("the same connection");
    let same: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .expect("pid");
    assert_eq!(same, pid, "one connection in the pool");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "BEGIN; SELECT set_config('app.tenant_id', '{a}', true)"
    )))
    .execute(&mut *conn)
    .await
    .expect("begin");
    let tenant: Option<String> = sqlx::query_scalar("SELECT rls_tenancy.tenant('app.tenant_id')")
        .fetch_one(&mut *conn)
        .await
        .expect("tenant()");
    assert_eq!(tenant, None);
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM app.projects")
        .fetch_one(&mut *conn)
        .await
        .expect("count");
    assert_eq!(seen, 0, "a later transaction sees A's rows");
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut *conn)
        .await
        .expect("rollback");
    drop(conn);

    // COMMIT AND CHAIN starts the next transaction at once: without A's entry either.
    let mut tx = pool.begin(&fixture.a.scope).await.expect("A's transaction");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "COMMIT AND CHAIN; SELECT set_config('app.tenant_id', '{a}', true)"
    )))
    .execute(&mut *tx)
    .await
    .expect("commit and chain");
    assert!(
        visible(&mut tx).await.is_empty(),
        "the chained transaction sees rows"
    );
    tx.rollback().await.expect("rollback");
}

#[tokio::test]
async fn savepoints_neither_forge_nor_keep_an_entry() {
    let fixture = TwoTenants::signed().await;
    let (a, b) = (
        fixture.a.scope.id().as_i64().expect("id"),
        fixture.b.scope.id().as_i64().expect("id"),
    );
    let key_id = fixture.db.tenant_key().expect("signed").id();
    let pool = fixture.runtime_pool(1).await;
    let now_ms = "(extract(epoch FROM statement_timestamp()) * 1000)::bigint";

    // A refused entry for B inside a savepoint, rolled back: still A, never B.
    let mut tx = pool.begin(&fixture.a.scope).await.expect("A's transaction");
    sqlx::raw_sql("SAVEPOINT s")
        .execute(&mut *tx)
        .await
        .expect("savepoint");
    let refused = sqlx::raw_sql(AssertSqlSafe(format!(
        "SELECT rls_tenancy.enter('app.tenant_id', '{b}', '{key_id}', 7, {now_ms}, repeat('0', 64))"
    )))
    .execute(&mut *tx)
    .await;
    assert_eq!(sqlstate(&refused).as_deref(), Some("28000"), "{refused:?}");
    sqlx::raw_sql("ROLLBACK TO SAVEPOINT s")
        .execute(&mut *tx)
        .await
        .expect("rollback to savepoint");
    let seen = visible(&mut tx).await;
    assert!(
        !seen.is_empty() && seen.iter().all(|(_, _, account)| *account == a),
        "{seen:?}"
    );
    tx.rollback().await.expect("rollback");

    // RESET ALL inside a released savepoint takes the entry away: nothing, not B.
    let mut tx = pool.begin(&fixture.a.scope).await.expect("A's transaction");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SAVEPOINT s; RESET ALL; SELECT set_config('app.tenant_id', '{b}', true); RELEASE SAVEPOINT s"
    )))
    .execute(&mut *tx)
    .await
    .expect("trick");
    assert!(visible(&mut tx).await.is_empty(), "fail closed");
    tx.rollback().await.expect("rollback");
    assert!(rows_of(&fixture.admin, b).await >= 4);
}
