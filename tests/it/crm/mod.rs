//! The `crm` schema (tests/fixtures/crm), an application written only for these tests, through
//! the whole toolkit: its own migrations and declaration, UUID tenant keys, a registry with
//! its own column names, a global table and composite foreign keys.

mod declaration;
mod history;

use std::path::{Path, PathBuf};
use std::process::Command;

use rls_tenancy::{
    MigrateOptions, MigrateReport, ScratchDatabase, TenancyDeclaration, migrate_with,
    migrator_from_dir,
};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

/// The fixture's directory: `migrations/` and `tenancy.toml`.
pub fn crm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crm")
}

/// The crm migrations, as the application's own `sqlx::migrate::Migrator` reads them.
pub async fn crm_migrator() -> Migrator {
    migrator_from_dir(crm_dir().join("migrations"))
        .await
        .expect("crm migrations")
}

/// The crm declaration.
pub fn crm_declaration() -> TenancyDeclaration {
    TenancyDeclaration::from_file(crm_dir().join("tenancy.toml")).expect("crm declaration")
}

/// Options for migrating `db` as its deploy role.
pub fn migrate_options(db: &ScratchDatabase) -> MigrateOptions {
    MigrateOptions::new(db.deploy_url().clone(), db.runtime_role().as_str()).expect("options")
}

/// The crm migrations and declaration applied to `db`, as the deploy role.
pub async fn migrate_crm(db: &ScratchDatabase) -> MigrateReport {
    migrate_with(
        &crm_migrator().await,
        &crm_declaration(),
        &migrate_options(db),
    )
    .await
    .expect("migrate crm")
}

/// Every schema, relation, column privilege, policy and default privilege of the database
/// outside the system schemas, as one comparable snapshot.
pub async fn catalog_snapshot(admin: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT format('schema %s acl=%s', n.nspname, n.nspacl)
           FROM pg_namespace n
          WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
         UNION ALL
         SELECT format('relation %s kind=%s rls=%s force=%s acl=%s', c.oid::regclass, c.relkind,
                       c.relrowsecurity, c.relforcerowsecurity, c.relacl)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
         UNION ALL
         SELECT format('column %s.%s acl=%s', a.attrelid::regclass, a.attname, a.attacl)
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
            AND a.attacl IS NOT NULL
         UNION ALL
         SELECT format('policy %s %s', p.polrelid::regclass, p.polname) FROM pg_policy p
         UNION ALL
         SELECT format('default %s', d.defaclacl) FROM pg_default_acl d
         ORDER BY 1",
    )
    .fetch_all(admin)
    .await
    .expect("snapshot")
}

/// What a binary printed and how it exited.
#[derive(Debug)]
pub struct BinRun {
    pub code: Option<i32>,
    pub output: String,
}

/// Runs one of the crate's binaries with `args`, with no connection settings inherited from
/// the environment.
pub fn run_bin(binary: &str, args: &[&str]) -> BinRun {
    let out = Command::new(binary)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("DEPLOY_DATABASE_URL")
        .env_remove("RLS_RUNTIME_ROLE")
        .env_remove("RLS_MIGRATIONS")
        .env_remove("RLS_DECLARATION")
        .output()
        .expect("run the binary");
    BinRun {
        code: out.status.code(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// `rls-migrate` on `db` with the crm migrations and `declaration`.
pub fn rls_migrate(db: &ScratchDatabase, declaration: &Path) -> BinRun {
    let migrations = crm_dir().join("migrations");
    run_bin(
        env!("CARGO_BIN_EXE_rls-migrate"),
        &[
            "--database-url",
            db.deploy_url().expose_secret(),
            "--runtime-role",
            db.runtime_role().as_str(),
            "--migrations",
            migrations.to_str().expect("utf-8 path"),
            "--declaration",
            declaration.to_str().expect("utf-8 path"),
        ],
    )
}

/// `rls-check` on `db` as its runtime role, with `declaration`.
pub fn rls_check(db: &ScratchDatabase, declaration: &Path) -> BinRun {
    run_bin(
        env!("CARGO_BIN_EXE_rls-check"),
        &[
            "--database-url",
            db.runtime_url().expose_secret(),
            "--declaration",
            declaration.to_str().expect("utf-8 path"),
        ],
    )
}
