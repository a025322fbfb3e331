//! How long the first read that meets a replica whose port just closed takes, before and
//! after peers fail fast (`RoutingOptions::peer_timeout`). A primary and two standbys on
//! loopback (`ReplicatedCluster`); each round opens a routing pool over both standbys (no
//! background poll, so only the request path can find the standby gone), reads once from
//! each, stops one standby (`pg_ctl stop -m fast`: its sessions end, its port closes), and
//! times the next two reads (round-robin: one of them meets the stopped standby and moves
//! on to the other). The baseline is a peer timeout equal to the acquire timeout (2 s),
//! which is how every peer behaved before: sqlx retries a refused connection until the
//! acquire timeout.
//!
//! `cargo bench --bench peer_refused --features testing` (env: `BENCH_ROUNDS`, default 3).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark aborts on failure"
)]

use std::time::{Duration, Instant};

use rls_tenancy::{
    RoutingOptions, RoutingPool, ServedBy, TenancyDeclaration, TenantId, TenantPoolOptions,
    TenantScope,
};

use self::replicated::replicated_with;

/// The cluster and database, shared with `replica_reads`.
#[path = "support/replicated.rs"]
mod replicated;

/// One tenant with one subtask: the reads only need something to read.
const FIXTURE: &str = "
    INSERT INTO app.accounts (id, slug, name) OVERRIDING SYSTEM VALUE VALUES (1, 'only', 'Only');
    INSERT INTO app.projects (account_id, name) VALUES (1, 'project');
    INSERT INTO app.tasks (account_id, project_id, name) SELECT 1, id, 'task' FROM app.projects;
    INSERT INTO app.subtasks (account_id, task_id, name) SELECT 1, id, 'subtask' FROM app.tasks;";

/// A read of the tenant's subtasks, committed; the time it took.
async fn timed_read(pool: &RoutingPool, scope: &TenantScope) -> Duration {
    let started = Instant::now();
    let mut tx = pool
        .read(scope)
        .await
        .expect("a read begins on some server");
    assert_eq!(tx.served_by(), ServedBy::Replica);
    sqlx::raw_sql("SELECT count(*) FROM app.subtasks")
        .execute(&mut **tx)
        .await
        .expect("read");
    tx.commit().await.expect("commit");
    started.elapsed()
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let (cluster, db) = replicated_with(FIXTURE).await;
    let scope = TenantScope::new(TenantId::new(1).expect("id"), "only".parse().expect("slug"));
    let acquire_timeout = Duration::from_secs(2);
    let settings = [
        (
            "peer timeout = acquire timeout (as before)",
            acquire_timeout,
        ),
        ("peer timeout 1 s (the default)", Duration::from_secs(1)),
        ("peer timeout 250 ms", Duration::from_millis(250)),
    ];
    println!(
        "first reads after a standby's port closed (2 replicas, acquire timeout {} ms), median of {rounds} rounds",
        acquire_timeout.as_millis()
    );
    let mut medians = Vec::new();
    for (what, peer_timeout) in settings {
        let mut slowest = Vec::new();
        for _ in 0..rounds {
            let options = cluster.standbys().iter().fold(
                RoutingOptions::new(
                    TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"))
                        .acquire_timeout(acquire_timeout),
                )
                .poll_interval(Duration::from_secs(3600))
                .check_interval(Duration::from_secs(3600))
                .peer_timeout(peer_timeout),
                |options, standby| options.replica(standby.url_for(db.runtime_url()).expect("url")),
            );
            let pool = RoutingPool::connect(db.runtime_url(), options)
                .await
                .expect("routing pool");
            for _ in 0..2 {
                timed_read(&pool, &scope).await;
            }
            let gone = &cluster.standbys()[0];
            tokio::task::block_in_place(|| gone.stop()).expect("stop a standby");
            let first = timed_read(&pool, &scope).await;
            let second = timed_read(&pool, &scope).await;
            assert!(
                !pool.replica_status()[0].up,
                "the stopped standby is marked down"
            );
            slowest.push(first.max(second));
            pool.close().await;
            tokio::task::block_in_place(|| gone.resume()).expect("start it again");
            cluster
                .wait_replayed(gone, Duration::from_secs(120))
                .await
                .expect("replayed again");
        }
        let m = median(slowest.clone());
        println!(
            "{what:<44} {:>6} ms  (rounds: {})",
            m.as_millis(),
            slowest
                .iter()
                .map(|d| d.as_millis().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        medians.push(m);
    }
    for ((what, _), m) in settings.iter().zip(&medians).skip(1) {
        println!(
            "{what}: {:.2} of the baseline",
            m.as_secs_f64() / medians[0].as_secs_f64()
        );
    }
}
