//! `rls-migrate` on a database that already holds this version's functions rewrites none of
//! them, and one whose check functions or grants were changed by hand gets them back.

use rls_tenancy::{
    MigrateOptions, REFERENCE_MIGRATIONS, ScratchDatabase, TenancyDeclaration, migrate_with,
};
use sqlx::PgPool;

use crate::support::catalog_row_versions;

async fn rerun(db: &ScratchDatabase) {
    let options = MigrateOptions::new(db.deploy_url().clone(), db.runtime_role().as_str())
        .expect("options")
        .tenant_key(db.tenant_key().expect("signed").clone());
    let decl = TenancyDeclaration::reference().expect("declaration");
    migrate_with(&REFERENCE_MIGRATIONS, &decl, &options)
        .await
        .expect("rls-migrate");
}

/// The source of `rls_tenancy.tenant(text)` and whether the runtime role may call the
/// release check.
async fn installed(admin: &PgPool, runtime: &str) -> (String, bool) {
    sqlx::query_as(
        "SELECT (SELECT prosrc FROM pg_proc WHERE oid = 'rls_tenancy.tenant(text)'::regprocedure),
                has_function_privilege($1, 'rls_tenancy.release_check(text, text, boolean, text)', 'EXECUTE')",
    )
    .bind(runtime)
    .fetch_one(admin)
    .await
    .expect("installed functions")
}

#[tokio::test]
async fn a_rerun_on_a_current_database_rewrites_none_of_the_toolkits_catalog_rows() {
    let db = ScratchDatabase::migrated_signed()
        .await
        .expect("signed database");
    let admin = db.admin_pool().await.expect("admin");
    // The signed context's and the release check's functions, their schemas and the secret
    // tables (the application's own tables get their grants again on every run).
    let toolkit_rows = || async {
        catalog_row_versions(&admin)
            .await
            .into_iter()
            .filter(|row| row.contains("rls_tenancy") || row.starts_with("database "))
            .collect::<Vec<_>>()
    };
    rerun(&db).await;
    let before = toolkit_rows().await;
    assert!(
        before
            .iter()
            .any(|row| row.starts_with("function rls_tenancy.enter(")),
        "{before:?}"
    );
    rerun(&db).await;
    assert_eq!(toolkit_rows().await, before);
}

#[tokio::test]
async fn a_check_function_or_a_grant_changed_by_hand_is_installed_again() {
    let db = ScratchDatabase::migrated_signed()
        .await
        .expect("signed database");
    let admin = db.admin_pool().await.expect("admin");
    let runtime = db.runtime_role().as_str();
    let (source, may_check) = installed(&admin, runtime).await;
    assert!(may_check, "the runtime role may call the release check");
    // A check that trusts the plain setting (what injected SQL could then forge), and the
    // release check taken from the runtime role.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE OR REPLACE FUNCTION rls_tenancy.tenant(variable text) RETURNS text
             LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
             AS $$ BEGIN RETURN nullif(current_setting(variable, true), ''); END $$;
         REVOKE EXECUTE ON FUNCTION rls_tenancy.release_check(text, text, boolean, text) FROM {runtime}"
    )))
    .execute(&admin)
    .await
    .expect("tamper");
    let (tampered, may_check) = installed(&admin, runtime).await;
    assert_ne!(tampered, source);
    assert!(!may_check);

    rerun(&db).await;
    let (repaired, may_check) = installed(&admin, runtime).await;
    assert_eq!(repaired, source, "the check function is installed again");
    assert!(may_check, "the runtime role's EXECUTE is granted again");
}
