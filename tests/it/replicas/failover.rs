//! The primary given as several hosts: writes go to the one not in recovery, and follow a
//! promotion; the guard runs on each host.

use std::time::{Duration, Instant};

use rls_tenancy::{
    DatabaseHosts, DbError, LocalCluster, RegistryOptions, ReplicatedCluster, RouteError, RoutedTx,
    RoutingOptions, RoutingPool, ServedBy, TenancyDeclaration, TenantPoolOptions,
};

use super::two_tenants;
use crate::support::TwoTenants;

/// The port of the server `tx` runs on.
async fn port(tx: &mut RoutedTx) -> u16 {
    let port: i32 = sqlx::query_scalar("SELECT inet_server_port()")
        .fetch_one(&mut ***tx)
        .await
        .expect("server port");
    u16::try_from(port).expect("a port")
}

/// The fixture's runtime login on each of `servers`, as one multi-host primary.
fn hosts(fixture: &TwoTenants, servers: &[&LocalCluster]) -> DatabaseHosts {
    DatabaseHosts::new(
        servers
            .iter()
            .map(|server| server.url_for(fixture.db.runtime_url()).expect("url"))
            .collect(),
    )
    .expect("hosts")
}

fn options(failover_wait: Duration) -> RoutingOptions {
    RoutingOptions::new(TenantPoolOptions::new(
        TenancyDeclaration::reference().expect("declaration"),
    ))
    .poll_interval(Duration::from_millis(50))
    .check_interval(Duration::from_secs(1))
    .failover_wait(failover_wait)
}

/// Renames tenant A's subtask in a routed write; the port it ran on.
async fn rename(pool: &RoutingPool, fixture: &TwoTenants, name: &str) -> Result<u16, DbError> {
    let mut tx = pool.begin(&fixture.a.scope).await?;
    assert_eq!(tx.served_by(), ServedBy::Primary);
    let served = port(&mut tx).await;
    sqlx::query("UPDATE app.subtasks SET name = $1 WHERE id = $2")
        .bind(name)
        .bind(fixture.a.subtask)
        .execute(&mut **tx)
        .await?;
    tx.commit().await?;
    Ok(served)
}

