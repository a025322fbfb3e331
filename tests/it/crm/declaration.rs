//! A declaration that does not fit the schema: one clear error naming the table and column,
//! exit 2, and nothing applied, migrations included.

use std::path::PathBuf;

use rls_tenancy::{DeclarationError, MigrateError, ScratchDatabase, migrate_with};

use crate::support::catalog_snapshot;

use super::{
    crm_declaration, crm_dir, crm_migrator, migrate_crm, migrate_options, rls_check, rls_migrate,
};

/// Each mistake: the change to the crm declaration and what the error must say.
fn mistakes() -> Vec<(&'static str, String, &'static str)> {
    let good = std::fs::read_to_string(crm_dir().join("tenancy.toml")).expect("declaration");
    let replace = |from: &str, to: &str| {
        assert!(good.contains(from), "{from:?} is in the crm declaration");
        good.replacen(from, to, 1)
    };
    vec![
        (
            "a tenant table that does not exist",
            format!("{good}\n[[tenant_table]]\nname = \"payments\"\ncolumn = \"org_id\"\n"),
            "tenant table crm.payments does not exist",
        ),
        (
            "a tenant column that does not exist",
            replace(
                "name = \"invoices\"\ncolumn = \"org_id\"",
                "name = \"invoices\"\ncolumn = \"tenant_id\"",
            ),
            "tenant table crm.invoices has no column tenant_id",
        ),
        (
            "a tenant column of another type than key_type",
            replace("key_type = \"uuid\"", "key_type = \"bigint\""),
            "column org_id of tenant table crm.customers is uuid, but key_type = \"bigint\" needs bigint",
        ),
        (
            "a registry without the named slug column",
            replace("slug_column = \"handle\"\n", ""),
            "registry crm.orgs has no column slug",
        ),
        (
            "a registry whose active column is not boolean",
            replace("active_column = \"active\"", "active_column = \"name\""),
            "column name of registry crm.orgs is text, but the active column must be boolean",
        ),
        (
            "a registry table that does not exist",
            replace("table = \"orgs\"", "table = \"organisations\""),
            "registry crm.organisations does not exist",
        ),
        (
            "a global table that does not exist",
            replace("name = \"currencies\"", "name = \"countries\""),
            "global table crm.countries does not exist",
        ),
    ]
}

fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("tenancy.toml");
    std::fs::write(&path, text).expect("write declaration");
    path
}

#[tokio::test]
async fn rls_migrate_exits_2_naming_the_mistake_and_applies_nothing() {
    let db = ScratchDatabase::create().await.expect("scratch database");
    let admin = db.admin_pool().await.expect("admin");
    let before = catalog_snapshot(&admin).await;
    let dir = tempfile::tempdir().expect("temp dir");
    for (mistake, text, expected) in mistakes() {
        let run = rls_migrate(&db, &write(&dir, &text));
        assert_eq!(run.code, Some(2), "{mistake}: {run:?}");
        assert!(
            run.output
                .contains("the declaration does not match the database")
                && run.output.contains(expected),
            "{mistake}: {run:?}"
        );
        assert!(!run.output.contains("panicked"), "{mistake}: {run:?}");
        assert_eq!(
            catalog_snapshot(&admin).await,
            before,
            "{mistake}: the migrations or policies were left applied"
        );
    }
    // The same run with the right declaration does change the catalog: the snapshot sees it.
    let run = rls_migrate(&db, &crm_dir().join("tenancy.toml"));
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_ne!(catalog_snapshot(&admin).await, before);
}

#[tokio::test]
async fn rls_check_exits_2_naming_the_mistake() {
    let db = ScratchDatabase::create().await.expect("scratch database");
    migrate_crm(&db).await;
    let dir = tempfile::tempdir().expect("temp dir");
    for (mistake, text, expected) in mistakes() {
        let run = rls_check(&db, &write(&dir, &text));
        assert_eq!(run.code, Some(2), "{mistake}: {run:?}");
        assert!(run.output.contains(expected), "{mistake}: {run:?}");
    }
    let run = rls_check(&db, &crm_dir().join("tenancy.toml"));
    assert_eq!(run.code, Some(0), "{run:?}");
}

#[tokio::test]
async fn migrate_with_returns_the_mismatch_as_a_declaration_error() {
    let db = ScratchDatabase::create().await.expect("scratch database");
    let text = std::fs::read_to_string(crm_dir().join("tenancy.toml"))
        .expect("declaration")
        .replacen("key_type = \"uuid\"", "key_type = \"bigint\"", 1);
    let wrong = rls_tenancy::TenancyDeclaration::parse(&text).expect("parses");
    let result = migrate_with(&crm_migrator().await, &wrong, &migrate_options(&db)).await;
    let Err(MigrateError::Declaration(DeclarationError::Mismatch { what })) = &result else {
        panic!("expected a mismatch, got {result:?}");
    };
    for column in [
        "column org_id of tenant table crm.customers is uuid",
        "column org_id of tenant table crm.invoices is uuid",
        "column id of registry crm.orgs is uuid",
    ] {
        assert!(what.contains(column), "{what}");
    }
    let admin = db.admin_pool().await.expect("admin");
    let crm: Option<String> = sqlx::query_scalar("SELECT to_regnamespace('crm')::text")
        .fetch_one(&admin)
        .await
        .expect("regnamespace");
    assert_eq!(crm, None, "the migrations were rolled back");
    migrate_with(
        &crm_migrator().await,
        &crm_declaration(),
        &migrate_options(&db),
    )
    .await
    .expect("the right declaration migrates");
}
