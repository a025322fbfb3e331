//! Every trick SQL inside tenant A's transaction could try to reach tenant B.

use rls_tenancy::TenantTx;
use sqlx::{AssertSqlSafe, PgPool};

use crate::support::{TENANT_TABLES, TwoTenants, sqlstate};

/// `(table, id, account_id)` of every tenant row the transaction sees.
pub async fn visible(tx: &mut TenantTx) -> Vec<(String, i64, i64)> {
    sqlx::query_as(
        "SELECT 'users', id, account_id FROM app.users
         UNION ALL SELECT 'projects', id, account_id FROM app.projects
         UNION ALL SELECT 'tasks', id, account_id FROM app.tasks
         UNION ALL SELECT 'subtasks', id, account_id FROM app.subtasks",
    )
    .fetch_all(&mut **tx)
    .await
    .expect("read tenant tables")
}

/// Tenant `account`'s rows, read by the superuser: they are there to be stolen.
pub async fn rows_of(admin: &PgPool, account: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM app.users WHERE account_id = $1)
              + (SELECT count(*) FROM app.projects WHERE account_id = $1)
              + (SELECT count(*) FROM app.tasks WHERE account_id = $1)
              + (SELECT count(*) FROM app.subtasks WHERE account_id = $1)",
    )
    .bind(account)
    .fetch_one(admin)
    .await
    .expect("admin count")
}

/// After `trick` ran in A's transaction: none of B's rows is visible, B's project cannot be
/// renamed, and no row can be written into B; the tenant the policies see is A or nobody.
async fn assert_b_out_of_reach(tx: &mut TenantTx, fixture: &TwoTenants, trick: &str) {
    let b = fixture.b.scope.id().as_i64().expect("bigint id");
    let seen = visible(tx).await;
    assert!(
        seen.iter().all(|(_, _, account)| *account != b),
        "after {trick:?} tenant B's rows are visible: {seen:?}"
    );
    let tenant: Option<String> = sqlx::query_scalar("SELECT rls_tenancy.tenant('app.tenant_id')")
        .fetch_one(&mut **tx)
        .await
        .expect("tenant()");
    assert_ne!(tenant, Some(b.to_string()), "after {trick:?}");
    let renamed = sqlx::query("UPDATE app.projects SET name = 'changed' WHERE id = $1")
        .bind(fixture.b.project)
        .execute(&mut **tx)
        .await
        .expect("update")
        .rows_affected();
    assert_eq!(renamed, 0, "after {trick:?} B's project was renamed");
    let inserted = sqlx::query("INSERT INTO app.projects (account_id, name) VALUES ($1, 'stolen')")
        .bind(b)
        .execute(&mut **tx)
        .await;
    assert_eq!(
        sqlstate(&inserted).as_deref(),
        Some("42501"),
        "after {trick:?} a row was written into B: {inserted:?}"
    );
}

#[tokio::test]
async fn sql_inside_a_tenant_transaction_cannot_switch_to_another_tenant() {
    let fixture = TwoTenants::signed().await;
    let (a, b) = (
        fixture.a.scope.id().as_i64().expect("id"),
        fixture.b.scope.id().as_i64().expect("id"),
    );
    assert!(rows_of(&fixture.admin, b).await >= 4, "B has rows to steal");
    let pool = fixture.runtime_pool(2).await;
    let tricks = [
        format!("SELECT set_config('app.tenant_id', '{b}', true)"),
        format!("SELECT set_config('app.tenant_id', '{b}', false)"),
        format!("SET app.tenant_id = '{b}'"),
        format!("SET LOCAL app.tenant_id = '{b}'"),
        "RESET app.tenant_id".to_owned(),
        "RESET ALL".to_owned(),
        // A guess at the secret setting enter() leaves, with B's value.
        format!(
            "SELECT set_config('rls_tenancy.c' || repeat('0', 64), 'app.tenant_id|{b}', true), set_config('app.tenant_id', '{b}', true)"
        ),
        format!("SAVEPOINT s; SELECT set_config('app.tenant_id', '{b}', true)"),
        format!(
            "SAVEPOINT s; SELECT set_config('app.tenant_id', '{b}', false); RELEASE SAVEPOINT s"
        ),
        format!("SAVEPOINT s; SET app.tenant_id = '{b}'; ROLLBACK TO SAVEPOINT s"),
        format!("SELECT set_config('app.tenant_id', ' {b}', true)"),
        format!("SELECT set_config('app.tenant_id', '{b}.0', true)"),
    ];
    for trick in &tricks {
        let mut tx = pool.begin(&fixture.a.scope).await.expect("A's transaction");
        let own = visible(&mut tx).await;
        assert!(
            own.iter().any(|(_, _, account)| *account == a),
            "A sees its own rows before {trick:?}"
        );
        sqlx::raw_sql(AssertSqlSafe(trick.clone()))
            .execute(&mut *tx)
            .await
            .expect("the trick itself runs");
        assert_b_out_of_reach(&mut tx, &fixture, trick).await;
        tx.rollback().await.expect("rollback");
    }
    assert!(rows_of(&fixture.admin, b).await >= 4);
    let renamed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM app.projects WHERE name IN ('changed', 'stolen')")
            .fetch_one(&fixture.admin)
            .await
            .expect("admin count");
    assert_eq!(renamed, 0);
}

