//! Replica routing on real streaming replication (a primary and two standbys on loopback,
//! `ReplicatedCluster`), in one run:
//! 1. read throughput through `RoutingPool::read` with no replica (every read on the
//!    primary: the baseline), one replica and two, alternating rounds;
//! 2. a standby stopped under that read load: how long until the pool marks it down, reads
//!    that failed to begin (goal 0 while the primary is up), reads cut mid-statement (the
//!    ones running on it when it stopped: returned to the caller, never re-run), and how
//!    long after it is started again it serves reads (bounded by the check interval).
//!
//! `cargo bench --bench replica_reads --features testing` (env: `BENCH_SECONDS`, default 5
//! a round; `BENCH_READERS`, default 8; `BENCH_CHECK_INTERVAL_MS`, default 2000).
//!
//! All servers share the machine's cores: on 2 cores a replica adds no CPU, only another
//! server to spread over; read the ratios with that in mind.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark aborts on failure"
)]

#[path = "support/replicated.rs"]
mod replicated;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::RngExt;
use replicated::replicated_with;
use rls_tenancy::{
    RoutingOptions, RoutingPool, ServedBy, TenancyDeclaration, TenantId, TenantPoolOptions,
    TenantScope,
};

const ACCOUNTS: i64 = 200;

/// The read each transaction makes: one tenant's page of subtasks.
const READ: &str =
    "SELECT s.id, s.name FROM app.subtasks s ORDER BY s.name, s.id LIMIT 10 OFFSET 20";

const FIXTURE: &str = "
    INSERT INTO app.accounts (slug, name)
        SELECT 'tenant-' || a, 'Account ' || a FROM generate_series(1, 200) a;
    INSERT INTO app.projects (account_id, name) SELECT a.id, 'project' FROM app.accounts a;
    INSERT INTO app.tasks (account_id, project_id, name)
        SELECT p.account_id, p.id, 'task' FROM app.projects p;
    INSERT INTO app.subtasks (account_id, task_id, name)
        SELECT t.account_id, t.id, 'subtask ' || n FROM app.tasks t, generate_series(1, 200) n;
    ANALYZE;";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn random_scope() -> TenantScope {
    let id = TenantId::new(rand::rng().random_range(1..=ACCOUNTS)).expect("tenant");
    TenantScope::new(id, "bench".parse().expect("slug"))
}

/// How one read ended.
enum Read {
    Ok(ServedBy),
    /// `pool.read` failed: no server could begin it.
    BeginFailed,
    /// Begun, then cut (its server went away under it).
    Cut,
}

async fn read(pool: &RoutingPool) -> Read {
    let Ok(mut tx) = pool.read(&random_scope()).await else {
        return Read::BeginFailed;
    };
    let served = tx.served_by();
    if sqlx::raw_sql(READ).execute(&mut **tx).await.is_err() || tx.commit().await.is_err() {
        return Read::Cut;
    }
    Read::Ok(served)
}

/// Counts of a load run.
#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    on_replica: AtomicU64,
    begin_failed: AtomicU64,
    cut: AtomicU64,
}

