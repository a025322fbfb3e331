//! `rls-seed --strategy schema`: the same accounts and counts as the RLS strategy, each
//! account in a schema of its own, and no account's transaction showing another's rows.

use std::process::Command;

use rls_tenancy::{
    MigrateOptions, REFERENCE_TENANT_MIGRATIONS, ScratchDatabase, SeedOptions, SeedReport,
    Strategy, TenancyDeclaration, TenantId, TenantPool, TenantPoolOptions, TenantScope,
    install_policies,
};
use sqlx::PgPool;

use super::{TestResult, counts_by_account, seed_db};
use crate::support::TENANT_TABLES;

/// A database migrated for the schema strategy (signed tenant context, the runtime role may
/// read the registry's schema column), as `rls-migrate --strategy schema` leaves it.
async fn schema_database() -> TestResult<ScratchDatabase> {
    let db = ScratchDatabase::migrated_signed().await?;
    let key = db
        .tenant_key()
        .ok_or("a signed database has a key")?
        .clone();
    let options =
        MigrateOptions::new(db.deploy_url().clone(), db.runtime_role().as_str())?.tenant_key(key);
    install_policies(&schema_declaration()?, &options).await?;
    Ok(db)
}

fn schema_declaration() -> TestResult<TenancyDeclaration> {
    Ok(TenancyDeclaration::reference()?.with_strategy(Strategy::Schema))
}

fn in_schemas(db: &ScratchDatabase, options: SeedOptions) -> SeedOptions {
    options.in_tenant_schemas(&REFERENCE_TENANT_MIGRATIONS, db.runtime_role().as_str())
}

/// Per-account row counts `(slug, users, projects, tasks, subtasks)` read from each account's
/// own schema as the superuser, ordered by slug.
async fn counts_by_schema(admin: &PgPool) -> TestResult<Vec<(String, i64, i64, i64, i64)>> {
    let accounts: Vec<(String, String)> =
        sqlx::query_as("SELECT slug, schema_name FROM app.accounts ORDER BY slug")
            .fetch_all(admin)
            .await?;
    let mut counts = Vec::new();
    for (slug, schema) in accounts {
        let row: (i64, i64, i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT (SELECT count(*) FROM {schema}.users), (SELECT count(*) FROM {schema}.projects),
                    (SELECT count(*) FROM {schema}.tasks), (SELECT count(*) FROM {schema}.subtasks)"
        )))
        .fetch_one(admin)
        .await?;
        counts.push((slug, row.0, row.1, row.2, row.3));
    }
    Ok(counts)
}

fn totals(report: &SeedReport) -> [u64; 5] {
    [
        report.accounts,
        report.users,
        report.projects,
        report.tasks,
        report.subtasks,
    ]
}

#[tokio::test]
async fn schema_mode_seeds_the_same_accounts_and_counts_as_rls_mode_each_in_its_own_schema()
-> TestResult {
    let options = SeedOptions::new(4).seed(9).profile("small");
    let rls = ScratchDatabase::migrated().await?;
    let rls_report = seed_db(&rls, &options).await?;
    let db = schema_database().await?;
    let report = seed_db(&db, &in_schemas(&db, options.clone())).await?;
    assert_eq!(totals(&report), totals(&rls_report), "{report}");

    let admin = db.admin_pool().await?;
    let by_schema = counts_by_schema(&admin).await?;
    assert_eq!(
        by_schema,
        counts_by_account(&rls.admin_pool().await?).await?
    );
    let schemas: Vec<String> =
        sqlx::query_scalar("SELECT schema_name FROM app.accounts ORDER BY slug")
            .fetch_all(&admin)
            .await?;
    assert_eq!(schemas, ["tenant_0", "tenant_1", "tenant_2", "tenant_3"]);
    // Nothing in the shared schema's tenant tables.
    let shared_rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM app.users) + (SELECT count(*) FROM app.projects)
              + (SELECT count(*) FROM app.tasks) + (SELECT count(*) FROM app.subtasks)",
    )
    .fetch_one(&admin)
    .await?;
    assert_eq!(shared_rows, 0);
    // The identities were moved past the seeded ids: the application's next insert works.
    let next: i64 = sqlx::query_scalar(
        "INSERT INTO tenant_0.projects (account_id, name)
             SELECT id, 'added later' FROM app.accounts WHERE slug = 'tenant-0' RETURNING id",
    )
    .fetch_one(&admin)
    .await?;
    assert_eq!(next, by_schema[0].2 + 1);

    // Deterministic: the same options on a fresh database give the same rows, ids included.
    let again = schema_database().await?;
    seed_db(&again, &in_schemas(&again, options)).await?;
    let checksum = |pool: PgPool| async move {
        sqlx::query_scalar::<_, String>(
            "SELECT md5(string_agg(r, E'\\n' ORDER BY r)) FROM (
                SELECT x::text AS r FROM tenant_1.users x UNION ALL SELECT x::text FROM tenant_1.tasks x
                UNION ALL SELECT x::text FROM tenant_1.subtasks x) AS rows",
        )
        .fetch_one(&pool)
        .await
    };
    assert_eq!(
        checksum(admin.clone()).await?,
        checksum(again.admin_pool().await?).await?
    );
    Ok(())
}