/// A `search_path` that shadows `=`, `<>` and `current_setting` with functions every role may
/// use (the deploy role the check functions run as included; made by the superuser here: the
/// runtime role can create nothing), first in A's path, must not make a forged tenant pass:
/// the check functions pin their own `search_path` (the guard refuses them unpinned). Without
/// the pin, `tenant()`'s unqualified `=` would be the shadow's and B's rows would show.
#[tokio::test]
async fn a_search_path_that_shadows_the_checks_operators_and_functions_changes_nothing() {
    let fixture = TwoTenants::signed().await;
    let (a, b) = (
        fixture.a.scope.id().as_i64().expect("id"),
        fixture.b.scope.id().as_i64().expect("id"),
    );
    let pool = fixture.runtime_pool(1).await;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE SCHEMA shadow;
         CREATE FUNCTION shadow.always(text, text) RETURNS boolean LANGUAGE sql IMMUTABLE RETURN true;
         CREATE OPERATOR shadow.= (LEFTARG = text, RIGHTARG = text, FUNCTION = shadow.always);
         CREATE OPERATOR shadow.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = shadow.always);
         CREATE FUNCTION shadow.current_setting(text, boolean) RETURNS text LANGUAGE sql STABLE RETURN '{b}';
         GRANT USAGE ON SCHEMA shadow TO PUBLIC;
         GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA shadow TO PUBLIC"
    )))
    .execute(&fixture.admin)
    .await
    .expect("the shadowing schema");
    let shadowed = "SET LOCAL search_path = shadow, pg_catalog, app";
    let mut tx = pool.begin(&fixture.a.scope).await.expect("A's transaction");
    sqlx::raw_sql(shadowed)
        .execute(&mut *tx)
        .await
        .expect("search_path");
    let (equal, setting): (bool, String) =
        sqlx::query_as("SELECT 'x'::text = 'y'::text, current_setting('app.tenant_id', true)")
            .fetch_one(&mut *tx)
            .await
            .expect("the shadow is in effect");
    assert!(equal, "the shadowing = is the one unqualified SQL finds");
    assert_eq!(
        setting,
        b.to_string(),
        "so is the shadowing current_setting"
    );
    let own = visible(&mut tx).await;
    assert!(
        own.iter().any(|(_, _, account)| *account == a),
        "A still sees its own rows under the shadowing search_path: {own:?}"
    );
    let trick = format!("{shadowed}; SELECT set_config('app.tenant_id', '{b}', true)");
    sqlx::raw_sql(AssertSqlSafe(trick.clone()))
        .execute(&mut *tx)
        .await
        .expect("the trick itself runs");
    assert_b_out_of_reach(&mut tx, &fixture, &trick).await;
    tx.rollback().await.expect("rollback");
}

#[tokio::test]
async fn a_savepoint_rolled_back_restores_the_own_tenant_and_never_another() {
    let fixture = TwoTenants::signed().await;
    let (a, b) = (
        fixture.a.scope.id().as_i64().expect("id"),
        fixture.b.scope.id().as_i64().expect("id"),
    );
    let pool = fixture.runtime_pool(1).await;
    let mut tx = pool.begin(&fixture.a.scope).await.expect("A's transaction");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SAVEPOINT s; SELECT set_config('app.tenant_id', '{b}', true)"
    )))
    .execute(&mut *tx)
    .await
    .expect("trick");
    assert!(
        visible(&mut tx).await.is_empty(),
        "a forged tenant sees nothing"
    );
    sqlx::raw_sql("ROLLBACK TO SAVEPOINT s")
        .execute(&mut *tx)
        .await
        .expect("rollback to savepoint");
    let seen = visible(&mut tx).await;
    assert!(seen.iter().any(|(_, _, account)| *account == a), "{seen:?}");
    assert!(seen.iter().all(|(_, _, account)| *account == a), "{seen:?}");
    tx.rollback().await.expect("rollback");
}

