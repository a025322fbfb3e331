//! Queries per second of the demo's page query through a tenant transaction (RLS, the
//! runtime role) against the same query as one plain statement with an explicit
//! `WHERE account_id = $1` (superuser, no RLS), same connection count, in one run.
//!
//! `cargo bench --bench page_query` (env: `BENCH_SECONDS`, default 5 per round;
//! `BENCH_CONNECTIONS`, default 8). Also compares the signed tenant context (the default:
//! `rls_tenancy.enter` in the BEGIN message, `rls_tenancy.tenant()` in every policy) with the
//! plain one on a second database with the same rows, rounds alternating, and the plain
//! policy predicate with the `(SELECT ...)` initplan form.

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
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

const ACCOUNTS: i64 = 200;
const PER_PAGE: i64 = 10;
const PAGES: i64 = 50;

/// The demo's page query as sent inside a tenant transaction: RLS adds the tenant.
const PAGE_RLS: &str = "SELECT s.id, s.account_id, s.name, s.is_complete, t.name, p.name
    FROM app.subtasks s
    JOIN app.tasks t ON t.account_id = s.account_id AND t.id = s.task_id
    JOIN app.projects p ON p.account_id = t.account_id AND p.id = t.project_id
    ORDER BY s.name, s.id LIMIT $1 OFFSET $2";

/// The same query with the tenant spelled out, for a role RLS does not apply to.
const PAGE_PLAIN: &str = "SELECT s.id, s.account_id, s.name, s.is_complete, t.name, p.name
    FROM app.subtasks s
    JOIN app.tasks t ON t.account_id = s.account_id AND t.id = s.task_id
    JOIN app.projects p ON p.account_id = t.account_id AND p.id = t.project_id
    WHERE s.account_id = $3
    ORDER BY s.name, s.id LIMIT $1 OFFSET $2";

const FIXTURE: &str = "
    INSERT INTO app.accounts (slug, name)
        SELECT 'tenant-' || a, 'Account ' || a FROM generate_series(1, 200) a;
    INSERT INTO app.projects (account_id, name)
        SELECT a.id, 'project ' || p FROM app.accounts a, generate_series(1, 5) p;
    INSERT INTO app.tasks (account_id, project_id, name)
        SELECT p.account_id, p.id, 'task ' || p.id || '.' || t FROM app.projects p, generate_series(1, 10) t;
    INSERT INTO app.subtasks (account_id, task_id, name)
        SELECT t.account_id, t.id, md5(t.id::text || '.' || s) FROM app.tasks t, generate_series(1, 10) s;
    ANALYZE;";

const INITPLAN_POLICIES: &str = "
    DO $$ DECLARE t text; BEGIN
      FOREACH t IN ARRAY ARRAY['users', 'projects', 'tasks', 'subtasks'] LOOP
        EXECUTE format('ALTER POLICY tenant_isolation ON app.%I
          USING (account_id = (SELECT nullif(current_setting(''app.tenant_id'', true), '''')::bigint))
          WITH CHECK (account_id = (SELECT nullif(current_setting(''app.tenant_id'', true), '''')::bigint))', t);
      END LOOP; END $$;";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn random_page() -> (TenantId, i64) {
    let mut rng = rand::rng();
    let tenant = TenantId::new(rng.random_range(1..=ACCOUNTS)).expect("tenant");
    (tenant, rng.random_range(0..PAGES) * PER_PAGE)
}

async fn run_rls(pool: &TenantPool, connections: u64, seconds: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (pool, done) = (pool.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let (tenant, offset) = random_page();
                    let scope = TenantScope::new(tenant, "bench".parse().expect("slug"));
                    let mut tx = pool.begin(&scope).await.expect("begin");
                    let rows = sqlx::query(PAGE_RLS)
                        .bind(PER_PAGE)
                        .bind(offset)
                        .fetch_all(&mut *tx)
                        .await
                        .expect("page");
                    assert_eq!(rows.len() as i64, PER_PAGE);
                    tx.commit().await.expect("commit");
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

async fn run_plain(pool: &PgPool, connections: u64, seconds: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (pool, done) = (pool.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let (tenant, offset) = random_page();
                    let rows = sqlx::query(PAGE_PLAIN)
                        .bind(PER_PAGE)
                        .bind(offset)
                        .bind(tenant.as_i64())
                        .fetch_all(&pool)
                        .await
                        .expect("page");
                    assert_eq!(rows.len() as i64, PER_PAGE);
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
    let signed_db = ScratchDatabase::migrated_signed()
        .await
        .expect("signed scratch database");
    sqlx::raw_sql(FIXTURE)
        .execute(&signed_db.admin_pool().await.expect("admin"))
        .await
        .expect("fixture");

    let options = TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"))
        .max_connections(connections as u32);
    let runtime = TenantPool::connect(db.runtime_url(), options.clone())
        .await
        .expect("tenant pool");
    let key = signed_db.tenant_key().expect("signed").clone();
    let signed = TenantPool::connect(signed_db.runtime_url(), options.tenant_key(key))
        .await
        .expect("signed tenant pool");
    let plain = PgPoolOptions::new()
        .max_connections(connections as u32)
        .connect_with(db.admin_url().connect_options().expect("options"))
        .await
        .expect("plain pool");

    println!(
        "page query, {ACCOUNTS} tenants x 500 subtasks, {connections} connections, {seconds} s a round"
    );
    // Warm both, then alternate so drift on a shared machine hits both sides alike.
    run_rls(&runtime, connections, 1).await;
    run_rls(&signed, connections, 1).await;
    run_plain(&plain, connections, 1).await;
    let (mut rls, mut signed_rls, mut base) = (0.0, 0.0, 0.0);
    let rounds = env_or("BENCH_ROUNDS", 2);
    for _ in 0..rounds {
        rls += run_rls(&runtime, connections, seconds).await / rounds as f64;
        signed_rls += run_rls(&signed, connections, seconds).await / rounds as f64;
        base += run_plain(&plain, connections, seconds).await / rounds as f64;
    }
    sqlx::raw_sql(INITPLAN_POLICIES)
        .execute(&admin)
        .await
        .expect("initplan policies");
    let mut initplan = 0.0;
    let mut base2 = 0.0;
    for _ in 0..2 {
        initplan += run_rls(&runtime, connections, seconds).await / 2.0;
        base2 += run_plain(&plain, connections, seconds).await / 2.0;
    }
    println!("plain statement, explicit WHERE (baseline): {base:>8.0} q/s");
    println!(
        "tenant transaction + RLS (canonical):       {rls:>8.0} q/s   ratio {:.2}",
        rls / base
    );
    println!(
        "tenant transaction + RLS (signed context):  {signed_rls:>8.0} q/s   ratio {:.2}, {:.3} of the plain context",
        signed_rls / base,
        signed_rls / rls
    );
    println!("baseline, second pair:                      {base2:>8.0} q/s");
    println!(
        "tenant transaction + RLS (initplan form):   {initplan:>8.0} q/s   ratio {:.2}",
        initplan / base2
    );
}