#[tokio::test]
async fn an_accounts_transaction_shows_its_own_seeded_rows_and_none_of_another_schemas()
-> TestResult {
    let db = schema_database().await?;
    seed_db(
        &db,
        &in_schemas(&db, SeedOptions::new(3).seed(5).profile("small")),
    )
    .await?;
    let admin = db.admin_pool().await?;
    let truth = counts_by_schema(&admin).await?;
    let accounts: Vec<(i64, String, String)> =
        sqlx::query_as("SELECT id, slug, schema_name FROM app.accounts ORDER BY slug")
            .fetch_all(&admin)
            .await?;
    let key = db.tenant_key().ok_or("signed")?.clone();
    let pool = TenantPool::connect(
        db.runtime_url(),
        TenantPoolOptions::new(schema_declaration()?).tenant_key(key),
    )
    .await?;
    for ((id, slug, _), own) in accounts.iter().zip(&truth) {
        let scope = TenantScope::new(TenantId::new(*id)?, slug.parse()?);
        let mut tx = pool.begin(&scope).await?;
        let own = [own.1, own.2, own.3, own.4];
        for (table, rows) in TENANT_TABLES.iter().zip(own) {
            let seen: i64 =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                    .fetch_one(&mut *tx)
                    .await?;
            assert!(rows > 0, "{slug} has {table}");
            assert_eq!(seen, rows, "{slug} sees all of its own {table}");
            for (_, other, schema) in accounts.iter().filter(|a| &a.1 != slug) {
                let foreign: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT count(*) FROM {schema}.{table}"
                )))
                .fetch_one(&mut *tx)
                .await?;
                assert_eq!(foreign, 0, "{slug} sees none of {other}'s {table}");
            }
        }
        tx.rollback().await?;
    }
    Ok(())
}

#[tokio::test]
async fn schema_mode_on_a_database_not_migrated_for_it_says_what_to_run() -> TestResult {
    let db = ScratchDatabase::migrated().await?;
    let seed_bin = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rls-seed"))
            .arg("--database-url")
            .arg(db.deploy_url().expose_secret())
            .args([
                "--accounts",
                "2",
                "--runtime-role",
                db.runtime_role().as_str(),
            ])
            .args(args)
            .env_remove("RLS_STRATEGY")
            .env_remove("RUST_LOG")
            .output()
    };
    for (args, says) in [
        (
            &["--strategy", "schema"][..],
            "run rls-migrate --strategy schema first",
        ),
        // The database strategy, with no servers named for its tenant databases.
        (&["--strategy", "database"][..], "needs at least one server"),
    ] {
        let out = seed_bin(args)?;
        let stderr = String::from_utf8(out.stderr)?;
        let errors: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.contains("deploy_role_writer"))
            .collect();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(errors.len(), 1, "{args:?}: one line: {stderr}");
        assert!(errors[0].contains(says), "{args:?}: {stderr}");
    }
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM app.accounts")
        .fetch_one(&db.admin_pool().await?)
        .await?;
    assert_eq!(accounts, 0, "nothing written");
    Ok(())
}
