//! The embedded PostgreSQL used by the tests, the benchmarks and the demo: find or start a
//! server, and give each user a scratch database with roles of its own.

mod binaries;
mod cluster;
mod scratch;
mod server;

pub use cluster::LocalCluster;
pub use scratch::ScratchDatabase;
pub use server::AdminServer;
