//! `rls-migrate`: idempotent, self-healing, and clear about bad input.

use std::process::Command;

use rls_tenancy::{
    MigrateError, MigrateOptions, MigrateReport, REFERENCE_MIGRATIONS, ScratchDatabase,
    TenancyDeclaration, TenantContextMode, migrate_with,
};

use crate::support::catalog_snapshot;

fn options(db: &ScratchDatabase) -> MigrateOptions {
    MigrateOptions::new(db.deploy_url().clone(), db.runtime_role().as_str())
        .expect("options")
        .tenant_context(TenantContextMode::Plain)
}

/// The reference migrations and declaration, as the deploy role.
async fn migrate(db: &ScratchDatabase) -> Result<MigrateReport, MigrateError> {
    let declaration = TenancyDeclaration::reference()?;
    migrate_with(&REFERENCE_MIGRATIONS, &declaration, &options(db)).await
}

#[tokio::test]
async fn migrating_twice_changes_nothing() {
    let db = ScratchDatabase::migrated().await.expect("scratch database");
    let admin = db.admin_pool().await.expect("admin");
    let before = catalog_snapshot(&admin).await;
    let report = migrate(&db).await.expect("second run");
    assert!(report.is_noop(), "{report:?}");
    assert_eq!(catalog_snapshot(&admin).await, before);
}

