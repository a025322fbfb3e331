//! Requests over many tenant databases under a connection budget (the database strategy,
//! `TenantPool::connect_servers`) against the RLS strategy on the same rows, in one run.
//!
//! `cargo bench --bench tenant_databases` (env: `BENCH_DATABASES`, default 200, spread over
//! two servers; `BENCH_BUDGET`, default 20 connections in total, one per database;
//! `BENCH_WORKERS`, default 8; `BENCH_SECONDS`, default 10 per round). The figures
//! (2,000 tenant databases, a 100-connection budget) in one command:
//! `BENCH_DATABASES=2000 BENCH_BUDGET=100 cargo bench --bench tenant_databases` (about 15 GB
//! of cluster directories under the temporary directory; provisioning takes minutes).
//!
//! Both servers are clusters the bench starts for itself (`max_connections = 300`), the RLS
//! database on the first: a budget of 100 plus the RLS pool would not fit a shared server's
//! default 100 connections next to other work, and thousands of databases are removed with
//! the clusters. Each request picks a
//! tenant at random (uniform over all of them), begins a read-only tenant transaction, runs
//! the demo's page query (10 subtasks with their task and project) and commits. The RLS side
//! has the same tenants and rows in one database, through a one-database pool with the same
//! number of connections as the budget. Rounds alternate (database, RLS, database, RLS).
//! Printed: requests per second and p50/p99 per side, the ratio, the pool set's churn (pools
//! opened and evicted per request) and the most tenant-database connections the servers
//! showed at once (`pg_stat_activity`, sampled every 50 ms). The set never holds more than
//! the budget; the server's view can lag by the backends of evicted pools still exiting
//! (under heavy churn on a loaded machine, one over was seen: 11 for a budget of 10).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark aborts on failure"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rand::RngExt;
use rls_tenancy::{
    AdminServer, DatabasePattern, PoolSetOptions, REFERENCE_TENANT_MIGRATIONS, ScratchDatabase,
    ScratchServers, TenancyDeclaration, TenantId, TenantPool, TenantPoolOptions, TenantScope,
    TxOptions, connect, provision_database,
};
use sqlx::{AssertSqlSafe, Connection};

/// The demo's page query inside a tenant transaction (RLS adds the tenant).
const PAGE: &str = "SELECT s.id, s.account_id, s.name, s.is_complete, t.name, p.name
    FROM app.subtasks s
    JOIN app.tasks t ON t.account_id = s.account_id AND t.id = s.task_id
    JOIN app.projects p ON p.account_id = t.account_id AND p.id = t.project_id
    ORDER BY s.name, s.id LIMIT 10";

/// One tenant's rows (2 projects, 6 tasks, 30 subtasks), `{id}` its account id.
const ROWS: &str = "
    INSERT INTO app.projects (account_id, name) SELECT {id}, 'project ' || p FROM generate_series(1, 2) p;
    INSERT INTO app.tasks (account_id, project_id, name)
        SELECT account_id, id, 'task ' || t FROM app.projects, generate_series(1, 3) t WHERE account_id = {id};
    INSERT INTO app.subtasks (account_id, task_id, name)
        SELECT account_id, id, 'subtask ' || s FROM app.tasks, generate_series(1, 5) s WHERE account_id = {id};";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one round measured.
struct Round {
    requests: u64,
    seconds: f64,
    latencies: Vec<Duration>,
}

impl Round {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }

    fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort_unstable();
        let i = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
        self.latencies[i]
    }
}

/// `workers` tasks sending requests for random tenants of `scopes` for `seconds`.
async fn round(
    pool: &TenantPool,
    scopes: &Arc<Vec<TenantScope>>,
    workers: u64,
    seconds: u64,
) -> Round {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let pool = pool.clone();
            let scopes = Arc::clone(scopes);
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let scope = &scopes[rand::rng().random_range(0..scopes.len())];
                    let t = Instant::now();
                    let mut tx = pool
                        .begin_with(scope, TxOptions::default().read_only())
                        .await
                        .expect("begin");
                    let rows = sqlx::query(PAGE).fetch_all(&mut *tx).await.expect("page");
                    assert_eq!(rows.len(), 10);
                    tx.commit().await.expect("commit");
                    latencies.push(t.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("worker"));
    }
    Round {
        requests: latencies.len() as u64,
        seconds: started.elapsed().as_secs_f64(),
        latencies,
    }
}

