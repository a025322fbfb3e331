//! `rls-tenant run` under the database strategy: the SQL runs in each selected tenant's own
//! database, inside its tenant transaction, reported per tenant.

use rls_tenancy::{RunOutcome, ScratchServers, seed};

use super::{admin, lifecycle, seeding};

/// Seeds `tenant-0` (server one) and `tenant-1` (server two).
async fn two_tenants(bed: &ScratchServers) {
    let options = seeding(bed, 2, bed.deploy_servers().clone());
    seed(bed.control().deploy_url(), &options)
        .await
        .expect("seeded");
}

/// `(projects, projects with details 'fixed')` in `slug`'s database, as the superuser.
async fn fixed(bed: &ScratchServers, on: &str, slug: &str) -> (i64, i64) {
    let database = format!(
        "{}_tenant_{}",
        bed.control().name().as_str(),
        slug.replace('-', "_")
    );
    let mut su = admin(bed, on, &database).await;
    sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE details = 'fixed') FROM app.projects")
        .fetch_one(&mut su)
        .await
        .expect("counts")
}

#[tokio::test]
async fn run_changes_each_selected_tenant_database_in_its_own_tenant_transaction() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    two_tenants(&bed).await;
    let lifecycle = lifecycle(&bed, bed.deploy_servers().clone()).await;

    let report = lifecycle
        .run(
            &"tenant-1".parse().expect("selector"),
            "UPDATE app.projects SET details = 'fixed'",
        )
        .await
        .expect("run");
    assert_eq!(report.tenants.len(), 1);
    let (projects, done) = fixed(&bed, "two", "tenant-1").await;
    assert_eq!(
        report.tenants[0].outcome,
        RunOutcome::Done {
            rows: projects as u64
        }
    );
    assert_eq!(done, projects, "every project of tenant-1 was fixed");
    assert_eq!(
        fixed(&bed, "one", "tenant-0").await.1,
        0,
        "tenant-0 was not selected"
    );

    // A row for another tenant id, in each tenant's transaction: refused by the policy in
    // each database, reported per tenant, nothing written.
    let report = lifecycle
        .run(
            &"all".parse().expect("selector"),
            "INSERT INTO app.projects (account_id, name) VALUES (999999, 'foreign')",
        )
        .await
        .expect("run");
    assert!(report.has_failures());
    assert_eq!(report.tenants.len(), 2);
    assert!(
        report
            .tenants
            .iter()
            .all(|t| matches!(t.outcome, RunOutcome::Failed { .. })),
        "{report}"
    );
    let mut su = admin(
        &bed,
        "one",
        &format!("{}_tenant_tenant_0", bed.control().name().as_str()),
    )
    .await;
    let foreign: i64 =
        sqlx::query_scalar("SELECT count(*) FROM app.projects WHERE account_id = 999999")
            .fetch_one(&mut su)
            .await
            .expect("count");
    assert_eq!(foreign, 0);
    lifecycle.close().await;
}
