//! Shared by the replica benchmarks (included with `#[path]`): a primary and two streaming
//! standbys on loopback with a migrated scratch database.

use std::time::Duration;

use rls_tenancy::{ReplicatedCluster, ScratchDatabase};

/// A primary and two standbys, a migrated scratch database on the primary with `fixture`
/// (SQL, run as its superuser) applied, replayed by both standbys.
pub(crate) async fn replicated_with(fixture: &'static str) -> (ReplicatedCluster, ScratchDatabase) {
    let cluster = ReplicatedCluster::start(&[None, None])
        .await
        .expect("replicated cluster");
    let db = ScratchDatabase::migrated_on(cluster.primary().clone())
        .await
        .expect("scratch database");
    let admin = db.admin_pool().await.expect("admin");
    sqlx::raw_sql(fixture)
        .execute(&admin)
        .await
        .expect("fixture");
    for standby in cluster.standbys() {
        cluster
            .wait_replayed(standby, Duration::from_secs(120))
            .await
            .expect("replayed");
    }
    (cluster, db)
}