#[tokio::test]
async fn a_dropped_altered_or_disabled_policy_is_restored() {
    let db = ScratchDatabase::migrated().await.expect("scratch database");
    let admin = db.admin_pool().await.expect("admin");
    let damage = [
        (
            "app.projects",
            "DROP POLICY tenant_isolation ON app.projects",
        ),
        (
            "app.tasks",
            "ALTER POLICY tenant_isolation ON app.tasks USING (true)",
        ),
        (
            "app.subtasks",
            "ALTER TABLE app.subtasks NO FORCE ROW LEVEL SECURITY",
        ),
        (
            "app.users",
            "CREATE POLICY escape ON app.users USING (current_user = 'nobody')",
        ),
    ];
    for (_, sql) in damage {
        sqlx::raw_sql(sql).execute(&admin).await.expect("damage");
    }
    let report = migrate(&db).await.expect("repair run");
    let mut repaired = report.policies_installed.clone();
    repaired.sort();
    let mut expected: Vec<String> = damage.iter().map(|(t, _)| (*t).to_owned()).collect();
    expected.sort();
    assert_eq!(repaired, expected);

    let canonical: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_policies
          WHERE schemaname = 'app' AND policyname = 'tenant_isolation'
            AND qual = '(account_id = (NULLIF(current_setting(''app.tenant_id''::text, true), ''''::text))::bigint)'
            AND with_check = qual",
    )
    .fetch_one(&admin)
    .await
    .expect("count");
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_policies WHERE schemaname = 'app'")
        .fetch_one(&admin)
        .await
        .expect("count");
    assert_eq!(
        (canonical, all),
        (4, 4),
        "every table has exactly the canonical policy again"
    );
    assert!(migrate(&db).await.expect("third run").is_noop());
}

#[tokio::test]
async fn extra_privileges_granted_by_hand_are_taken_back() {
    let db = ScratchDatabase::migrated().await.expect("scratch database");
    let admin = db.admin_pool().await.expect("admin");
    let runtime = db.runtime_role();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "GRANT ALL ON app.projects TO {runtime}; GRANT UPDATE ON ALL SEQUENCES IN SCHEMA app TO {runtime}"
    )))
    .execute(&admin)
    .await
    .expect("grant");
    migrate(&db).await.expect("repair run");
    let (truncate, update_seq, update_tenant_col): (bool, bool, bool) = sqlx::query_as(
        "SELECT has_table_privilege($1, 'app.projects', 'TRUNCATE'),
                has_sequence_privilege($1, pg_get_serial_sequence('app.projects', 'id'), 'UPDATE'),
                has_column_privilege($1, 'app.projects', 'account_id', 'UPDATE')",
    )
    .bind(runtime.as_str())
    .fetch_one(&admin)
    .await
    .expect("privileges");
    assert!(!truncate && !update_seq && !update_tenant_col);
}

/// Runs the `rls-migrate` binary with `args`, `DEPLOY_DATABASE_URL` set to `deploy_url`
/// if given and no other setting from the environment; its exit code and output.
pub fn rls_migrate(args: &[&str], deploy_url: Option<&str>) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rls-migrate"));
    cmd.args(args)
        .env_remove("DEPLOY_DATABASE_URL")
        .env_remove("RLS_RUNTIME_ROLE")
        .env_remove("RLS_TENANT_CONTEXT")
        .env_remove("RLS_TENANT_KEY_FILE");
    if let Some(url) = deploy_url {
        cmd.env("DEPLOY_DATABASE_URL", url);
    }
    let out = cmd.output().expect("run rls-migrate");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn rls_migrate_exits_2_with_a_clear_message_for_bad_input() {
    let db = ScratchDatabase::create().await.expect("scratch database");
    let deploy = db.deploy_url().expose_secret().to_owned();
    let cases: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
        (vec![], None, "DEPLOY_DATABASE_URL"),
        (
            vec!["--database-url", "not a url"],
            None,
            "invalid database URL",
        ),
        (
            vec!["--database-url", "mysql://x@127.0.0.1/db"],
            None,
            "not postgres",
        ),
        (
            vec!["--database-url", "postgres://nobody:pw@127.0.0.1:1/db"],
            None,
            "cannot connect",
        ),
        (
            vec!["--runtime-role", "no_such_role_here"],
            Some(&deploy),
            "does not exist",
        ),
        (
            vec!["--runtime-role", "bad role; drop"],
            Some(&deploy),
            "invalid role",
        ),
        (
            vec!["--tenant-variable", "nodot"],
            Some(&deploy),
            "invalid tenant variable",
        ),
        (vec!["--no-such-flag"], Some(&deploy), "unexpected argument"),
    ];
    for (args, env_url, expected) in cases {
        let (code, output) = rls_migrate(&args, env_url);
        assert_eq!(code, 2, "{args:?}: {output}");
        assert!(output.contains(expected), "{args:?}: {output}");
        assert!(!output.contains("panicked"), "{args:?}: {output}");
        assert!(
            !output.contains("leakme"),
            "a password in the query string leaked: {output}"
        );
        let password = db
            .deploy_url()
            .expose_secret()
            .split(':')
            .nth(2)
            .unwrap_or("")
            .split('@')
            .next()
            .unwrap_or("");
        assert!(
            password.is_empty() || !output.contains(password),
            "password leaked: {output}"
        );
    }
}

#[tokio::test]
async fn rls_migrate_exits_1_and_applies_nothing_when_a_migration_fails() {
    let db = ScratchDatabase::create().await.expect("scratch database");
    let admin = db.admin_pool().await.expect("admin");
    // A conflicting object makes the first migration fail half way through.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA app AUTHORIZATION {deploy}; CREATE TABLE app.projects (x int); ALTER TABLE app.projects OWNER TO {deploy}",
        deploy = db.deploy_role()
    )))
    .execute(&admin)
    .await
    .expect("conflict");
    let deploy = db.deploy_url().expose_secret().to_owned();
    let role = db.runtime_role().as_str().to_owned();
    let (code, output) = rls_migrate(&["--runtime-role", &role], Some(&deploy));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("migration failed"), "{output}");
    let half: Option<String> = sqlx::query_scalar("SELECT to_regclass('app.accounts')::text")
        .fetch_one(&admin)
        .await
        .expect("regclass");
    assert_eq!(half, None, "the failed migration left app.accounts behind");
}

#[tokio::test]
async fn rls_migrate_runs_as_the_deploy_role_and_reports_what_it_did() {
    let db = ScratchDatabase::create().await.expect("scratch database");
    let deploy = db.deploy_url().expose_secret().to_owned();
    let role = db.runtime_role().as_str().to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("tenant.key");
    let key_file = key_file.to_str().expect("utf-8 path");
    let args = ["--runtime-role", &role, "--tenant-key-file", key_file];
    let (code, first) = rls_migrate(&args, Some(&deploy));
    assert_eq!(code, 0, "{first}");
    assert!(
        first.contains("applied") && first.contains("installed on"),
        "{first}"
    );
    let (code, second) = rls_migrate(&args, Some(&deploy));
    assert_eq!(code, 0, "{second}");
    assert!(
        second.contains("up to date") && second.contains("all in place"),
        "{second}"
    );
}

#[tokio::test]
async fn a_failure_after_the_migrations_leaves_nothing_applied() {
    let db = ScratchDatabase::create().await.expect("scratch database");
    // The migrations succeed, then installing policies fails on a declared table that
    // no migration creates: the whole run must roll back, migrations included.
    let declaration = rls_tenancy::TenancyDeclaration::parse(
        r#"
        schema = "app"
        [registry]
        table = "accounts"
        readable_columns = ["id", "slug", "is_active"]
        [[tenant_table]]
        name = "projects"
        column = "account_id"
        [[tenant_table]]
        name = "ghosts"
        column = "account_id"
        "#,
    )
    .expect("declaration");
    let result = migrate_with(&REFERENCE_MIGRATIONS, &declaration, &options(&db)).await;
    assert!(
        matches!(&result, Err(MigrateError::Declaration(e)) if e.to_string().contains("app.ghosts does not exist")),
        "{result:?}"
    );
    let admin = db.admin_pool().await.expect("admin");
    let (tables, unprotected): (Option<String>, Option<String>) = sqlx::query_as(
        "SELECT to_regclass('app.accounts')::text, to_regclass('app.projects')::text",
    )
    .fetch_one(&admin)
    .await
    .expect("regclass");
    assert_eq!(
        (tables, unprotected),
        (None, None),
        "tables were left without their policies"
    );
}

/// The reference migrations plus a later one that creates `app.notes`, a table with tenant
/// rows, in a directory of its own.
async fn migrator_with_notes(db: &ScratchDatabase) -> sqlx::migrate::Migrator {
    let dir = std::env::temp_dir().join(format!("rls-later-{}", db.name().as_str()));
    std::fs::create_dir_all(&dir).expect("migrations dir");
    for entry in std::fs::read_dir("migrations").expect("reference migrations") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            continue; // migrations/tenant: the schema mode's tenant migrations
        }
        std::fs::copy(&path, dir.join(path.file_name().expect("file name"))).expect("copy");
    }
    std::fs::write(
        dir.join("29991231000000_notes.sql"),
        "CREATE TABLE app.notes (
             id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
             account_id bigint NOT NULL REFERENCES app.accounts (id),
             body text NOT NULL
         );",
    )
    .expect("later migration");
    let migrator = rls_tenancy::migrator_from_dir(&dir)
        .await
        .expect("migrator");
    std::fs::remove_dir_all(&dir).expect("remove migrations dir");
    migrator
}

/// What the runtime role gets for `statement` on a plain connection with `tenant` set.
async fn as_runtime(
    fixture: &crate::support::TwoTenants,
    tenant: &rls_tenancy::TenantScope,
    statement: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let mut conn = fixture
        .raw_runtime_pool(1)
        .await
        .acquire()
        .await
        .expect("runtime connection");
    let mut tx = sqlx::Connection::begin(&mut *conn).await.expect("begin");
    sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
        .bind(tenant.id().to_string())
        .execute(&mut *tx)
        .await
        .expect("tenant");
    let rows = sqlx::query_scalar(sqlx::AssertSqlSafe(statement.to_owned()))
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(rows)
}

#[tokio::test]
async fn a_table_a_later_migration_creates_is_closed_until_declared_then_walled_per_tenant() {
    let fixture = crate::support::TwoTenants::new().await;
    let db = &fixture.db;
    let runtime = db.runtime_role();
    // An install made by an older rls-migrate: default privileges open every new table.
    use sqlx::Connection as _;
    let mut deploy =
        sqlx::PgConnection::connect_with(&db.deploy_url().connect_options().expect("options"))
            .await
            .expect("deploy connection");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {runtime}"
    )))
    .execute(&mut deploy)
    .await
    .expect("old default privileges");
    let migrator = migrator_with_notes(db).await;

    // The migration runs; the declaration does not name its table yet.
    let report = migrate_with(
        &migrator,
        &TenancyDeclaration::reference().expect("declaration"),
        &options(db),
    )
    .await
    .expect("migrate");
    assert_eq!(report.applied_migrations, [29991231000000]);
    let a = &fixture.a.scope;
    let read = as_runtime(&fixture, a, "SELECT body FROM app.notes").await;
    assert_eq!(
        crate::support::sqlstate(&read).as_deref(),
        Some("42501"),
        "{read:?}"
    );
    let write = as_runtime(
        &fixture,
        a,
        &format!(
            "INSERT INTO app.notes (account_id, body) VALUES ({}, 'x') RETURNING body",
            a.id()
        ),
    )
    .await;
    assert_eq!(
        crate::support::sqlstate(&write).as_deref(),
        Some("42501"),
        "{write:?}"
    );
    let stale: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_default_acl d, aclexplode(d.defaclacl) x
          WHERE x.grantee = to_regrole($1)",
    )
    .bind(runtime.as_str())
    .fetch_one(&fixture.admin)
    .await
    .expect("default privileges");
    assert_eq!(stale, 0, "the old default privileges were not revoked");
    let sequence_usage = |table: &'static str| {
        let admin = fixture.admin.clone();
        async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT has_sequence_privilege($1, pg_get_serial_sequence($2, 'id'), 'USAGE')",
            )
            .bind(runtime.as_str())
            .bind(table)
            .fetch_one(&admin)
            .await
            .expect("sequence privilege")
        }
    };
    assert!(
        !sequence_usage("app.notes").await,
        "the undeclared table's sequence is usable"
    );
    assert!(
        sequence_usage("app.projects").await,
        "a declared table's sequence"
    );

    // Declared as a tenant table and migrated: open, and walled per tenant.
    let declared = TenancyDeclaration::parse(
        &std::fs::read_to_string("policies/tenancy.toml")
            .expect("declaration")
            .replace(
                "[[tenant_table]]\nname = \"subtasks\"",
                "[[tenant_table]]\nname = \"notes\"\ncolumn = \"account_id\"\n\n[[tenant_table]]\nname = \"subtasks\"",
            ),
    )
    .expect("declaration with notes");
    assert!(declared.tenant_table("notes").is_some());
    let report = migrate_with(&migrator, &declared, &options(db))
        .await
        .expect("migrate");
    assert_eq!(report.policies_installed, ["app.notes"]);
    assert!(sequence_usage("app.notes").await, "declared, its sequence");
    sqlx::query(
        "INSERT INTO app.notes (account_id, body) VALUES ($1, 'note of a'), ($2, 'note of b')",
    )
    .bind(fixture.a.scope.id().as_i64().expect("bigint id"))
    .bind(fixture.b.scope.id().as_i64().expect("bigint id"))
    .execute(&fixture.admin)
    .await
    .expect("notes");
    for (scope, own) in [
        (&fixture.a.scope, "note of a"),
        (&fixture.b.scope, "note of b"),
    ] {
        let seen = as_runtime(&fixture, scope, "SELECT body FROM app.notes ORDER BY body")
            .await
            .expect("declared table is readable");
        assert_eq!(seen, [own], "tenant {} saw {seen:?}", scope.slug());
    }
    let foreign = as_runtime(
        &fixture,
        a,
        &format!(
            "INSERT INTO app.notes (account_id, body) VALUES ({}, 'planted') RETURNING body",
            fixture.b.scope.id()
        ),
    )
    .await;
    assert_eq!(
        crate::support::sqlstate(&foreign).as_deref(),
        Some("42501"),
        "{foreign:?}"
    );
}
