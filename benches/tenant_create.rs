//! `rls-tenant create` in the schema mode on top of many existing tenants: the median and p99
//! of [`TenantLifecycle::create`] (registry row, schema, tenant migrations, policies, grants,
//! one transaction), next to `psql` running the same DDL for one schema, in blocks that
//! alternate so both see the same load.
//!
//! `cargo bench --bench tenant_create` (env: `BENCH_TENANTS`, default 2000 tenants made
//! first through `rls-migrate`'s bulk path; `BENCH_CREATES`, default 100). Needs `psql` on
//! the PATH.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark aborts on failure"
)]

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use rls_tenancy::{
    Ident, MigrateOptions, NewTenant, REFERENCE_TENANT_MIGRATIONS, ScratchDatabase, Strategy,
    TenancyDeclaration, TenantContext, TenantLifecycle, TenantVariable, install_policies,
    migrate_schemas, migrator_from_dir, policy_sql,
};

/// Creations (and psql schemas) per alternating block.
const BLOCK: usize = 10;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The DDL of one tenant schema as psql sends it: statement by statement, one transaction.
fn psql_script(schema: &str, decl: &TenancyDeclaration, runtime: &Ident) -> String {
    let migration =
        std::fs::read_to_string("migrations/tenant/20261130000001_tenant_tables.sql").unwrap();
    let context = TenantContext::new(TenantVariable::default(), decl.key_type());
    let ident = Ident::parse("schema", schema).unwrap();
    let slug = schema.replace('_', "-");
    let mut sql = format!(
        "BEGIN;
INSERT INTO app.accounts (slug, name, schema_name) VALUES ('{slug}', '{slug}', '{schema}');
CREATE SCHEMA {schema};
SELECT set_config('search_path', '{schema}, app', true);
{migration}
INSERT INTO app._rls_schema_migrations (schema_name, version, description, checksum)
    VALUES ('{schema}', 20261130000001, 'tenant tables', '\\x00');
"
    );
    for table in decl.tenant_tables() {
        let _ = writeln!(sql, "{};", policy_sql(&ident, table, &context));
    }
    let _ = writeln!(
        sql,
        "REVOKE ALL ON SCHEMA {schema} FROM PUBLIC;
GRANT USAGE ON SCHEMA {schema} TO {runtime};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {runtime};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {runtime};
COMMIT;"
    );
    sql
}

/// Runs `schemas`' DDL in one psql session with `\timing`; each schema's time (the sum of
/// its statements' round trips).
fn psql_block(
    url: &str,
    schemas: &[String],
    decl: &TenancyDeclaration,
    runtime: &Ident,
) -> Vec<Duration> {
    let mut script = String::from("\\timing on\n");
    for schema in schemas {
        script.push_str(&psql_script(schema, decl, runtime));
    }
    let path = std::env::temp_dir().join(format!("tenant_create_{}.sql", std::process::id()));
    std::fs::write(&path, script).unwrap();
    let out = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(&path)
        .arg(url)
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("Time: "))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(times.len() % schemas.len(), 0, "statements per schema");
    times
        .chunks(times.len() / schemas.len())
        .map(|c| Duration::from_secs_f64(c.iter().sum::<f64>() / 1000.0))
        .collect()
}

fn summary(name: &str, times: &mut [Duration]) -> (f64, f64) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (median, p99) = (
        ms(times[times.len() / 2]),
        ms(times[(times.len() * 99).div_ceil(100) - 1]),
    );
    println!(
        "{name:<28} median {median:>7.1} ms   p99 {p99:>7.1} ms   max {:>7.1} ms",
        ms(times[times.len() - 1])
    );
    (median, p99)
}

#[tokio::main]
async fn main() {
    let tenants = env_or("BENCH_TENANTS", 2000);
    let creates = env_or("BENCH_CREATES", 100);
    let db = ScratchDatabase::migrated_signed()
        .await
        .expect("scratch database");
    let decl = TenancyDeclaration::reference()
        .unwrap()
        .with_strategy(Strategy::Schema);
    let options = MigrateOptions::new(db.deploy_url().clone(), db.runtime_role().as_str())
        .unwrap()
        .tenant_key(db.tenant_key().unwrap().clone());
    install_policies(&decl, &options)
        .await
        .expect("schema-mode grants");

    // The bulk path: registry rows, then rls-migrate's migration across schemas.
    let admin = db.admin_pool().await.unwrap();
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO app.accounts (slug, name, schema_name)
         SELECT 'bulk-' || i, 'bulk ' || i, 'bulk_' || i FROM generate_series(1, $1) i",
    )
    .bind(i64::try_from(tenants).unwrap())
    .execute(&admin)
    .await
    .unwrap();
    let report = migrate_schemas(&REFERENCE_TENANT_MIGRATIONS, &decl, &options, 4)
        .await
        .expect("bulk schemas");
    assert!(!report.has_failures(), "{report}");
    println!(
        "set-up: {tenants} tenant schemas in {:.1} s (migrate_schemas, 4 jobs)",
        started.elapsed().as_secs_f64()
    );

    let lifecycle = TenantLifecycle::connect(decl.clone(), options)
        .await
        .unwrap()
        .tenant_migrations(migrator_from_dir("migrations/tenant").await.unwrap());
    let deploy = db.deploy_url().expose_secret().to_owned();
    let (mut created, mut psql) = (Vec::new(), Vec::new());
    for block in 0..creates.div_ceil(BLOCK) {
        for i in block * BLOCK..((block + 1) * BLOCK).min(creates) {
            let slug = format!("bench-{i}").parse().unwrap();
            let started = Instant::now();
            lifecycle
                .create(&NewTenant::new(slug))
                .await
                .expect("create");
            created.push(started.elapsed());
        }
        let schemas: Vec<String> = (block * BLOCK..((block + 1) * BLOCK).min(creates))
            .map(|i| format!("psql_{i}"))
            .collect();
        psql.extend(psql_block(&deploy, &schemas, &decl, db.runtime_role()));
    }
    println!("{creates} creations on top of {tenants} tenants:");
    let (median, p99) = summary("TenantLifecycle::create", &mut created);
    let (psql_median, psql_p99) = summary("psql, the same DDL", &mut psql);
    println!(
        "ratio create / psql: median {:.2}, p99 {:.2}",
        median / psql_median,
        p99 / psql_p99
    );
}
