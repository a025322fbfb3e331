//! How long the guard takes on a schema of 2,000 tenant tables, against a trivial catalog
//! query measured in the same run on the same connection.
//!
//! `cargo bench --bench guard` (loopback PostgreSQL only: the shared test server or a
//! throwaway cluster; `RLS_BENCH_TABLES` and `RLS_BENCH_RUNS` change the size and the runs).

use std::time::{Duration, Instant};

use rls_tenancy::TenancyDeclaration;
use rls_tenancy::guard::{self, GuardOptions};
use rls_tenancy::{Result, ScratchDatabase};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// Tables created per transaction, to stay well inside the lock table.
const BATCH: usize = 100;

#[tokio::main]
async fn main() -> Result<()> {
    let tables = env_number("RLS_BENCH_TABLES", 2_000);
    let runs = env_number("RLS_BENCH_RUNS", 15);
    let db = ScratchDatabase::migrated().await?;
    let mut runtime = PgConnection::connect_with(&db.runtime_url().connect_options()?).await?;
    let options =
        GuardOptions::new(TenancyDeclaration::reference()?).min_server_versions(Vec::new());

    let url = db.runtime_url();
    let small = median(runs, async || {
        guard::check(&mut runtime, &options)
            .await
            .map(drop)
            .map_err(Into::into)
    })
    .await?;

    let started = Instant::now();
    create_tenant_tables(&db, tables).await?;
    let setup = started.elapsed();

    let report = guard::check(&mut runtime, &options).await?;
    assert!(
        !report.is_refused(),
        "the benchmark schema must be clean:\n{report}"
    );

    // Warm: the application's connection, catalog caches filled.
    let warm = median(runs, async || {
        guard::check(&mut runtime, &options)
            .await
            .map(drop)
            .map_err(Into::into)
    })
    .await?;
    let warm_baseline = median(runs, async || {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_catalog.pg_class")
            .fetch_one(&mut runtime)
            .await
            .map(drop)
            .map_err(Into::into)
    })
    .await?;
    // Cold: what start-up pays, a new connection for each run.
    let cold = median(runs, async || {
        guard::check_url(url, &options)
            .await
            .map(drop)
            .map_err(Into::into)
    })
    .await?;
    let cold_baseline = median(runs, async || {
        let mut conn = PgConnection::connect_with(&url.connect_options()?).await?;
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM pg_catalog.pg_class")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await?;
        Ok(())
    })
    .await?;

    println!("guard benchmark: {tables} tenant tables (+4 migrated), median of {runs} runs");
    println!("  set-up (tables, policies, grants, ANALYZE): {setup:.1?}");
    println!("  guard, migrated schema only (4 tenant tables), warm: {small:.1?}");
    println!(
        "  warm (same connection): guard {warm:.1?}, baseline SELECT count(*) FROM pg_class {warm_baseline:.1?}, ratio {:.1}x",
        ratio(warm, warm_baseline)
    );
    println!(
        "  cold (new connection):  guard {cold:.1?}, baseline connect + same query {cold_baseline:.1?}, ratio {:.1}x",
        ratio(cold, cold_baseline)
    );
    println!(
        "  growth from 4 to {} tenant tables (warm): {:.1}x",
        tables + 4,
        ratio(warm, small)
    );
    runtime.close().await?;
    Ok(())
}

/// Creates `n` tenant tables as the deploy role, set up as rls-migrate sets up the reference
/// schema: tenant column first in the primary key, a foreign key to the registry, RLS enabled
/// and forced with the canonical policy, DML granted to the runtime role.
async fn create_tenant_tables(db: &ScratchDatabase, n: usize) -> Result<()> {
    let mut deploy = PgConnection::connect_with(&db.deploy_url().connect_options()?).await?;
    let runtime = db.runtime_role().to_string();
    for start in (0..n).step_by(BATCH) {
        let end = (start + BATCH).min(n);
        let sql = format!(
            "DO $$
             BEGIN
               FOR i IN {first}..{end} LOOP
                 EXECUTE format('CREATE TABLE app.%I (
                     account_id bigint NOT NULL REFERENCES app.accounts (id),
                     id bigint GENERATED ALWAYS AS IDENTITY,
                     name text NOT NULL,
                     PRIMARY KEY (account_id, id))', 'bench_' || i);
                 EXECUTE format('ALTER TABLE app.%I ENABLE ROW LEVEL SECURITY', 'bench_' || i);
                 EXECUTE format('ALTER TABLE app.%I FORCE ROW LEVEL SECURITY', 'bench_' || i);
                 EXECUTE format('CREATE POLICY tenant_isolation ON app.%I AS PERMISSIVE FOR ALL TO PUBLIC
                     USING (account_id = nullif(current_setting(''app.tenant_id'', true), '''')::bigint)
                     WITH CHECK (account_id = nullif(current_setting(''app.tenant_id'', true), '''')::bigint)',
                     'bench_' || i);
                 EXECUTE format('REVOKE ALL ON app.%I FROM {runtime}', 'bench_' || i);
                 EXECUTE format('GRANT SELECT, DELETE, INSERT (account_id, name), UPDATE (name) ON app.%I TO {runtime}', 'bench_' || i);
               END LOOP;
             END $$",
            first = start + 1,
            runtime = runtime.replace('\'', "''"),
        );
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut deploy)
            .await?;
    }
    sqlx::raw_sql(AssertSqlSafe(format!(
        "GRANT USAGE ON ALL SEQUENCES IN SCHEMA app TO {runtime}"
    )))
    .execute(&mut deploy)
    .await?;
    deploy.close().await?;
    // Fresh catalog statistics, as autovacuum would have them on a live server.
    sqlx::raw_sql("ANALYZE")
        .execute(&db.admin_pool().await?)
        .await?;
    Ok(())
}

/// The median duration of `runs` runs of `f`, after one warm-up run.
async fn median(runs: usize, mut f: impl AsyncFnMut() -> Result<()>) -> Result<Duration> {
    f().await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        f().await?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(default)
}
