//! The guard accepts exactly the toolkit's own `SECURITY DEFINER` functions, and refuses a
//! plain policy on a signed database.

use rls_tenancy::guard::{GuardOptions, check_url};
use rls_tenancy::{RuleId, ScratchDatabase, TenancyDeclaration};
use sqlx::AssertSqlSafe;

fn options() -> GuardOptions {
    GuardOptions::new(TenancyDeclaration::reference().expect("declaration"))
}

async fn findings(db: &ScratchDatabase) -> Vec<(RuleId, String)> {
    let report = check_url(db.runtime_url(), &options())
        .await
        .expect("guard runs");
    report
        .findings()
        .iter()
        .map(|f| (f.rule, f.object.clone()))
        .collect()
}

async fn admin_sql(db: &ScratchDatabase, sql: String) {
    let admin = db.admin_pool().await.expect("admin");
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&admin)
        .await
        .expect("fixture SQL");
}

#[tokio::test]
async fn the_toolkits_own_check_functions_pass_and_imitations_are_refused() {
    let db = ScratchDatabase::migrated_signed()
        .await
        .expect("signed database");
    assert_eq!(
        findings(&db).await,
        [],
        "a signed database passes the guard"
    );

    let (deploy, runtime) = (db.deploy_role(), db.runtime_role());
    // The same function, elsewhere and owned by the deploy role.
    admin_sql(
        &db,
        format!(
            "CREATE FUNCTION app.tenant(variable text) RETURNS text LANGUAGE sql STABLE SECURITY DEFINER
               SET search_path = pg_catalog, pg_temp AS 'SELECT current_setting(variable, true)';
             ALTER FUNCTION app.tenant(text) OWNER TO {deploy};
             GRANT EXECUTE ON FUNCTION app.tenant(text) TO {runtime}"
        ),
    )
    .await;
    assert_eq!(
        findings(&db).await,
        [(
            RuleId::SecurityDefinerFunction,
            "function app.tenant(variable text)".to_owned()
        )]
    );
}

#[tokio::test]
async fn the_check_function_owned_by_someone_else_or_unpinned_is_refused() {
    for change in [
        "ALTER FUNCTION rls_tenancy.tenant(text) OWNER TO postgres",
        "ALTER FUNCTION rls_tenancy.tenant(text) RESET search_path",
    ] {
        let db = ScratchDatabase::migrated_signed()
            .await
            .expect("signed database");
        admin_sql(&db, change.to_owned()).await;
        let found = findings(&db).await;
        assert!(
            found.contains(&(
                RuleId::SecurityDefinerFunction,
                "function rls_tenancy.tenant(variable text)".to_owned()
            )),
            "{change}: {found:?}"
        );
    }
}

#[tokio::test]
async fn a_plain_policy_on_a_signed_database_is_refused() {
    let db = ScratchDatabase::migrated_signed()
        .await
        .expect("signed database");
    admin_sql(
        &db,
        "ALTER POLICY tenant_isolation ON app.projects
           USING (account_id = nullif(current_setting('app.tenant_id', true), '')::bigint)
           WITH CHECK (account_id = nullif(current_setting('app.tenant_id', true), '')::bigint)"
            .to_owned(),
    )
    .await;
    let found = findings(&db).await;
    assert!(
        found
            .iter()
            .any(|(rule, object)| *rule == RuleId::PolicyNotCanonical
                && object == "table app.projects"),
        "{found:?}"
    );
}