#[tokio::test]
async fn writes_find_the_primary_among_the_hosts_and_follow_a_promotion() {
    let cluster = ReplicatedCluster::start(&[None])
        .await
        .expect("replicated cluster");
    let primary = cluster.primary().local_cluster().expect("a local primary");
    let standby = &cluster.standbys()[0];
    let fixture = two_tenants(&cluster, &[standby]).await;
    // The standby first: the pool must skip it for the host that is primary.
    let hosts = hosts(&fixture, &[standby, primary]);
    let patient = RoutingPool::connect_hosts(&hosts, options(Duration::from_secs(60)))
        .await
        .expect("routing pool over both hosts");
    let hasty = RoutingPool::connect_hosts(&hosts, options(Duration::from_millis(300)))
        .await
        .expect("a second pool, waiting little for a primary");
    let status = patient.primary_status();
    assert_eq!(
        status.iter().map(|h| h.in_recovery).collect::<Vec<_>>(),
        [Some(true), Some(false)],
        "{status:?}"
    );
    assert_eq!(
        rename(&patient, &fixture, "before the failover")
            .await
            .expect("write"),
        primary.port(),
        "the write went to the primary, not the standby listed first"
    );

    // The registry reads through the primary's pool: this lookup leaves it an idle
    // connection to the host about to die.
    let registry = patient.registry(RegistryOptions::default().listen(false));
    let found = registry.resolve(fixture.a.scope.slug()).await;
    assert_eq!(found.expect("tenant A").id(), fixture.a.scope.id());
    // A registry listening for changes, on the primary about to die. Its caches trust an
    // answer for an hour: only a notice can make a change seen in time.
    let hour = RegistryOptions::default()
        .ttl(Duration::from_secs(3600))
        .negative_ttl(Duration::from_secs(3600));
    let listening = patient.registry(hour);
    crate::support::until_listening(&listening).await;

    primary.stop().expect("stop the primary");
    let refused = rename(&hasty, &fixture, "nobody takes this").await;
    assert!(
        matches!(refused, Err(DbError::Unavailable { .. })),
        "no host is primary: the write is refused, typed, not sent to the standby: {refused:?}"
    );

    standby.promote().expect("promote the standby");
    assert_eq!(
        rename(&patient, &fixture, "after the failover")
            .await
            .expect("write after the promotion"),
        standby.port(),
        "the next write went to the promoted standby, without a restart of the pool"
    );
    assert_eq!(
        rename(&hasty, &fixture, "after the failover, again")
            .await
            .expect("the other pool follows too"),
        standby.port()
    );
    let mut read = patient.read(&fixture.a.scope).await.expect("read");
    assert_eq!(port(&mut read).await, standby.port());
    let name: String = sqlx::query_scalar("SELECT name FROM app.subtasks WHERE id = $1")
        .bind(fixture.a.subtask)
        .fetch_one(&mut **read)
        .await
        .expect("read back");
    assert_eq!(name, "after the failover, again");
    read.commit().await.expect("commit");

    // A tenant not cached yet: the lookup must not be handed the idle connection to the
    // old primary.
    let found = registry.resolve(fixture.b.scope.slug()).await;
    assert_eq!(
        found.expect("tenant B found on the new primary").id(),
        fixture.b.scope.id()
    );

    let mut anchored = patient
        .primary()
        .begin(&fixture.a.scope)
        .await
        .expect("the primary's pool opens on the new primary");
    let on: i32 = sqlx::query_scalar("SELECT inet_server_port()")
        .fetch_one(&mut *anchored)
        .await
        .expect("port");
    assert_eq!(i32::from(standby.port()), on);
    anchored.commit().await.expect("commit");

    // The registry's change listener follows the promotion too: a suspension made on the
    // new primary is seen.
    crate::support::until_listening(&listening).await;
    let found = listening.resolve(fixture.a.scope.slug()).await;
    assert_eq!(found.expect("tenant A").id(), fixture.a.scope.id());
    let new_primary = super::admin_on(&fixture, standby).await;
    sqlx::query("UPDATE app.accounts SET is_active = false WHERE id = $1")
        .bind(fixture.a.scope.id().as_i64())
        .execute(&new_primary)
        .await
        .expect("suspend tenant A on the new primary");
    // Within the listener's reconnection (its failed attempts on the old host wait 5 s each).
    let deadline = Instant::now() + Duration::from_secs(30);
    while listening.resolve(fixture.a.scope.slug()).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "the suspension's notice never reached the registry after the failover"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        listening.resolve(fixture.b.scope.slug()).await.is_ok(),
        "tenant B still resolves"
    );
}

#[tokio::test]
async fn hosts_that_are_all_in_recovery_refuse_the_start_saying_what_each_was() {
    let shared = super::shared().await;
    let [one, two] = shared.fast();
    let fixture = two_tenants(&shared.cluster, &[one, two]).await;
    let refused = RoutingPool::connect_hosts(
        &hosts(&fixture, &[one, two]),
        options(Duration::from_millis(200)),
    )
    .await;
    let message = match refused {
        Err(err @ RouteError::NoPrimary { .. }) => err.to_string(),
        other => panic!("two standbys are no primary: {other:?}"),
    };
    assert_eq!(message.matches("(in recovery)").count(), 2, "{message}");
    assert!(
        !message.contains(fixture.db.runtime_url().expose_secret()),
        "no password: {message}"
    );
}

#[tokio::test]
async fn the_guard_runs_on_every_host_of_the_primary() {
    let shared = super::shared().await;
    let [one, _] = shared.fast();
    let fixture = two_tenants(&shared.cluster, &[one]).await;
    let primary = shared
        .cluster
        .primary()
        .local_cluster()
        .expect("a local primary");
    // The second host logs in as the superuser: row-level security does not apply to it.
    let hosts = DatabaseHosts::new(vec![
        primary.url_for(fixture.db.runtime_url()).expect("url"),
        one.url_for(&fixture.db.admin_url()).expect("url"),
    ])
    .expect("hosts");
    let refused = RoutingPool::connect_hosts(&hosts, options(Duration::from_secs(5))).await;
    match refused {
        Err(RouteError::PrimaryRefused { host, source }) => {
            assert!(
                host.to_string().contains(&format!(":{}/", one.port())),
                "{host}"
            );
            assert!(source.to_string().contains("superuser"), "{source}");
        }
        other => panic!("the superuser host is refused: {other:?}"),
    }
}
