//! The database strategy's foundation on two real servers: a tenant database provisioned
//! from the server's template, what the runtime role may reach there, seeding and the demo's
//! pages over both servers, and bad input refused in one line.

mod check;
mod http;
mod lifecycle;
mod live_copy;
mod migrate;
mod moving;
mod provision;
mod refused;
mod run;
mod seed;

use rls_tenancy::{
    DatabasePattern, REFERENCE_TENANT_MIGRATIONS, ScratchServers, SeedOptions, ServerSet,
    TenantLifecycle, connect, migrator_from_dir,
};
use sqlx::PgConnection;

/// The lifecycle over the bed's control database and `servers`.
pub async fn lifecycle(bed: &ScratchServers, servers: ServerSet) -> TenantLifecycle {
    TenantLifecycle::connect(
        bed.declaration().clone(),
        bed.migrate_options().expect("options"),
    )
    .await
    .expect("lifecycle")
    .servers(servers, DatabasePattern::default())
    .tenant_migrations(
        migrator_from_dir("migrations/tenant")
            .await
            .expect("tenant migrations"),
    )
}

/// `accounts` tenants of the small profile over `servers`, as `rls-seed --strategy database
/// --profile small` with the bed's tenant key.
pub fn seeding(bed: &ScratchServers, accounts: i64, servers: ServerSet) -> SeedOptions {
    SeedOptions::new(accounts)
        .profile("small")
        .jobs(2)
        .in_tenant_databases(
            servers,
            DatabasePattern::default(),
            &REFERENCE_TENANT_MIGRATIONS,
            bed.control().runtime_role().as_str(),
        )
        .tenant_key(bed.tenant_key().clone())
}

/// A superuser connection to `database` on server `on` of the bed.
pub async fn admin(bed: &ScratchServers, on: &str, database: &str) -> PgConnection {
    let url = bed.admin_url(on).expect("server").with_database(database);
    connect(&url).await.expect("superuser connection")
}

/// The databases the bed's deploy role owns on both servers, and the registry's rows.
pub async fn footprint(bed: &ScratchServers) -> (Vec<String>, i64) {
    let mut names = Vec::new();
    for on in ["one", "two"] {
        let mut su = admin(bed, on, "postgres").await;
        let owned: Vec<String> = sqlx::query_scalar(
            "SELECT d.datname::text FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
              WHERE r.rolname = $1 AND d.datname <> $2 AND d.datname NOT LIKE '%tenant_template' ORDER BY 1",
        )
        .bind(bed.control().deploy_role().as_str())
        .bind(bed.control().name().as_str())
        .fetch_all(&mut su)
        .await
        .expect("databases");
        names.extend(owned.into_iter().map(|d| format!("{on}/{d}")));
    }
    let mut control = admin(bed, "one", bed.control().name().as_str()).await;
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM app.accounts")
        .fetch_one(&mut control)
        .await
        .expect("registry");
    (names, rows)
}
