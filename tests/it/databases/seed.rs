//! `rls-seed --strategy database` on two real servers: tenants spread by the documented
//! rule, each in its own database with exactly its own rows, the same shape and counts as
//! the RLS seed, reruns refused or resumed as in the other strategies.

use rls_tenancy::{
    ScratchDatabase, ScratchServers, SeedError, SeedOptions, ServerSet, seed, seed_placement,
};

use super::{admin, seeding};

/// The registry's `(slug, id, server, database)`, by slug.
async fn registry(bed: &ScratchServers) -> Vec<(String, i64, String, String)> {
    let mut control = admin(bed, "one", bed.control().name().as_str()).await;
    sqlx::query_as(
        "SELECT slug::text, id, server_name::text, database_name::text FROM app.accounts ORDER BY slug",
    )
    .fetch_all(&mut control)
    .await
    .expect("registry")
}

#[tokio::test]
async fn seeding_spreads_tenants_round_robin_each_whole_in_its_own_database() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let report = seed(
        bed.control().deploy_url(),
        &seeding(&bed, 5, bed.deploy_servers().clone()),
    )
    .await
    .expect("seeded");
    assert_eq!(report.accounts, 5);

    let rows = registry(&bed).await;
    let placed: Vec<(&str, &str)> = rows
        .iter()
        .map(|(slug, _, server, _)| (slug.as_str(), server.as_str()))
        .collect();
    assert_eq!(
        placed,
        [
            ("tenant-0", "one"),
            ("tenant-1", "two"),
            ("tenant-2", "one"),
            ("tenant-3", "two"),
            ("tenant-4", "one"),
        ]
    );
    // Created in index order: ids ascend with the index.
    let ids: Vec<i64> = rows.iter().map(|(_, id, _, _)| *id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    // Each database holds its tenant's rows and nobody else's; the counts add up to the
    // report's.
    let mut subtasks = 0;
    for (slug, id, server, database) in &rows {
        let mut su = admin(&bed, server, database).await;
        let (own, foreign): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE account_id = $1), count(*) FILTER (WHERE account_id <> $1)
               FROM app.subtasks",
        )
        .bind(id)
        .fetch_one(&mut su)
        .await
        .expect("counts");
        assert!(own > 0, "{slug} has no subtasks");
        assert_eq!(foreign, 0, "{slug}'s database holds another tenant's rows");
        subtasks += own as u64;
        // The runtime role reads nothing there without the tenant context.
        let url = bed
            .runtime_servers()
            .server(&server.parse().expect("name"))
            .expect("server")
            .url()
            .with_database(database);
        let mut bare = rls_tenancy::connect(&url).await.expect("runtime connects");
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM app.subtasks")
            .fetch_one(&mut bare)
            .await
            .expect("count");
        assert_eq!(seen, 0, "{slug}: rows visible without the tenant context");
    }
    assert_eq!(subtasks, report.subtasks);

    // The same options under the RLS strategy give the same shape and closing counts.
    let shared = ScratchDatabase::migrated().await.expect("scratch database");
    let rls = seed(
        shared.deploy_url(),
        &SeedOptions::new(5).profile("small").jobs(2),
    )
    .await
    .expect("RLS seed");
    assert_eq!(
        (
            rls.accounts,
            rls.users,
            rls.projects,
            rls.tasks,
            rls.subtasks
        ),
        (
            report.accounts,
            report.users,
            report.projects,
            report.tasks,
            report.subtasks
        )
    );

    // A rerun is refused as in the other strategies; --resume adds only what is missing.
    let err = seed(
        bed.control().deploy_url(),
        &seeding(&bed, 5, bed.deploy_servers().clone()),
    )
    .await
    .expect_err("refused");
    assert!(
        matches!(err, SeedError::Conflict { existing: 5, .. }),
        "{err}"
    );
    let more = seed(
        bed.control().deploy_url(),
        &seeding(&bed, 6, bed.deploy_servers().clone()).resume(true),
    )
    .await
    .expect("resumed");
    assert_eq!((more.accounts, more.already_present), (1, 5));
    let rows = registry(&bed).await;
    assert_eq!(rows.len(), 6);
    assert_eq!(rows[5].0, "tenant-5");
    assert_eq!(rows[5].2, "two", "tenant-5 goes where the rule puts it");
}

#[tokio::test]
async fn resuming_with_another_server_order_is_refused_as_a_mismatch() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    seed(
        bed.control().deploy_url(),
        &seeding(&bed, 2, bed.deploy_servers().clone()),
    )
    .await
    .expect("seeded");
    let reversed =
        ServerSet::new(bed.deploy_servers().iter().rev().cloned().collect()).expect("servers");
    let err = seed(
        bed.control().deploy_url(),
        &seeding(&bed, 3, reversed).resume(true),
    )
    .await
    .expect_err("refused");
    assert!(
        matches!(&err, SeedError::Mismatch { slug, .. } if slug == "tenant-0"),
        "{err}"
    );
    assert!(err.is_usage());
    assert_eq!(registry(&bed).await.len(), 2, "nothing was added");
}

#[test]
fn placement_is_round_robin_and_skips_full_servers() {
    let servers = ServerSet::parse_config(
        r#"
        [[server]]
        name = "a"
        url = "postgres://u@h1/postgres"
        [[server]]
        name = "b"
        url = "postgres://u@h2/postgres"
        max_tenants = 1
        [[server]]
        name = "c"
        url = "postgres://u@h3/postgres"
        "#,
    )
    .expect("servers");
    let names = |n| -> Vec<String> {
        seed_placement(n, &servers)
            .expect("placement")
            .iter()
            .map(|s| s.name().to_string())
            .collect()
    };
    assert_eq!(names(6), ["a", "b", "c", "a", "c", "c"]);
    assert_eq!(names(6), names(6), "the same input, the same placement");
    assert_eq!(
        names(3)[..],
        names(6)[..3],
        "a longer run keeps the first ones"
    );
}

#[tokio::test]
async fn the_templates_the_seed_makes_get_the_control_databases_tenant_context() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    // The deployment is migrated with the plain context (no key): the seed's templates, and
    // so its tenants' databases, must be plain too, or the application's plain pool would
    // meet a signed database.
    let plain = rls_tenancy::MigrateOptions::new(
        bed.control().deploy_url().clone(),
        bed.control().runtime_role().as_str(),
    )
    .expect("options")
    .tenant_context(rls_tenancy::TenantContextMode::Plain);
    rls_tenancy::migrate_with(
        &rls_tenancy::REFERENCE_MIGRATIONS,
        bed.declaration(),
        &plain,
    )
    .await
    .expect("migrated plain");
    seed(
        bed.control().deploy_url(),
        &seeding(&bed, 2, bed.deploy_servers().clone()),
    )
    .await
    .expect("seeded");
    let rows = registry(&bed).await;
    assert_eq!(rows.len(), 2);
    for (slug, _, server, database) in &rows {
        let mut su = admin(&bed, server, database).await;
        let signed: bool = sqlx::query_scalar(
            "SELECT to_regprocedure('rls_tenancy.enter(text,text,text,bigint,bigint,text)') IS NOT NULL",
        )
        .fetch_one(&mut su)
        .await
        .expect("context");
        assert!(!signed, "{slug}'s database has the signed context");
        let plain_policy: bool = sqlx::query_scalar(
            "SELECT qual NOT LIKE '%rls_tenancy.tenant(%' FROM pg_policies
              WHERE schemaname = 'app' AND tablename = 'subtasks'",
        )
        .fetch_one(&mut su)
        .await
        .expect("policy");
        assert!(plain_policy, "{slug}'s policies call the signed check");
    }
}
