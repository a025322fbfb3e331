//! The route step: which server a tenant transaction runs on. Between placement (where a
//! tenant's rows live) and the tenant transaction ([`crate::TenantPool`] begins it), it
//! picks the pool: the primary for writes, a replica for reads, a healthy peer.
//!
//! - [`RoutingPool`] wraps a primary [`crate::TenantPool`] and replica pools:
//!   [`RoutingPool::begin`] writes on the primary, [`RoutingPool::read`] reads on a replica
//!   round-robin; replicas that lag more than [`RoutingOptions::max_replica_lag`] or whose
//!   connections fail are skipped, and checked again in the background.
//! - The primary may be several hosts ([`crate::DatabaseHosts`], libpq's multi-host URL):
//!   writes go to the one not in recovery (spread over several if they all are, as
//!   equivalent frontends of one primary), and follow a promotion.
//! - [`use_primary`] sends a task's reads to the primary, as does an open write
//!   transaction.
//! - [`Lsn`]: a WAL position, how far a replica has replayed.

mod error;
mod failure;
mod lsn;
mod options;
mod peer;
mod pool;
mod primaries;
mod primary;
mod writes;

pub use error::RouteError;
pub use lsn::{Lsn, LsnError};
pub use options::RoutingOptions;
pub use peer::ReplicaStatus;
pub use pool::{RoutedTx, RoutingPool, ServedBy};
pub use primary::{read_at_least, use_primary};
