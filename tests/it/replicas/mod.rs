//! Replica routing on real streaming replication: a primary and standbys on loopback
//! (`rls_tenancy::ReplicatedCluster`), shared by the tests that do not stop a server.

mod failover;
mod peers;
mod pinning;
mod requests;
mod routing;
mod signed;

use std::time::Duration;

use rls_tenancy::{
    LocalCluster, ReplicatedCluster, RoutingOptions, RoutingPool, ScratchDatabase,
    TenancyDeclaration, TenantPoolOptions,
};
use sqlx::PgPool;
use tokio::sync::OnceCell;

use crate::http::Site;
use crate::support::TwoTenants;

/// How long the delayed standby waits before replaying a commit.
pub const APPLY_DELAY: Duration = Duration::from_secs(3);

/// Two standbys replaying at once and one replaying [`APPLY_DELAY`] late.
pub struct Shared {
    pub cluster: ReplicatedCluster,
}

impl Shared {
    pub fn fast(&self) -> [&LocalCluster; 2] {
        [&self.cluster.standbys()[0], &self.cluster.standbys()[1]]
    }

    pub fn delayed(&self) -> &LocalCluster {
        &self.cluster.standbys()[2]
    }
}

static SHARED: OnceCell<Shared> = OnceCell::const_new();

/// The replicated cluster the routing tests share, started on first use.
pub async fn shared() -> &'static Shared {
    SHARED
        .get_or_init(|| async {
            let cluster = ReplicatedCluster::start(&[None, None, Some(APPLY_DELAY)])
                .await
                .expect("replicated cluster");
            Shared { cluster }
        })
        .await
}

/// Two tenants on `cluster`'s primary, replayed by each of `standbys`.
pub async fn two_tenants(cluster: &ReplicatedCluster, standbys: &[&LocalCluster]) -> TwoTenants {
    let fixture = TwoTenants::on(cluster.primary().clone()).await;
    for standby in standbys {
        cluster
            .wait_replayed(standby, Duration::from_secs(60))
            .await
            .expect("the standby replays the fixture");
    }
    fixture
}

/// Routing options for the reference schema with `replicas` (the runtime role on each).
pub fn options(fixture: &TwoTenants, replicas: &[&LocalCluster]) -> RoutingOptions {
    replicas.iter().fold(
        RoutingOptions::new(TenantPoolOptions::new(
            TenancyDeclaration::reference().expect("declaration"),
        ))
        .poll_interval(Duration::from_millis(50)),
        |options, standby| {
            options.replica(
                standby
                    .url_for(fixture.db.runtime_url())
                    .expect("standby url"),
            )
        },
    )
}

/// A routing pool over the fixture's primary and `options`' replicas.
pub async fn routing_pool(fixture: &TwoTenants, options: RoutingOptions) -> RoutingPool {
    RoutingPool::connect(fixture.db.runtime_url(), options)
        .await
        .expect("routing pool")
}

/// The superuser on `standby`'s copy of the fixture's database.
pub async fn admin_on(fixture: &TwoTenants, standby: &LocalCluster) -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(
            standby
                .url_for(&fixture.db.admin_url())
                .expect("url")
                .connect_options()
                .expect("options"),
        )
        .await
        .expect("admin on the standby")
}

/// The HTTP tests' site on the shared primary, once `standby` has replayed it, and a routing
/// pool with `standby` as its replica.
pub async fn site_with_replica(standby: &LocalCluster) -> (Site, RoutingPool) {
    let shared = shared().await;
    let db = ScratchDatabase::migrated_on(shared.cluster.primary().clone())
        .await
        .expect("scratch database");
    let site = Site::on(db).await;
    shared
        .cluster
        .wait_replayed(standby, Duration::from_secs(60))
        .await
        .expect("the standby replays the fixture");
    let routing = RoutingPool::connect(
        site.db.runtime_url(),
        RoutingOptions::new(TenantPoolOptions::new(
            TenancyDeclaration::reference().expect("declaration"),
        ))
        .replica(standby.url_for(site.db.runtime_url()).expect("url"))
        .poll_interval(Duration::from_millis(50)),
    )
    .await
    .expect("routing pool");
    (site, routing)
}
