//! The routing pool: round-robin reads, the primary for writes and what must read it,
//! tenant isolation on a replica, lagging replicas skipped, an unreachable replica.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rls_tenancy::{RoutedTx, ServedBy, use_primary};
use sqlx::Connection;

use super::{admin_on, options, routing_pool, shared, two_tenants};
use crate::support::sqlstate;

/// The port of the server `tx` runs on.
async fn port(tx: &mut RoutedTx) -> i32 {
    sqlx::query_scalar("SELECT inet_server_port()")
        .fetch_one(&mut ***tx)
        .await
        .expect("server port")
}

/// How many subtasks named `name` the transaction sees.
async fn subtasks_named(tx: &mut RoutedTx, name: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM app.subtasks WHERE name = $1")
        .bind(name)
        .fetch_one(&mut ***tx)
        .await
        .expect("count")
}

#[tokio::test]
async fn reads_go_round_robin_to_the_replicas_and_see_the_tenants_rows() {
    let shared = shared().await;
    let [one, two] = shared.fast();
    let fixture = two_tenants(&shared.cluster, &[one, two]).await;
    let pool = routing_pool(&fixture, options(&fixture, &[one, two])).await;
    let mut per_server = BTreeMap::new();
    for _ in 0..20 {
        let mut tx = pool.read(&fixture.a.scope).await.expect("read");
        assert_eq!(tx.served_by(), ServedBy::Replica);
        assert_eq!(subtasks_named(&mut tx, "subtask of tenant-a").await, 1);
        *per_server.entry(port(&mut tx).await).or_insert(0) += 1;
        tx.commit().await.expect("commit");
    }
    let expected = BTreeMap::from([(i32::from(one.port()), 10), (i32::from(two.port()), 10)]);
    assert_eq!(
        per_server, expected,
        "ten reads on each replica, none on the primary"
    );
}

#[tokio::test]
async fn reads_inside_a_write_transaction_or_use_primary_stay_on_the_primary() {
    let shared = shared().await;
    let [one, _] = shared.fast();
    let fixture = two_tenants(&shared.cluster, &[one]).await;
    let pool = routing_pool(&fixture, options(&fixture, &[one])).await;
    let primary_port = i32::from(
        shared
            .cluster
            .primary()
            .local_cluster()
            .expect("a local primary")
            .port(),
    );

    let mut write = pool.begin(&fixture.a.scope).await.expect("write");
    sqlx::query("UPDATE app.subtasks SET name = 'renamed in a write' WHERE id = $1")
        .bind(fixture.a.subtask)
        .execute(&mut **write)
        .await
        .expect("update");
    let mut inside = pool.read(&fixture.a.scope).await.expect("read inside");
    assert_eq!(inside.served_by(), ServedBy::Primary);
    assert_eq!(port(&mut inside).await, primary_port);
    inside.commit().await.expect("commit read");
    write.commit().await.expect("commit write");

    let mut after = pool.read(&fixture.a.scope).await.expect("read after");
    assert_eq!(
        after.served_by(),
        ServedBy::Replica,
        "no write open: a replica"
    );
    assert_eq!(port(&mut after).await, i32::from(one.port()));
    after.commit().await.expect("commit");

    let mut pinned = use_primary(pool.read(&fixture.a.scope))
        .await
        .expect("read in use_primary");
    assert_eq!(pinned.served_by(), ServedBy::Primary);
    assert_eq!(port(&mut pinned).await, primary_port);
    assert_eq!(subtasks_named(&mut pinned, "renamed in a write").await, 1);
    pinned.commit().await.expect("commit");
}

