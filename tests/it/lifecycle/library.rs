//! The lifecycle functions called directly: what each command writes, that a created tenant
//! is walled off from the others, and that bad input changes nothing.

use rls_tenancy::{
    LifecycleError, MigrateError, NewTenant, PlacementError, REFERENCE_TENANT_MIGRATIONS,
    RegistryOptions, RunOutcome, SchemaOutcome, SchemaSelector, TenantSlug, migrate_schemas,
};

use super::{Tenants, options};
use crate::support::TENANT_TABLES;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn slug(s: &str) -> TenantSlug {
    s.parse().expect("slug")
}

#[tokio::test]
async fn create_in_the_schema_mode_makes_a_schema_rls_migrate_finds_current() -> TestResult {
    let t = Tenants::schema().await;
    let acme = t.lifecycle.create(&NewTenant::new(slug("acme"))).await?;
    let globex = t
        .lifecycle
        .create(&NewTenant::new(slug("globex-corp")).name("Globex"))
        .await?;
    assert_eq!(acme.schema.as_deref(), Some("acme"));
    assert_eq!(globex.schema.as_deref(), Some("globex_corp"));
    let listed = t.lifecycle.list().await?;
    assert_eq!(listed, [acme.clone(), globex.clone()]);
    for table in TENANT_TABLES {
        assert_eq!(
            t.rows("globex_corp", table).await,
            0,
            "{table} exists, empty"
        );
    }
    let report = migrate_schemas(&REFERENCE_TENANT_MIGRATIONS, &t.decl, &options(&t.db), 2).await?;
    assert!(
        report
            .schemas
            .iter()
            .all(|s| s.outcome == SchemaOutcome::Current),
        "a created schema has every migration, policy and grant:\n{report}"
    );
    assert_eq!(report.schemas.len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_created_tenant_sees_its_own_rows_and_never_another_tenants() -> TestResult {
    let t = Tenants::schema().await;
    let a = t
        .lifecycle
        .create(&NewTenant::new(slug("tenant-a")))
        .await?;
    let b = t
        .lifecycle
        .create(&NewTenant::new(slug("tenant-b")))
        .await?;
    let pool = t.runtime_pool().await;
    for own in [&a, &b] {
        let mut tx = pool.begin(&own.scope()).await?;
        sqlx::query("INSERT INTO projects (account_id, name) VALUES ($1, $2)")
            .bind(own.id.as_i64())
            .bind(format!("project of {}", own.slug))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    let mut tx = pool.begin(&a.scope()).await?;
    let own: Vec<String> = sqlx::query_scalar("SELECT name FROM projects")
        .fetch_all(&mut *tx)
        .await?;
    assert_eq!(own, ["project of tenant-a"]);
    let foreign: Vec<String> = sqlx::query_scalar("SELECT name FROM tenant_b.projects")
        .fetch_all(&mut *tx)
        .await?;
    assert!(foreign.is_empty(), "tenant-b's rows leaked: {foreign:?}");
    let written = sqlx::query("INSERT INTO tenant_b.projects (account_id, name) VALUES ($1, 'x')")
        .bind(b.id.as_i64())
        .execute(&mut *tx)
        .await;
    assert!(
        written.is_err(),
        "a write into tenant-b's schema is refused"
    );
    Ok(())
}

#[tokio::test]
async fn bad_names_on_create_are_refused_and_change_nothing() -> TestResult {
    let t = Tenants::schema().await;
    t.lifecycle.create(&NewTenant::new(slug("acme"))).await?;
    sqlx::raw_sql("CREATE SCHEMA squatter")
        .execute(&t.admin)
        .await?;
    let before = t.snapshot().await;

    let taken = t.lifecycle.create(&NewTenant::new(slug("acme"))).await;
    assert!(
        matches!(taken, Err(LifecycleError::SlugTaken { ref slug }) if slug == "acme"),
        "{taken:?}"
    );
    let schema_taken = t
        .lifecycle
        .create(&NewTenant::new(slug("other")).schema("acme"))
        .await;
    assert!(
        matches!(schema_taken, Err(LifecycleError::SchemaTaken { .. })),
        "{schema_taken:?}"
    );
    let squatted = t.lifecycle.create(&NewTenant::new(slug("squatter"))).await;
    assert!(
        matches!(squatted, Err(LifecycleError::SchemaTaken { .. })),
        "{squatted:?}"
    );
    for reserved in [
        "public",
        "pg_toast",
        "information_schema",
        "app",
        "Bad-Name",
        "a;drop",
    ] {
        let refused = t
            .lifecycle
            .create(&NewTenant::new(slug("fresh")).schema(reserved))
            .await;
        assert!(
            matches!(
                refused,
                Err(LifecycleError::Placement(
                    PlacementError::ReservedSchemaName { .. }
                        | PlacementError::InvalidSchemaName(_)
                ))
            ),
            "{reserved}: {refused:?}"
        );
        assert!(refused.is_err_and(|e| e.is_usage()));
    }
    let digit = t.lifecycle.create(&NewTenant::new(slug("7up"))).await;
    assert!(
        matches!(digit, Err(LifecycleError::Placement(_))),
        "{digit:?}"
    );
    assert_eq!(t.snapshot().await, before, "nothing changed");
    Ok(())
}

#[tokio::test]
async fn suspend_resume_and_rename_change_what_the_registry_resolves() -> TestResult {
    let t = Tenants::schema().await;
    let acme = t.lifecycle.create(&NewTenant::new(slug("acme"))).await?;
    let pool = t.runtime_pool().await;
    let registry = pool.registry(
        RegistryOptions::default()
            .listen(false)
            .negative_ttl(std::time::Duration::ZERO),
    );
    assert_eq!(registry.resolve(&slug("acme")).await?.id(), acme.id);

    assert!(!t.lifecycle.suspend(&slug("acme")).await?.active);
    registry.invalidate(&slug("acme"));
    assert!(
        registry.resolve(&slug("acme")).await.is_err(),
        "suspended: not found"
    );
    assert!(t.lifecycle.resume(&slug("acme")).await?.active);
    registry.invalidate(&slug("acme"));
    assert_eq!(registry.resolve(&slug("acme")).await?.id(), acme.id);

    let renamed = t
        .lifecycle
        .rename(&slug("acme"), &slug("acme-corp"))
        .await?;
    assert_eq!(
        (renamed.id, renamed.schema.as_deref()),
        (acme.id, Some("acme"))
    );
    registry.invalidate(&slug("acme"));
    assert!(
        registry.resolve(&slug("acme")).await.is_err(),
        "the old slug is gone"
    );
    assert_eq!(registry.resolve(&slug("acme-corp")).await?.id(), acme.id);

    t.lifecycle.create(&NewTenant::new(slug("globex"))).await?;
    let before = t.snapshot().await;
    let taken = t
        .lifecycle
        .rename(&slug("globex"), &slug("acme-corp"))
        .await;
    assert!(
        matches!(taken, Err(LifecycleError::SlugTaken { .. })),
        "{taken:?}"
    );
    for unknown in [
        t.lifecycle.suspend(&slug("initech")).await,
        t.lifecycle.resume(&slug("initech")).await,
        t.lifecycle
            .rename(&slug("initech"), &slug("initrode"))
            .await,
    ] {
        assert!(
            matches!(unknown, Err(LifecycleError::TenantNotFound { ref slug }) if slug == "initech"),
            "{unknown:?}"
        );
    }
    assert_eq!(t.snapshot().await, before, "nothing changed");
    Ok(())
}

#[tokio::test]
async fn drop_in_the_schema_mode_removes_the_schema_and_the_row_and_nothing_else() -> TestResult {
    let t = Tenants::schema().await;
    t.lifecycle.create(&NewTenant::new(slug("acme"))).await?;
    let globex = t.lifecycle.create(&NewTenant::new(slug("globex"))).await?;
    let plan = t.lifecycle.drop_plan(&slug("acme")).await?;
    assert_eq!(
        plan.tables,
        ["acme.users", "acme.projects", "acme.tasks", "acme.subtasks"]
    );
    let dropped = t.lifecycle.drop_tenant(&slug("acme")).await?;
    assert_eq!(dropped, plan);
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname IN ('acme', 'globex') ORDER BY 1",
    )
    .fetch_all(&t.admin)
    .await?;
    assert_eq!(schemas, ["globex"]);
    assert_eq!(t.lifecycle.list().await?, [globex]);
    let again = t.lifecycle.drop_plan(&slug("acme")).await;
    assert!(
        matches!(again, Err(LifecycleError::TenantNotFound { .. })),
        "{again:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_registered_tenant_without_its_schema_is_refused_and_nothing_changes() -> TestResult {
    let t = Tenants::schema().await;
    t.lifecycle.create(&NewTenant::new(slug("acme"))).await?;
    t.lifecycle.create(&NewTenant::new(slug("globex"))).await?;
    sqlx::raw_sql("DROP SCHEMA globex CASCADE")
        .execute(&t.admin)
        .await?;
    let before = t.snapshot().await;
    let plan = t.lifecycle.drop_plan(&slug("globex")).await.map(|_| ());
    assert!(missing(&plan), "{plan:?}");
    let dropped = t.lifecycle.drop_tenant(&slug("globex")).await.map(|_| ());
    assert!(missing(&dropped), "{dropped:?}");
    let ran = t
        .lifecycle
        .run(
            &SchemaSelector::All,
            "INSERT INTO projects (account_id, name) SELECT 1, 'x'",
        )
        .await
        .map(|_| ());
    assert!(missing(&ran), "checked before anything runs: {ran:?}");
    assert_eq!(t.snapshot().await, before, "nothing changed");
    assert_eq!(
        t.rows("acme", "projects").await,
        0,
        "acme was not run either"
    );
    Ok(())
}

fn missing(result: &Result<(), LifecycleError>) -> bool {
    matches!(result, Err(LifecycleError::SchemaMissing { slug, schema }) if slug == "globex" && schema == "globex")
}

#[tokio::test]
async fn run_in_the_schema_mode_reports_per_tenant_and_one_failure_stops_no_other() -> TestResult {
    let t = Tenants::schema().await;
    let a = t
        .lifecycle
        .create(&NewTenant::new(slug("tenant-a")))
        .await?;
    t.lifecycle
        .create(&NewTenant::new(slug("tenant-b")))
        .await?;
    // Names resolve to each tenant's schema; the policy refuses tenant-a's id in tenant-b.
    let sql = format!(
        "INSERT INTO projects (account_id, name) VALUES ({}, 'fixed'), ({}, 'again')",
        a.id, a.id
    );
    let report = t.lifecycle.run(&SchemaSelector::All, &sql).await?;
    assert_eq!(
        report.tenants[0].outcome,
        RunOutcome::Done { rows: 2 },
        "{report}"
    );
    assert!(
        matches!(report.tenants[1].outcome, RunOutcome::Failed { .. }),
        "{report}"
    );
    assert!(report.has_failures());
    assert_eq!(t.rows("tenant_a", "projects").await, 2);
    assert_eq!(t.rows("tenant_b", "projects").await, 0);

    let counted = t
        .lifecycle
        .run(&"tenant-b,tenant-a".parse()?, "SELECT name FROM projects")
        .await?;
    assert_eq!(
        counted.to_string(),
        "tenant-a: ok (2 rows)\ntenant-b: ok (0 rows)\ntenants: 2 ok, 0 failed",
        "by slug, as rls-migrate orders schemas"
    );
    let unknown = t
        .lifecycle
        .run(&"tenant-a,initech".parse()?, "DELETE FROM projects")
        .await;
    assert!(
        matches!(&unknown, Err(LifecycleError::Migrate(MigrateError::NoSchemaMatches { selector })) if selector == "initech"),
        "{unknown:?}"
    );
    assert_eq!(t.rows("tenant_a", "projects").await, 2, "nothing ran");
    Ok(())
}

#[tokio::test]
async fn in_the_rls_mode_create_writes_a_registry_row_and_drop_only_that_tenants_rows() -> TestResult
{
    let t = Tenants::rls().await;
    let before_schemas: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace")
        .fetch_one(&t.admin)
        .await?;
    let a = t
        .lifecycle
        .create(&NewTenant::new(slug("tenant-a")).name("A"))
        .await?;
    let b = t
        .lifecycle
        .create(&NewTenant::new(slug("tenant-b")))
        .await?;
    assert_eq!(a.schema, None);
    let after_schemas: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace")
        .fetch_one(&t.admin)
        .await?;
    assert_eq!(before_schemas, after_schemas, "no schema in the RLS mode");
    let name: String = sqlx::query_scalar("SELECT name FROM app.accounts WHERE slug = 'tenant-a'")
        .fetch_one(&t.admin)
        .await?;
    assert_eq!(name, "A");

    // run: each tenant's own transaction; the tenant column comes from the context.
    let sql = "INSERT INTO app.projects (account_id, name)
               VALUES (current_setting('app.tenant_id')::bigint, 'fixed')";
    let report = t.lifecycle.run(&SchemaSelector::All, sql).await?;
    assert!(!report.has_failures(), "{report}");
    let pool = t.runtime_pool().await;
    let mut tx = pool.begin(&b.scope()).await?;
    let seen: Vec<i64> = sqlx::query_scalar("SELECT account_id FROM app.projects")
        .fetch_all(&mut *tx)
        .await?;
    assert_eq!(
        seen,
        [b.id.as_i64().expect("bigint")],
        "tenant-b sees its row, not tenant-a's"
    );
    tx.commit().await?;

    let plan = t.lifecycle.drop_tenant(&slug("tenant-a")).await?;
    assert_eq!(
        plan.tables,
        ["app.users", "app.projects", "app.tasks", "app.subtasks"]
    );
    let left: Vec<i64> = sqlx::query_scalar("SELECT account_id FROM app.projects")
        .fetch_all(&t.admin)
        .await?;
    assert_eq!(
        left,
        [b.id.as_i64().expect("bigint")],
        "tenant-b's rows stay"
    );
    assert_eq!(t.lifecycle.list().await?, [b]);
    Ok(())
}

/// Every ACL in `schema` (the schema's, its tables', sequences' and columns'; the owner's
/// default for none), as text: what the grants made of it.
async fn acls(t: &Tenants, schema: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT format('%s %s %s', c.relname, a.attname,
                  coalesce(a.attacl, c.relacl, acldefault('r', c.relowner)))
           FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND a.attacl IS NOT NULL
          WHERE n.nspname = $1
         UNION ALL SELECT format('schema %s', nspacl) FROM pg_namespace WHERE nspname = $1
          ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(&t.admin)
    .await
    .expect("acls")
}

/// The transaction ids that last wrote each of `schema`'s tables' catalog rows.
async fn catalog_writes(t: &Tenants, schema: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT c.relname::text, c.xmin::text FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(&t.admin)
    .await
    .expect("catalog rows")
}

#[tokio::test]
async fn grants_in_place_are_not_granted_again_and_a_new_column_gets_its_own() -> TestResult {
    let t = Tenants::schema().await;
    t.lifecycle.create(&NewTenant::new(slug("acme"))).await?;
    t.lifecycle.create(&NewTenant::new(slug("globex"))).await?;
    // A stray privilege: globex goes the full way (everything revoked, then granted).
    let runtime = t.db.runtime_role().as_str();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "GRANT TRUNCATE ON globex.users TO {runtime}"
    )))
    .execute(&t.admin)
    .await?;
    let report = migrate_schemas(&REFERENCE_TENANT_MIGRATIONS, &t.decl, &options(&t.db), 2).await?;
    assert!(!report.has_failures(), "{report}");
    assert_eq!(
        acls(&t, "acme").await,
        acls(&t, "globex").await,
        "a new schema's grants (only what was missing) are the full reset's"
    );

    let dir = tempfile::tempdir()?;
    for entry in std::fs::read_dir("migrations/tenant")? {
        let entry = entry?;
        std::fs::copy(entry.path(), dir.path().join(entry.file_name()))?;
    }
    std::fs::write(
        dir.path().join("29991231000001_priority.sql"),
        "ALTER TABLE subtasks ADD COLUMN priority integer",
    )?;
    let migrator = rls_tenancy::migrator_from_dir(dir.path()).await?;
    let before = catalog_writes(&t, "acme").await;
    let report = migrate_schemas(&migrator, &t.decl, &options(&t.db), 2).await?;
    assert!(!report.has_failures(), "{report}");
    let after = catalog_writes(&t, "acme").await;
    let rewritten: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a)
        .map(|(b, _)| b.0.as_str())
        .collect();
    assert_eq!(
        rewritten,
        ["subtasks"],
        "only the altered table's catalog row is written; the others' grants are not made again"
    );
    let (insert, update): (bool, bool) = sqlx::query_as(
        "SELECT has_column_privilege($1, 'acme.subtasks', 'priority', 'INSERT'),
                has_column_privilege($1, 'acme.subtasks', 'priority', 'UPDATE')",
    )
    .bind(runtime)
    .fetch_one(&t.admin)
    .await?;
    assert!(
        insert && update,
        "the new column is writable by the runtime role"
    );
    assert_eq!(acls(&t, "acme").await, acls(&t, "globex").await);
    Ok(())
}
