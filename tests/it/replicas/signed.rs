//! The signed tenant context on a hot standby: `enter()` and `tenant()` write nothing (they
//! read the keys and set transaction-local settings), so a signed tenant transaction runs on
//! a streaming standby, sees its own tenant's rows only, and the forging tricks fail there as
//! on the primary.

use std::time::Duration;

use rls_tenancy::TenantPool;
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPoolOptions;

use super::shared;
use crate::signed::attacks::visible;
use crate::support::{TwoTenants, sqlstate};

#[tokio::test]
async fn a_signed_tenant_transaction_runs_on_a_standby_where_forging_fails_too() {
    let shared = shared().await;
    let standby = shared.fast()[0];
    let fixture = TwoTenants::signed_on(shared.cluster.primary().clone()).await;
    shared
        .cluster
        .wait_replayed(standby, Duration::from_secs(60))
        .await
        .expect("the standby replays the fixture");
    let (a, b) = (
        fixture.a.scope.id().as_i64().expect("id"),
        fixture.b.scope.id().as_i64().expect("id"),
    );
    let url = standby
        .url_for(fixture.db.runtime_url())
        .expect("standby url");
    let raw = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(url.connect_options().expect("options"))
        .await
        .expect("runtime pool on the standby");
    let pool = TenantPool::from_pool(raw, fixture.pool_options())
        .await
        .expect("a signed tenant pool on the standby");

    let mut tx = pool.begin(&fixture.a.scope).await.expect("A's transaction");
    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&mut *tx)
        .await
        .expect("recovery");
    assert!(in_recovery, "not a standby");
    let seen = visible(&mut tx).await;
    assert!(
        !seen.is_empty() && seen.iter().all(|(_, _, account)| *account == a),
        "{seen:?}"
    );
    tx.commit().await.expect("commit");

    let key_id = fixture.db.tenant_key().expect("signed").id();
    let tricks = [
        format!("SELECT set_config('app.tenant_id', '{b}', true)"),
        format!("SET app.tenant_id = '{b}'"),
        "RESET ALL".to_owned(),
        format!(
            "SAVEPOINT s; SELECT set_config('app.tenant_id', '{b}', false); RELEASE SAVEPOINT s"
        ),
        format!(
            "SELECT set_config('rls_tenancy.c' || repeat('0', 64), 'app.tenant_id|{b}', true), set_config('app.tenant_id', '{b}', true)"
        ),
    ];
    for trick in &tricks {
        let mut tx = pool.begin(&fixture.a.scope).await.expect("A's transaction");
        sqlx::raw_sql(AssertSqlSafe(trick.clone()))
            .execute(&mut *tx)
            .await
            .expect("the trick itself runs");
        let seen = visible(&mut tx).await;
        assert!(
            seen.iter().all(|(_, _, account)| *account != b),
            "after {trick:?} tenant B's rows are visible on the standby: {seen:?}"
        );
        tx.rollback().await.expect("rollback");
    }
    // A guessed signature is refused on the standby as on the primary.
    let mut tx = pool.begin(&fixture.a.scope).await.expect("A's transaction");
    let refused = sqlx::raw_sql(AssertSqlSafe(format!(
        "SELECT rls_tenancy.enter('app.tenant_id', '{b}', '{key_id}', 1, (extract(epoch FROM statement_timestamp()) * 1000)::bigint, repeat('0', 64))"
    )))
    .execute(&mut *tx)
    .await;
    assert_eq!(sqlstate(&refused).as_deref(), Some("28000"), "{refused:?}");
    drop(tx);
}
