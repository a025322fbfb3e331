//! A peer's pool fails fast. A peer is one of several servers that can serve the same
//! transaction (a replica, or a host of the primary, of a [`crate::RoutingPool`]): waiting on
//! one that cannot answer only delays the request the route step would give to another.
//!
//! - A new connection not had within the peer timeout while the pool had room to open one:
//!   a server that refuses connections fails the acquire at once (`health::acquire`'s
//!   patience), instead of at the acquire timeout.
//! - A `BEGIN` not answered within the peer timeout (a paused pgbouncer queues it, a hung
//!   server never answers) is given up: its connection is closed, and the failure reads as
//!   a lost connection, so the route step marks the peer down and tries another. Nothing of
//!   the transaction had run.

use std::future::Future;

use super::TenantPool;
use crate::db::TenantTx;
use crate::db::tx::BeginFailed;

impl TenantPool {
    /// `begin`, given up on a peer's pool when not answered within the peer timeout (the
    /// dropped `BEGIN` closes its connection).
    pub(super) async fn answered_in_time(
        &self,
        begin: impl Future<Output = Result<TenantTx, BeginFailed>>,
    ) -> Result<TenantTx, BeginFailed> {
        let Some(limit) = self.peer_timeout else {
            return begin.await;
        };
        tokio::time::timeout(limit, begin).await.unwrap_or_else(|_| {
            Err(BeginFailed {
                error: sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the server did not answer BEGIN within the peer timeout ({limit:?}): paused or hung; another server is tried"),
                )),
                // Not begun again on this pool: the route step tries another server.
                connection_lost: false,
            })
        })
    }
}