#[tokio::test]
async fn a_replica_shows_each_tenant_only_its_own_rows_and_refuses_writes() {
    let shared = shared().await;
    let [one, _] = shared.fast();
    let fixture = two_tenants(&shared.cluster, &[one]).await;
    let pool = routing_pool(&fixture, options(&fixture, &[one])).await;
    let admin = admin_on(&fixture, one).await;
    let on_standby: i64 = sqlx::query_scalar("SELECT count(*) FROM app.subtasks WHERE id = $1")
        .bind(fixture.b.subtask)
        .fetch_one(&admin)
        .await
        .expect("count as superuser");
    assert_eq!(on_standby, 1, "B's subtask is on the replica");

    let mut as_a = pool.read(&fixture.a.scope).await.expect("read as A");
    assert_eq!(as_a.served_by(), ServedBy::Replica);
    assert_eq!(
        subtasks_named(&mut as_a, "subtask of tenant-b").await,
        0,
        "A does not see B's row"
    );
    assert_eq!(
        subtasks_named(&mut as_a, "subtask of tenant-a").await,
        1,
        "A sees its own"
    );
    let write = sqlx::query("UPDATE app.subtasks SET name = 'x'")
        .execute(&mut **as_a)
        .await;
    assert_eq!(
        sqlstate(&write).as_deref(),
        Some("25006"),
        "read-only transaction: {write:?}"
    );
    drop(as_a);

    let mut as_b = pool.read(&fixture.b.scope).await.expect("read as B");
    assert_eq!(
        subtasks_named(&mut as_b, "subtask of tenant-b").await,
        1,
        "B sees its row there"
    );
    as_b.commit().await.expect("commit");

    let mut plain = sqlx::PgConnection::connect_with(
        &one.url_for(fixture.db.runtime_url())
            .expect("url")
            .connect_options()
            .expect("options"),
    )
    .await
    .expect("runtime role on the standby");
    let untenanted: i64 = sqlx::query_scalar("SELECT count(*) FROM app.subtasks")
        .fetch_one(&mut plain)
        .await
        .expect("count without a tenant");
    assert_eq!(untenanted, 0, "no tenant on the replica: no rows");
}

#[tokio::test]
async fn a_lagging_replica_is_skipped_and_would_have_served_stale_rows() {
    let shared = shared().await;
    let [fast, _] = shared.fast();
    let delayed = shared.delayed();
    let fixture = two_tenants(&shared.cluster, &[fast, delayed]).await;
    let unlimited = routing_pool(&fixture, options(&fixture, &[fast, delayed])).await;
    let limited = routing_pool(
        &fixture,
        options(&fixture, &[fast, delayed]).max_replica_lag(Duration::from_millis(1000)),
    )
    .await;

    sqlx::query("INSERT INTO app.subtasks (account_id, task_id, name) VALUES ($1, $2, 'fresh')")
        .bind(fixture.a.scope.id().as_i64())
        .bind(fixture.a.task)
        .execute(&fixture.admin)
        .await
        .expect("insert on the primary");
    shared
        .cluster
        .wait_replayed(fast, Duration::from_secs(10))
        .await
        .expect("the fast standby replays at once");

    // Without a lag limit, the delayed standby serves every other read, without the row.
    let mut stale = BTreeMap::new();
    for _ in 0..4 {
        let mut tx = unlimited.read(&fixture.a.scope).await.expect("read");
        let seen = subtasks_named(&mut tx, "fresh").await;
        stale.insert(port(&mut tx).await, seen);
        tx.commit().await.expect("commit");
    }
    assert_eq!(
        stale,
        BTreeMap::from([(i32::from(fast.port()), 1), (i32::from(delayed.port()), 0)]),
        "the delayed standby has not replayed the insert yet"
    );

    let deadline = Instant::now() + Duration::from_secs(2);
    while limited.replica_status()[1]
        .lag
        .is_none_or(|lag| lag <= Duration::from_secs(1))
    {
        assert!(
            Instant::now() < deadline,
            "the lag is seen: {:?}",
            limited.replica_status()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..6 {
        let mut tx = limited.read(&fixture.a.scope).await.expect("read");
        assert_eq!(tx.served_by(), ServedBy::Replica);
        assert_eq!(
            port(&mut tx).await,
            i32::from(fast.port()),
            "the lagging standby is skipped"
        );
        assert_eq!(subtasks_named(&mut tx, "fresh").await, 1);
        tx.commit().await.expect("commit");
    }
}

#[tokio::test]
async fn an_unreachable_replica_at_start_is_marked_down_and_reads_go_to_the_others() {
    let shared = shared().await;
    let [one, _] = shared.fast();
    let fixture = two_tenants(&shared.cluster, &[one]).await;
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let nowhere = fixture
        .db
        .runtime_url()
        .with_port(closed_port)
        .expect("url");
    let pool = routing_pool(&fixture, options(&fixture, &[one]).replica(nowhere)).await;
    let status = pool.replica_status();
    assert!(status[0].up, "{status:?}");
    assert!(!status[1].up, "the unreachable replica is down: {status:?}");
    for _ in 0..4 {
        let mut tx = pool.read(&fixture.a.scope).await.expect("read");
        assert_eq!(port(&mut tx).await, i32::from(one.port()));
        tx.commit().await.expect("commit");
    }
}
