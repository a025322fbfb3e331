//! The embedded PostgreSQL used by the tests, the benchmarks and the demo (feature
//! `testing`): find or start a server, and give each user a scratch database with roles of
//! its own, migrated with this repository's reference schema when asked.

mod binaries;
mod cluster;
mod error;
mod replication;
mod scratch;
mod server;
mod servers;

pub use cluster::LocalCluster;
pub use error::HarnessError;
pub(crate) use error::Result;
pub use replication::ReplicatedCluster;
pub use scratch::{REFERENCE_MIGRATIONS, REFERENCE_TENANT_MIGRATIONS, ScratchDatabase};
pub use server::AdminServer;
pub use servers::ScratchServers;
