//! `rls-tenant move` of a tenant with 1,000 subtasks between the two harness servers: total
//! time and write pause, against `pg_dump -Fc | pg_restore` of the same tenant database into
//! a fresh database on the other server, in the same run.
//!
//! `cargo bench --bench move_tenant` (env: `BENCH_SUBTASKS`, default 1000; `BENCH_ROUNDS`,
//! default 5). The tenant (reference schema: 10 users, 10 projects, 100 tasks and
//! `BENCH_SUBTASKS` subtasks, each with a 200-character `details`) moves one -> two, then
//! back, `BENCH_ROUNDS` times each way; each move is timed by its own report (total, and
//! writes blocked from the tables' lock to the registry's commit). The baseline, after each
//! move, dumps the tenant database where it now is (`pg_dump -Fc`, as the superuser: the
//! deploy role cannot dump tables whose forced row-level security hides every row from it)
//! piped into `pg_restore` into a database just created from `template0` on the other server;
//! its write pause would be all of it (the tenant must not be written while it is dumped, or
//! the writes are lost). Prints the medians, the ratios and the load average.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark aborts on failure"
)]

use std::time::{Duration, Instant};

use rls_tenancy::{
    DatabasePattern, NewTenant, ScratchServers, TenantLifecycle, connect, migrator_from_dir,
};
use sqlx::{AssertSqlSafe, Connection};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

/// `pg_dump -Fc` of `database` on server `from` into a fresh database on `to`; its time.
async fn dump_restore(bed: &ScratchServers, from: &str, to: &str, database: &str) -> Duration {
    let fresh = format!("{database}_baseline");
    let admin_to = bed.admin_url(to).expect("server");
    let mut su = connect(&admin_to).await.expect("superuser");
    let started = Instant::now();
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE DATABASE {fresh} TEMPLATE template0"
    )))
    .execute(&mut su)
    .await
    .expect("fresh database");
    let source = bed.admin_url(from).expect("server").with_database(database);
    let target = admin_to.with_database(&fresh);
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg("pg_dump -Fc -d \"$SOURCE\" | pg_restore --exit-on-error -d \"$TARGET\"")
        .env("SOURCE", source.expose_secret())
        .env("TARGET", target.expose_secret())
        .status()
        .expect("pg_dump | pg_restore runs");
    let took = started.elapsed();
    assert!(status.success(), "pg_dump | pg_restore failed");
    let rows: i64 = {
        let mut check = connect(&target).await.expect("restored");
        let rows = sqlx::query_scalar("SELECT count(*) FROM app.subtasks")
            .fetch_one(&mut check)
            .await
            .expect("count");
        check.close().await.expect("close");
        rows
    };
    assert!(rows > 0, "the restore holds the subtasks");
    sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE {fresh} WITH (FORCE)")))
        .execute(&mut su)
        .await
        .expect("drop");
    took
}

#[tokio::main]
async fn main() {
    let subtasks = env("BENCH_SUBTASKS", 1000);
    let rounds = env("BENCH_ROUNDS", 5);
    let bed = ScratchServers::create().await.expect("scratch servers");
    let lifecycle = TenantLifecycle::connect(
        bed.declaration().clone(),
        bed.migrate_options().expect("options"),
    )
    .await
    .expect("lifecycle")
    .servers(bed.deploy_servers().clone(), DatabasePattern::default())
    .tenant_migrations(
        migrator_from_dir("migrations/tenant")
            .await
            .expect("tenant migrations"),
    );
    let tenant = lifecycle
        .create(&NewTenant::new("bench".parse().unwrap()).server("one".parse().unwrap()))
        .await
        .expect("tenant");
    // A second tenant on server two, so its template exists before the first move.
    lifecycle
        .create(&NewTenant::new("other".parse().unwrap()).server("two".parse().unwrap()))
        .await
        .expect("tenant");
    let database = tenant.database.clone().unwrap();
    let id = tenant.id.as_i64().unwrap();
    let mut su = connect(&bed.admin_url("one").unwrap().with_database(&database))
        .await
        .expect("superuser");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "INSERT INTO app.users (account_id, email, first_name, last_name, password)
              SELECT {id}, 'u' || i || '@example.com', 'U', 'Ser', md5(i::text) FROM generate_series(1, 10) i;
         INSERT INTO app.projects (account_id, name, details)
              SELECT {id}, 'project ' || i, repeat('p', 200) FROM generate_series(1, 10) i;
         INSERT INTO app.tasks (account_id, project_id, name, details)
              SELECT {id}, p.id, 'task ' || i, repeat('t', 200) FROM app.projects p, generate_series(1, 10) i;
         INSERT INTO app.subtasks (account_id, task_id, name, details)
              SELECT {id}, t.id, 'subtask ' || i, repeat('s', 200)
                FROM generate_series(1, {subtasks}) i
                JOIN app.tasks t ON t.id = (SELECT min(id) FROM app.tasks) + i % 100;"
    )))
    .execute(&mut su)
    .await
    .expect("seeded");
    su.close().await.expect("close");

    let (mut totals, mut pauses, mut baselines) = (Vec::new(), Vec::new(), Vec::new());
    let mut at = "one";
    for round in 0..rounds * 2 {
        let to = if at == "one" { "two" } else { "one" };
        let report = lifecycle
            .move_tenant(&tenant.slug, &to.parse().unwrap(), &())
            .await
            .expect("moved");
        let baseline =
            dump_restore(&bed, to, if to == "one" { "two" } else { "one" }, &database).await;
        println!(
            "round {round}: {at} -> {to}: move {:.3} s (writes blocked {:.3} s, {} rows replayed), pg_dump | pg_restore {:.3} s",
            report.total.as_secs_f64(),
            report.write_pause.as_secs_f64(),
            report.replayed,
            baseline.as_secs_f64()
        );
        if round == 0 {
            println!("rows: {:?}", report.tables);
        }
        totals.push(report.total);
        pauses.push(report.write_pause);
        baselines.push(baseline);
        at = to;
    }
    let (total, pause, baseline) = (median(totals), median(pauses), median(baselines));
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "median over {} moves: move {:.3} s, of it writes blocked {:.3} s; pg_dump -Fc | pg_restore {:.3} s",
        rounds * 2,
        total.as_secs_f64(),
        pause.as_secs_f64(),
        baseline.as_secs_f64()
    );
    println!(
        "ratios: move / dump-restore {:.2}; write pause / dump-restore {:.2}; load average {}",
        total.as_secs_f64() / baseline.as_secs_f64(),
        pause.as_secs_f64() / baseline.as_secs_f64(),
        load.trim()
    );
    lifecycle.close().await;
}
