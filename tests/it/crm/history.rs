//! Our migration history never collides with the application's: `rls-migrate` runs the
//! application's own migrations through sqlx's `Migrator`, which records them where
//! `sqlx migrate run` does (`_sqlx_migrations`), and the toolkit records nothing of its own.
//! The application's migrator, run before or after ours, agrees on what is applied.

use rls_tenancy::{ScratchDatabase, migrate_with, migrator_from_dir};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

use super::{crm_declaration, crm_dir, crm_migrator, migrate_options};

/// A later migration of the application, applied by whichever migrator runs next.
const NOTES_MIGRATION: &str =
    "ALTER TABLE crm.customers ADD COLUMN notes text NOT NULL DEFAULT '';";

/// The crm migrations plus a third one, in a directory of their own.
async fn migrator_with_a_later_migration(dir: &tempfile::TempDir) -> Migrator {
    for entry in std::fs::read_dir(crm_dir().join("migrations")).expect("read dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
    }
    std::fs::write(
        dir.path().join("20260101000003_customer_notes.sql"),
        NOTES_MIGRATION,
    )
    .expect("write migration");
    migrator_from_dir(dir.path()).await.expect("migrator")
}

/// What the application's own migrator does: `sqlx migrate run` as the deploy role, into the
/// default `_sqlx_migrations` table.
async fn sqlx_migrate_run(migrator: &Migrator, deploy: &PgPool) {
    assert_eq!(migrator.table_name.as_ref(), "_sqlx_migrations");
    migrator
        .run(deploy)
        .await
        .expect("the application's sqlx migrate run");
}

/// The versions recorded as applied, and every table outside the application's schema.
async fn history(admin: &PgPool) -> (Vec<i64>, Vec<String>) {
    let versions = sqlx::query_scalar(
        "SELECT version FROM public._sqlx_migrations WHERE success ORDER BY version",
    )
    .fetch_all(admin)
    .await
    .expect("versions");
    let tables = sqlx::query_scalar(
        "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('crm', 'pg_catalog', 'information_schema')
            AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1",
    )
    .fetch_all(admin)
    .await
    .expect("tables");
    (versions, tables)
}

/// An empty database, its admin and deploy pools, and the crm migrator.
async fn empty_database() -> (ScratchDatabase, PgPool, PgPool, Migrator) {
    let db = ScratchDatabase::create().await.expect("scratch database");
    let admin = db.admin_pool().await.expect("admin");
    let deploy = PgPool::connect_with(db.deploy_url().connect_options().expect("options"))
        .await
        .expect("deploy pool");
    (db, admin, deploy, crm_migrator().await)
}

const FIRST_TWO: [i64; 2] = [20260101000001, 20260101000002];
const ALL_THREE: [i64; 3] = [20260101000001, 20260101000002, 20260101000003];

#[tokio::test]
async fn the_applications_sqlx_migrate_run_before_and_after_ours_keeps_working() {
    let (db, admin, deploy, migrator) = empty_database().await;

    sqlx_migrate_run(&migrator, &deploy).await;
    let report = migrate_with(&migrator, &crm_declaration(), &migrate_options(&db))
        .await
        .expect("rls-migrate after the application's migrator");
    assert!(report.applied_migrations.is_empty(), "{report:?}");
    assert_eq!(
        report.policies_installed,
        ["crm.customers", "crm.invoices"],
        "{report:?}"
    );
    sqlx_migrate_run(&migrator, &deploy).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let later = migrator_with_a_later_migration(&dir).await;
    sqlx_migrate_run(&later, &deploy).await;
    let report = migrate_with(&later, &crm_declaration(), &migrate_options(&db))
        .await
        .expect("rls-migrate after a later migration");
    assert!(report.is_noop(), "{report:?}");

    assert_eq!(
        history(&admin).await,
        (ALL_THREE.to_vec(), vec!["_sqlx_migrations".to_owned()]),
        "one history, the application's; nothing recorded by the toolkit"
    );
}

#[tokio::test]
async fn ours_first_then_the_applications_migrator_finds_everything_applied() {
    let (db, admin, deploy, migrator) = empty_database().await;

    let report = migrate_with(&migrator, &crm_declaration(), &migrate_options(&db))
        .await
        .expect("rls-migrate on an empty database");
    assert_eq!(report.applied_migrations, FIRST_TWO, "{report:?}");
    sqlx_migrate_run(&migrator, &deploy).await;
    assert_eq!(history(&admin).await.0, FIRST_TWO, "nothing applied twice");

    let dir = tempfile::tempdir().expect("temp dir");
    let later = migrator_with_a_later_migration(&dir).await;
    sqlx_migrate_run(&later, &deploy).await;
    let notes: Option<String> = sqlx::query_scalar(
        "SELECT attname::text FROM pg_attribute WHERE attrelid = 'crm.customers'::regclass AND attname = 'notes'",
    )
    .fetch_optional(&admin)
    .await
    .expect("column");
    assert_eq!(notes.as_deref(), Some("notes"), "the later migration ran");
    let report = migrate_with(&later, &crm_declaration(), &migrate_options(&db))
        .await
        .expect("rls-migrate after the application's migrator");
    assert!(report.applied_migrations.is_empty(), "{report:?}");
    assert_eq!(
        history(&admin).await,
        (ALL_THREE.to_vec(), vec!["_sqlx_migrations".to_owned()])
    );
}
