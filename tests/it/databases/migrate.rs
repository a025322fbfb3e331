//! `rls-migrate --strategy database`: every tenant database brought up to date in parallel,
//! one failing database reported while the others go on, a rerun resuming.

use rls_tenancy::{
    NewTenant, SchemaOutcome, ScratchServers, TenantSlug, migrate_databases, migrator_from_dir,
    select_databases,
};

use super::{admin, lifecycle};

#[tokio::test]
async fn one_failing_database_is_reported_and_the_others_are_migrated() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let tenants = lifecycle(&bed, bed.deploy_servers().clone()).await;
    let mut databases = Vec::new();
    for s in ["a", "b", "c", "d"] {
        let record = tenants
            .create(&NewTenant::new(s.parse::<TenantSlug>().expect("slug")))
            .await
            .expect("created");
        databases.push((
            record.server.expect("server"),
            record.database.expect("database"),
        ));
    }
    tenants.close().await;
    // b: a recorded migration that no longer matches its file (the run must refuse it);
    // c: a policy dropped by hand (the run must put it back).
    let (b_on, b_db) = &databases[1];
    sqlx::raw_sql("UPDATE app._rls_migrations SET checksum = '\\x00'")
        .execute(&mut admin(&bed, b_on, b_db).await)
        .await
        .expect("tamper");
    let (c_on, c_db) = &databases[2];
    sqlx::raw_sql("DROP POLICY tenant_isolation ON app.subtasks")
        .execute(&mut admin(&bed, c_on, c_db).await)
        .await
        .expect("drop policy");

    let migrator = migrator_from_dir("migrations/tenant")
        .await
        .expect("migrator");
    let options = bed.migrate_options().expect("options");
    let mut control = rls_tenancy::connect(bed.control().deploy_url())
        .await
        .expect("control");
    let selection = select_databases(&mut control, bed.declaration(), None)
        .await
        .expect("selection");
    assert_eq!(selection.len(), 4);
    let report = migrate_databases(
        &migrator,
        bed.declaration(),
        &options,
        bed.deploy_servers(),
        &selection,
        2,
        &|_| {},
    )
    .await;
    let outcome = |slug: &str| {
        report
            .databases
            .iter()
            .find(|d| d.tenant.slug == slug)
            .map(|d| d.outcome.clone())
            .expect("reported")
    };
    assert!(
        matches!(outcome("b"), SchemaOutcome::Failed { .. }),
        "{report}"
    );
    assert!(
        matches!(outcome("c"), SchemaOutcome::Migrated { .. }),
        "{report}"
    );
    assert_eq!(outcome("a"), SchemaOutcome::Current, "{report}");
    assert_eq!(outcome("d"), SchemaOutcome::Current, "{report}");
    assert!(report.has_failures());
    assert!(
        report
            .to_string()
            .ends_with("tenant databases: 1 migrated, 2 already current, 1 failed"),
        "{report}"
    );
    let restored: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'app' AND tablename = 'subtasks')",
    )
    .fetch_one(&mut admin(&bed, c_on, c_db).await)
    .await
    .expect("policy");
    assert!(restored);

    // A selector of one slug; an unknown slug is refused before anything runs.
    let only_b = select_databases(&mut control, bed.declaration(), Some(&["b".into()]))
        .await
        .expect("b");
    assert_eq!(only_b.len(), 1);
    let unknown = select_databases(&mut control, bed.declaration(), Some(&["zz".into()])).await;
    assert!(matches!(
        unknown,
        Err(rls_tenancy::MigrateError::NoTenantMatches { .. })
    ));

    // The binary, over the same databases: exit 1, a line per database, the control migrated.
    let deploy: Vec<String> = bed
        .deploy_servers()
        .iter()
        .map(|s| format!("{}={}", s.name(), s.url().expose_secret()))
        .collect();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rls-migrate"))
        .args([
            "--strategy",
            "database",
            "--jobs",
            "2",
            "--database-url",
            bed.control().deploy_url().expose_secret(),
        ])
        .args(["--runtime-role", bed.control().runtime_role().as_str()])
        .env("RLS_SERVERS", deploy.join(","))
        .env_remove("RLS_CONFIG")
        .output()
        .expect("rls-migrate runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("migrations: up to date"), "{stdout}");
    assert!(
        stdout.contains(&format!("b ({b_on}/{b_db}): FAILED")),
        "{stdout}"
    );
    assert!(
        stdout.contains("tenant databases: 0 migrated, 3 already current, 1 failed"),
        "{stdout}"
    );

    // Resumable: once b's record is repaired (a's checksum is the file's), a rerun finds
    // everything current.
    let (a_on, a_db) = &databases[0];
    let checksum: Vec<u8> = sqlx::query_scalar("SELECT checksum FROM app._rls_migrations")
        .fetch_one(&mut admin(&bed, a_on, a_db).await)
        .await
        .expect("a's checksum");
    sqlx::query("UPDATE app._rls_migrations SET checksum = $1")
        .bind(checksum)
        .execute(&mut admin(&bed, b_on, b_db).await)
        .await
        .expect("repair");
    let report = migrate_databases(
        &migrator,
        bed.declaration(),
        &options,
        bed.deploy_servers(),
        &selection,
        2,
        &|_| {},
    )
    .await;
    assert!(!report.has_failures(), "{report}");
}
