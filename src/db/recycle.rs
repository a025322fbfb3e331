//! Connection recycling under the schema strategy: a server connection keeps every relation
//! it has opened in its relation cache for life, so one that serves many tenant schemas grows
//! with them (measured in BENCHMARKS.md). The pool counts the distinct tenants each connection
//! has served and closes it on release once it passes [`TenantPoolOptions::recycle_after`];
//! the pool opens a fresh one when it needs it.
//!
//! Connections are told apart by their server process id, which the release check's round
//! trip returns at no extra cost. A process id can be reused by a later connection: an entry
//! is forgotten after [`FORGET_AFTER`] unused, and a reused id at worst recycles a connection
//! early.
//!
//! [`TenantPoolOptions::recycle_after`]: super::TenantPoolOptions::recycle_after

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moka::sync::Cache;

use crate::tenant::TenantId;

/// How long the tenants of a connection not seen since are remembered: longer than sqlx's
/// default idle timeout (10 minutes), after which an idle connection is closed anyway.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);

/// The most connections tracked at once.
const MAX_TRACKED: u64 = 10_000;

/// Which tenants each server connection has served.
#[derive(Debug)]
pub(crate) struct Recycler {
    limit: usize,
    served: Cache<i32, Arc<Mutex<HashSet<TenantId>>>>,
}

impl Recycler {
    /// Recycles a connection once it has served more than `limit` distinct tenants.
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            served: Cache::builder()
                .max_capacity(MAX_TRACKED)
                .time_to_idle(FORGET_AFTER)
                .build(),
        }
    }

    /// Notes that the connection of server process `pid` served `tenant`; `true` when it has
    /// now served more than the limit and is to be closed (it is forgotten then).
    pub(crate) fn served(&self, pid: i32, tenant: TenantId) -> bool {
        let tenants = self.served.get_with(pid, Arc::default);
        let count = {
            let mut tenants = tenants
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            tenants.insert(tenant);
            tenants.len()
        };
        let recycle = count > self.limit;
        if recycle {
            self.served.invalidate(&pid);
        }
        recycle
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_recycled_once_it_passes_the_limit_of_distinct_tenants() {
        let recycler = Recycler::new(2);
        let [a, b, c] = [1, 2, 3].map(|n| TenantId::new(n).expect("id"));
        assert!(!recycler.served(10, a));
        assert!(
            !recycler.served(10, a),
            "the same tenant again is no new one"
        );
        assert!(!recycler.served(10, b));
        assert!(
            !recycler.served(11, c),
            "another connection counts on its own"
        );
        assert!(
            recycler.served(10, c),
            "a third distinct tenant passes the limit of 2"
        );
        assert!(
            !recycler.served(10, c),
            "a new connection with that pid starts afresh"
        );
    }
}