#[tokio::test]
async fn switching_role_or_reading_the_keys_is_refused() {
    let fixture = TwoTenants::signed().await;
    let pool = fixture.runtime_pool(1).await;
    let deploy = fixture.db.deploy_role().as_str().to_owned();
    for (trick, code) in [
        (format!("SET ROLE {deploy}"), "42501"),
        (format!("SET SESSION AUTHORIZATION {deploy}"), "42501"),
        (
            "SELECT inner_block FROM rls_tenancy_secret.tenant_keys".to_owned(),
            "42501",
        ),
        (
            "SELECT inner_block FROM rls_tenancy_secret.token_key".to_owned(),
            "42501",
        ),
        (
            "SELECT rls_tenancy_secret.entered_setting()".to_owned(),
            "42501",
        ),
    ] {
        let mut tx = pool.begin(&fixture.a.scope).await.expect("A's transaction");
        let refused = sqlx::raw_sql(AssertSqlSafe(trick.clone()))
            .execute(&mut *tx)
            .await;
        assert_eq!(
            sqlstate(&refused).as_deref(),
            Some(code),
            "{trick}: {refused:?}"
        );
        drop(tx);
    }
}

#[tokio::test]
async fn calling_the_check_functions_with_guesses_never_yields_another_tenant() {
    let fixture = TwoTenants::signed().await;
    let b = fixture.b.scope.id().as_i64().expect("id");
    let key_id = fixture.db.tenant_key().expect("signed").id();
    let pool = fixture.runtime_pool(1).await;
    let now_ms = "(extract(epoch FROM statement_timestamp()) * 1000)::bigint";
    let guesses = [
        // The right key id, a guessed signature.
        format!(
            "SELECT rls_tenancy.enter('app.tenant_id', '{b}', '{key_id}', 1, {now_ms}, repeat('0', 64))"
        ),
        format!(
            "SELECT rls_tenancy.enter('app.tenant_id', '{b}', '{key_id}', 1, {now_ms}, encode(sha256('{b}'), 'hex'))"
        ),
        // An unknown key id.
        format!(
            "SELECT rls_tenancy.enter('app.tenant_id', '{b}', '0000000000000000', 1, {now_ms}, repeat('0', 64))"
        ),
        // Not a signature at all.
        format!("SELECT rls_tenancy.enter('app.tenant_id', '{b}', '{key_id}', 1, {now_ms}, 'x')"),
        format!("SELECT rls_tenancy.enter('app.tenant_id', '{b}', '{key_id}', 1, {now_ms}, NULL)"),
    ];
    for guess in &guesses {
        let mut tx = pool.begin(&fixture.a.scope).await.expect("A's transaction");
        let refused = sqlx::raw_sql(AssertSqlSafe(guess.clone()))
            .execute(&mut *tx)
            .await;
        assert_eq!(
            sqlstate(&refused).as_deref(),
            Some("28000"),
            "{guess}: {refused:?}"
        );
        drop(tx);
    }
    // tenant() with any variable name answers A's tenant or nothing.
    let mut tx = pool.begin(&fixture.a.scope).await.expect("A's transaction");
    for variable in ["app.tenant_id", "rls_tenancy.c", "app.other"] {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "SELECT set_config('{variable}', '{b}', true)"
        )))
        .execute(&mut *tx)
        .await
        .expect("set");
        let answer: Option<String> = sqlx::query_scalar("SELECT rls_tenancy.tenant($1)")
            .bind(variable)
            .fetch_one(&mut *tx)
            .await
            .expect("tenant()");
        assert_eq!(answer, None, "{variable}");
    }
    tx.rollback().await.expect("rollback");
    assert!(rows_of(&fixture.admin, b).await >= 4);
}

#[tokio::test]
async fn a_connection_without_a_tenant_sees_nothing_in_the_signed_context() {
    let fixture = TwoTenants::signed().await;
    let raw = fixture.raw_runtime_pool(1).await;
    let b = fixture.b.scope.id().as_i64().expect("id");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "SELECT set_config('app.tenant_id', '{b}', false)"
    )))
    .execute(&raw)
    .await
    .expect("session setting");
    for table in TENANT_TABLES {
        let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM app.{table}")))
            .fetch_one(&raw)
            .await
            .expect("count");
        assert_eq!(n, 0, "{table} shows rows to a forged session setting");
    }
    assert!(rows_of(&fixture.admin, b).await >= 4);
}
