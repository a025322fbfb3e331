//! The demo under `--strategy database`: each tenant in a database of its own, on one of
//! several servers, served through [`TenantPool::connect_servers`] with the same handlers.
//!
//! Embedded, it starts two local clusters (servers `one` and `two`), makes the control
//! database and the roles on both ([`ScratchServers::create_on`]), and seeds the demo's
//! tenants with rls-seed's library over both servers ([`SeedOptions::in_tenant_databases`]),
//! so a newcomer sees tenants on two servers.

use std::time::Duration;

use super::tenants::{self, seed_options};
use crate::connect::{DatabaseUrl, ServerSet};
use crate::db::{PoolSetOptions, TenantPool, TenantPoolOptions};
use crate::embedded::{AdminServer, REFERENCE_TENANT_MIGRATIONS, ScratchServers};
use crate::error::Result;
use crate::placement::DatabasePattern;
use crate::seed::seed_placement;
use crate::tenant::TenantSlug;

/// The control database's pool (the registry, read through its cache): its connections come
/// on top of the tenant databases' budget (`--max-connections`).
const CONTROL_CONNECTIONS: u32 = 4;

/// The embedded servers and the tenants seeded over them.
pub(super) struct Embedded {
    /// The control database and the roles on both servers; server `two` with them.
    pub(super) bed: ScratchServers,
    /// Server `one`, dropped after the bed.
    pub(super) first: AdminServer,
    /// Each seeded tenant and the server its database is on.
    pub(super) tenants: Vec<(TenantSlug, String)>,
}

/// Starts two local clusters, makes the control database and roles, and seeds the demo's
/// tenants over both servers.
pub(super) async fn start_embedded() -> Result<Embedded> {
    tracing::info!("no DATABASE_URL: starting two embedded PostgreSQL servers");
    let (first, second) = tokio::try_join!(AdminServer::start_local(), AdminServer::start_local())?;
    let bed = ScratchServers::create_on(first.clone(), second).await?;
    let servers = bed.deploy_servers();
    let seeding = seed_options()
        .in_tenant_databases(
            servers.clone(),
            DatabasePattern::default(),
            &REFERENCE_TENANT_MIGRATIONS,
            bed.control().runtime_role().as_str(),
        )
        .tenant_key(bed.tenant_key().clone());
    let slugs = tenants::seed_tenants(bed.control().deploy_url(), &seeding).await?;
    let placement = seed_placement(slugs.len() as u64, servers)?;
    let tenants = slugs
        .into_iter()
        .zip(placement)
        .map(|(slug, server)| (slug, server.name().to_string()))
        .collect();
    Ok(Embedded {
        bed,
        first,
        tenants,
    })
}

/// The tenant pool over `servers` (the runtime role's URLs), the registry in the control
/// database at `control`: at most `budget` connections to tenant databases in all (each
/// server's `max_connections` too, when configured), a request waiting `acquire_timeout`
/// for one before its 503.
pub(super) async fn connect(
    control: &DatabaseUrl,
    servers: &ServerSet,
    options: TenantPoolOptions,
    budget: u32,
    acquire_timeout: Duration,
) -> Result<TenantPool> {
    let servers = servers.clone().non_empty()?;
    let options = options.max_connections(CONTROL_CONNECTIONS).pool_set(
        PoolSetOptions::default()
            .max_connections(budget)
            .acquire_timeout(acquire_timeout),
    );
    Ok(TenantPool::connect_servers(control, &servers, options).await?)
}
