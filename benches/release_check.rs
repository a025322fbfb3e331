//! The release check's cost per transaction: short tenant transactions (BEGIN with the
//! tenant, one small read, COMMIT) through `TenantPool`, whose COMMIT message carries the
//! release check (held cursors, LISTEN, advisory locks, session settings, prepared
//! statements, temporary objects, the tenant variable) and a trailing `BEGIN` rolled back
//! with the pool's release ping, against the same transactions on the same role and
//! connection count sent as plain statements with a bare `COMMIT`, in one run.
//!
//! `cargo bench --bench release_check` (env: `BENCH_SECONDS`, default 5 per round;
//! `BENCH_CONNECTIONS`, default 8).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark aborts on failure"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::RngExt;
use rls_tenancy::TenancyDeclaration;
use rls_tenancy::{ScratchDatabase, TenantId, TenantPool, TenantPoolOptions, TenantScope};
use sqlx::postgres::PgPoolOptions;
use sqlx::{AssertSqlSafe, PgPool};

const ACCOUNTS: i64 = 200;

/// The small read each transaction makes: what the check is weighed against.
const READ: &str = "SELECT count(*) FROM app.projects";

const FIXTURE: &str = "
    INSERT INTO app.accounts (slug, name)
        SELECT 'tenant-' || a, 'Account ' || a FROM generate_series(1, 200) a;
    INSERT INTO app.projects (account_id, name)
        SELECT a.id, 'project ' || p FROM app.accounts a, generate_series(1, 5) p;
    ANALYZE;";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn random_tenant() -> TenantId {
    TenantId::new(rand::rng().random_range(1..=ACCOUNTS)).expect("tenant")
}

/// Runs `connections` workers doing `one` until the deadline; transactions per second.
async fn rate<F, Fut>(connections: u64, seconds: u64, one: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (one, done) = (one.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    one().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    done.load(Ordering::Relaxed) as f64 / seconds as f64
}

/// One tenant transaction through the library: the release check in COMMIT's message.
async fn checked(pool: TenantPool) {
    let scope = TenantScope::new(random_tenant(), "bench".parse().expect("slug"));
    let mut tx = pool.begin(&scope).await.expect("begin");
    let (n,): (i64,) = sqlx::query_as(READ)
        .fetch_one(&mut *tx)
        .await
        .expect("read");
    assert_eq!(n, 5);
    tx.commit().await.expect("commit");
}

/// The same transaction by hand: the library's BEGIN message, the read, a bare COMMIT.
async fn unchecked(pool: PgPool) {
    let begin = format!(
        "BEGIN; SELECT set_config('statement_timeout', '5000', true), set_config('lock_timeout', '2000', true), set_config('idle_in_transaction_session_timeout', '10000', true), set_config('app.tenant_id', '{}', true)",
        random_tenant()
    );
    let mut conn = pool.acquire().await.expect("acquire");
    sqlx::raw_sql(AssertSqlSafe(begin))
        .execute(&mut *conn)
        .await
        .expect("begin");
    let (n,): (i64,) = sqlx::query_as(READ)
        .fetch_one(&mut *conn)
        .await
        .expect("read");
    assert_eq!(n, 5);
    sqlx::raw_sql("COMMIT")
        .execute(&mut *conn)
        .await
        .expect("commit");
}

#[tokio::main]
async fn main() {
    let seconds = env_or("BENCH_SECONDS", 5);
    let connections = env_or("BENCH_CONNECTIONS", 8);
    let db = ScratchDatabase::migrated().await.expect("scratch database");
    let admin = db.admin_pool().await.expect("admin");
    sqlx::raw_sql(FIXTURE)
        .execute(&admin)
        .await
        .expect("fixture");
    let tenant_pool = TenantPool::connect(
        db.runtime_url(),
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"))
            .max_connections(connections as u32),
    )
    .await
    .expect("tenant pool");
    let plain = PgPoolOptions::new()
        .max_connections(connections as u32)
        .connect_with(db.runtime_url().connect_options().expect("options"))
        .await
        .expect("plain pool");

    let with = {
        let pool = tenant_pool.clone();
        move || checked(pool.clone())
    };
    let without = {
        let pool = plain.clone();
        move || unchecked(pool.clone())
    };
    println!(
        "short tenant transactions, {connections} connections, {seconds} s a round, 3 alternating rounds"
    );
    // Warm both, then alternate so drift on a shared machine hits both sides alike.
    rate(connections, 1, with.clone()).await;
    rate(connections, 1, without.clone()).await;
    let (mut checked_tps, mut bare_tps) = (0.0, 0.0);
    for _ in 0..3 {
        checked_tps += rate(connections, seconds, with.clone()).await / 3.0;
        bare_tps += rate(connections, seconds, without.clone()).await / 3.0;
    }
    let per_tx = |tps: f64| connections as f64 / tps * 1e6;
    println!(
        "bare COMMIT (baseline):          {bare_tps:>8.0} tx/s  {:>7.0} us a transaction",
        per_tx(bare_tps)
    );
    println!(
        "COMMIT + release check:          {checked_tps:>8.0} tx/s  {:>7.0} us a transaction",
        per_tx(checked_tps)
    );
    println!(
        "ratio {:.2}; the check costs {:.0} us a transaction",
        checked_tps / bare_tps,
        per_tx(checked_tps) - per_tx(bare_tps)
    );
}