/// `readers` tasks reading through `pool` until `stop`.
fn load(
    pool: &RoutingPool,
    readers: u64,
    stop: &Arc<AtomicBool>,
    counts: &Arc<Counts>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..readers)
        .map(|_| {
            let (pool, stop, counts) = (pool.clone(), Arc::clone(stop), Arc::clone(counts));
            tokio::spawn(async move {
                while !stop.load(Ordering::Acquire) {
                    let counter = match read(&pool).await {
                        Read::Ok(ServedBy::Replica) => {
                            counts.on_replica.fetch_add(1, Ordering::Relaxed);
                            &counts.ok
                        }
                        Read::Ok(ServedBy::Primary) => &counts.ok,
                        Read::BeginFailed => &counts.begin_failed,
                        Read::Cut => &counts.cut,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect()
}

/// Reads per second through `pool` for `seconds`.
async fn rate(pool: &RoutingPool, readers: u64, seconds: u64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let workers = load(pool, readers, &stop, &counts);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Release);
    for w in workers {
        w.await.expect("reader");
    }
    assert_eq!(counts.begin_failed.load(Ordering::Relaxed), 0);
    counts.ok.load(Ordering::Relaxed) as f64 / seconds as f64
}

/// Waits until the replica at `index` is up (or down), returning how long it took.
async fn until_replica(pool: &RoutingPool, index: usize, up: bool) -> Duration {
    let started = Instant::now();
    while pool.replica_status()[index].up != up {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "replica never up={up}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let seconds = env_or("BENCH_SECONDS", 5);
    let readers = env_or("BENCH_READERS", 8);
    let check_interval = Duration::from_millis(env_or("BENCH_CHECK_INTERVAL_MS", 2000));
    let (cluster, db) = replicated_with(FIXTURE).await;
    let standby_urls: Vec<_> = cluster
        .standbys()
        .iter()
        .map(|s| s.url_for(db.runtime_url()).expect("url"))
        .collect();
    let options = |replicas: usize| {
        standby_urls[..replicas].iter().cloned().fold(
            RoutingOptions::new(
                TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"))
                    .max_connections(readers as u32),
            )
            .check_interval(check_interval),
            RoutingOptions::replica,
        )
    };
    let mut pools = Vec::new();
    for replicas in 0..=2 {
        pools.push(
            RoutingPool::connect(db.runtime_url(), options(replicas))
                .await
                .expect("routing pool"),
        );
    }

    println!(
        "reads through RoutingPool::read: a tenant's page of subtasks ({ACCOUNTS} tenants x 200), {readers} readers, {seconds} s a round, 2 alternating rounds"
    );
    for pool in &pools {
        rate(pool, readers, 1).await;
    }
    let mut rates = [0.0; 3];
    for _ in 0..2 {
        for (n, pool) in pools.iter().enumerate() {
            rates[n] += rate(pool, readers, seconds).await / 2.0;
        }
    }
    for (n, r) in rates.iter().enumerate() {
        println!(
            "{n} replica(s): {r:>8.0} reads/s  ratio vs primary only {:.2}",
            r / rates[0]
        );
    }

    println!(
        "standby lost under read load: 2 replicas, {readers} readers, check interval {} ms",
        check_interval.as_millis()
    );
    let pool = &pools[2];
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let workers = load(pool, readers, &stop, &counts);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lost = &cluster.standbys()[0];
    let stopping = Instant::now();
    tokio::task::block_in_place(|| lost.stop()).expect("stop a standby");
    let stopped_in = stopping.elapsed();
    let detected = until_replica(pool, 0, false).await;
    let before = counts.ok.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let during = (counts.ok.load(Ordering::Relaxed) - before) as f64 / seconds as f64;
    let starting = Instant::now();
    tokio::task::block_in_place(|| lost.resume()).expect("start it again");
    let started_in = starting.elapsed();
    let back = until_replica(pool, 0, true).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Release);
    for w in workers {
        w.await.expect("reader");
    }
    println!(
        "pg_ctl stop took {} ms; marked down {} ms after it returned",
        stopped_in.as_millis(),
        detected.as_millis()
    );
    println!(
        "reads failed to begin: {}; reads cut mid-statement (on the standby as it stopped, returned, not re-run): {}; reads ok: {}",
        counts.begin_failed.load(Ordering::Relaxed),
        counts.cut.load(Ordering::Relaxed),
        counts.ok.load(Ordering::Relaxed)
    );
    println!(
        "throughput with one standby down: {during:.0} reads/s (vs {:.0} with both, {:.0} with one configured)",
        rates[2], rates[1]
    );
    println!(
        "pg_ctl start took {} ms; serving reads again {} ms after it returned",
        started_in.as_millis(),
        back.as_millis()
    );
}