/// Samples the runtime role's connections to tenant databases on both servers until told
/// to stop; the most seen at once.
fn sample_backends(bed: &ScratchServers, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<i64> {
    let urls: Vec<_> = ["one", "two"]
        .iter()
        .map(|on| bed.admin_url(on).expect("server"))
        .collect();
    let role = bed.control().runtime_role().as_str().to_owned();
    let control = bed.control().name().as_str().to_owned();
    let most = Arc::new(AtomicI64::new(0));
    tokio::spawn(async move {
        let mut conns = Vec::new();
        for url in &urls {
            conns.push(connect(url).await.expect("admin"));
        }
        while !stop.load(Ordering::Relaxed) {
            let mut now = 0;
            for conn in &mut conns {
                let n: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND datname <> $2",
                )
                .bind(&role)
                .bind(&control)
                .fetch_one(&mut *conn)
                .await
                .expect("count");
                now += n;
            }
            most.fetch_max(now, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        most.load(Ordering::Relaxed)
    })
}

#[tokio::main]
async fn main() {
    let databases = env("BENCH_DATABASES", 200);
    let budget = u32::try_from(env("BENCH_BUDGET", 20)).expect("budget");
    let workers = env("BENCH_WORKERS", 8);
    let seconds = env("BENCH_SECONDS", 10);

    let (one, two) = tokio::try_join!(AdminServer::start_local(), AdminServer::start_local())
        .expect("two clusters of the bench's own");
    let bed = ScratchServers::create_on(one.clone(), two)
        .await
        .expect("scratch servers");
    let rls = ScratchDatabase::migrated_signed_on(one)
        .await
        .expect("rls database");
    let control = bed.control().admin_pool().await.expect("control admin");
    let rls_admin = rls.admin_pool().await.expect("rls admin");
    let base = bed.control().name().as_str().to_owned();
    let pattern = DatabasePattern::default();
    let template = pattern.template(&base).expect("template");

    let provisioning = Instant::now();
    let placed: Vec<(i64, String)> = futures_util::stream::iter(0..databases)
        .map(|i| {
            let (bed, base, pattern, template, control) =
                (&bed, &base, &pattern, &template, &control);
            async move {
                let on = if i % 2 == 0 { "one" } else { "two" };
                let slug = format!("bench-{i}");
                let database = pattern
                    .database(base, &slug.parse().expect("slug"))
                    .expect("name");
                let server = bed
                    .deploy_servers()
                    .server(&on.parse().expect("server"))
                    .expect("server");
                provision_database(
                    server,
                    &database,
                    template,
                    &REFERENCE_TENANT_MIGRATIONS,
                    bed.declaration(),
                    &bed.migrate_options().expect("options"),
                )
                .await
                .expect("provisioned");
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO app.accounts (slug, name, server_name, database_name)
                     VALUES ($1, $1, $2, $3) RETURNING id",
                )
                .bind(&slug)
                .bind(on)
                .bind(database.as_str())
                .fetch_one(control)
                .await
                .expect("registered");
                let url = bed
                    .admin_url(on)
                    .expect("server")
                    .with_database(database.as_str());
                let mut su = connect(&url).await.expect("superuser");
                sqlx::raw_sql(AssertSqlSafe(ROWS.replace("{id}", &id.to_string())))
                    .execute(&mut su)
                    .await
                    .expect("rows");
                su.close().await.expect("close");
                (id, slug)
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    println!(
        "provisioned {databases} tenant databases on 2 servers in {:.1} s",
        provisioning.elapsed().as_secs_f64()
    );
    // The same tenants and rows in one RLS database.
    for (id, slug) in &placed {
        sqlx::query(
            "INSERT INTO app.accounts (id, slug, name) OVERRIDING SYSTEM VALUE VALUES ($1, $2, $2)",
        )
        .bind(id)
        .bind(slug)
        .execute(&rls_admin)
        .await
        .expect("rls account");
        sqlx::raw_sql(AssertSqlSafe(ROWS.replace("{id}", &id.to_string())))
            .execute(&rls_admin)
            .await
            .expect("rls rows");
    }
    let scopes: Arc<Vec<TenantScope>> = Arc::new(
        placed
            .iter()
            .map(|(id, slug)| {
                TenantScope::new(TenantId::new(*id).expect("id"), slug.parse().expect("slug"))
            })
            .collect(),
    );

    let database_pool = TenantPool::connect_servers(
        bed.control().runtime_url(),
        bed.runtime_servers(),
        TenantPoolOptions::new(bed.declaration().clone())
            .tenant_key(bed.tenant_key().clone())
            .max_connections(2)
            .pool_set(
                PoolSetOptions::default()
                    .max_connections(budget)
                    .max_per_database(1)
                    .acquire_timeout(Duration::from_secs(10)),
            ),
    )
    .await
    .expect("database pool");
    let rls_pool = TenantPool::connect(
        rls.runtime_url(),
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"))
            .tenant_key(rls.tenant_key().expect("signed").clone())
            .max_connections(budget),
    )
    .await
    .expect("rls pool");

    println!(
        "{databases} tenant databases, budget {budget} connections (1 per database), {workers} workers, {seconds} s rounds, uniform random tenant per request"
    );
    let mut database_rounds = Vec::new();
    let mut rls_rounds = Vec::new();
    let mut most = 0;
    for _ in 0..2 {
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = sample_backends(&bed, Arc::clone(&stop));
        let before = database_pool.pool_set_stats().expect("pool set");
        let mut r = round(&database_pool, &scopes, workers, seconds).await;
        stop.store(true, Ordering::Relaxed);
        most = most.max(sampler.await.expect("sampler"));
        let after = database_pool.pool_set_stats().expect("pool set");
        println!(
            "database: {:>7.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  opens/req {:.2}  evictions/req {:.2}",
            r.rate(),
            r.percentile(0.5).as_secs_f64() * 1e3,
            r.percentile(0.99).as_secs_f64() * 1e3,
            (after.opens - before.opens) as f64 / r.requests as f64,
            (after.evictions - before.evictions) as f64 / r.requests as f64,
        );
        database_rounds.push(r);
        let mut r = round(&rls_pool, &scopes, workers, seconds).await;
        println!(
            "rls:      {:>7.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
            r.rate(),
            r.percentile(0.5).as_secs_f64() * 1e3,
            r.percentile(0.99).as_secs_f64() * 1e3,
        );
        rls_rounds.push(r);
    }
    let rate = |rounds: &[Round]| rounds.iter().map(Round::rate).sum::<f64>() / rounds.len() as f64;
    println!(
        "throughput database/rls: {:.2}; most tenant-database connections seen: {most} (budget {budget})",
        rate(&database_rounds) / rate(&rls_rounds)
    );
    database_pool.close().await;
    rls_pool.close().await;
}
