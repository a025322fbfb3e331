//! [`Primaries`]: where a [`crate::RoutingPool`]'s writes go. One URL: its pool. Several
//! hosts ([`crate::DatabaseHosts`]): the hosts not in recovery, round-robin (equivalent
//! frontends of one primary spread the load; of failover hosts only one is primary), and a
//! new primary found when the one in use goes away or is demoted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use super::failure::{Failed, classify};
use super::peer::{Peer, PeerKind, ReplicaStatus};
use super::{RouteError, RoutingOptions};
use crate::connect::DatabaseHosts;
use crate::db::{DbError, TenantPool, TenantPoolOptions, TenantTx, TxOptions};
use crate::tenant::TenantScope;

/// The longest pause between two rounds of looking for the primary.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The primary side of a routing pool.
#[derive(Debug)]
pub(crate) enum Primaries {
    /// One URL: every write on its pool, its errors as they are.
    One(TenantPool),
    /// Several hosts, one (or several equivalent frontends) primary.
    Hosts(Box<HostGroup>),
}

/// The hosts of a multi-host primary URL.
#[derive(Debug)]
pub(crate) struct HostGroup {
    hosts: Vec<Peer>,
    /// The pool [`crate::RoutingPool::primary`] hands out: opened on the first primary
    /// found, it opens its new connections on the primary of the moment.
    anchor: TenantPool,
    /// The host the anchor opens its connections on.
    anchor_host: Mutex<usize>,
    next: AtomicUsize,
    /// One task at a time looks for the primary; the others wait for its answer.
    discovery: tokio::sync::Mutex<()>,
    options: TenantPoolOptions,
    check_interval: Duration,
    wait: Duration,
}

impl Primaries {
    /// Opens the primary side: `hosts`' one pool, or each host's (the guard runs on each
    /// host it opens) and the one found primary.
    pub(crate) async fn open(
        hosts: &DatabaseHosts,
        routing: &RoutingOptions,
    ) -> Result<Self, RouteError> {
        let (options, check_interval, wait) =
            (&routing.pool, routing.check_interval, routing.failover_wait);
        if let [url] = hosts.urls() {
            return Ok(Self::One(TenantPool::connect(url, options.clone()).await?));
        }
        // Each host's pool fails fast: another host may be primary, or an equivalent
        // frontend of it. The anchor follows the primary and has no other host to try.
        let peer_options = options.clone().peer_timeout(routing.peer_timeout);
        let peers: Vec<Peer> = hosts
            .urls()
            .iter()
            .cloned()
            .map(|url| Peer::new(url, PeerKind::PrimaryHost))
            .collect();
        let checked = join_all(
            peers
                .iter()
                .map(|peer| peer.check(&peer_options, check_interval, true)),
        )
        .await;
        for (peer, result) in peers.iter().zip(checked) {
            result.map_err(|source| RouteError::PrimaryRefused {
                host: peer.url().redacted(),
                source,
            })?;
        }
        let deadline = Instant::now() + wait;
        if !find_primary(&peers, &peer_options, check_interval, deadline).await {
            return Err(RouteError::NoPrimary {
                hosts: describe(&peers),
            });
        }
        let found = peers
            .iter()
            .position(|p| p.usable_as_primary().is_some())
            .unwrap_or_default();
        let anchor = TenantPool::connect(peers[found].url(), options.clone()).await?;
        tracing::info!(primary = %peers[found].url().redacted(), hosts = peers.len(), "found the primary among the hosts");
        Ok(Self::Hosts(Box::new(HostGroup {
            hosts: peers,
            anchor,
            anchor_host: Mutex::new(found),
            next: AtomicUsize::new(0),
            discovery: tokio::sync::Mutex::new(()),
            options: peer_options,
            check_interval,
            wait,
        })))
    }

    /// Begins a transaction on the primary. With several hosts: on one found primary; a
    /// host whose `BEGIN` fails because it is gone, draining or in recovery is set aside
    /// and another tried (nothing of the transaction ran); when none is left, the hosts are
    /// checked again, with a growing pause, for at most the failover wait.
    ///
    /// # Errors
    /// As [`TenantPool::begin_with`]; [`DbError::Unavailable`] when no host is found
    /// primary within the failover wait.
    pub(crate) async fn begin(
        &self,
        scope: &TenantScope,
        options: TxOptions,
    ) -> Result<TenantTx, DbError> {
        match self {
            Self::One(pool) => pool.begin_with(scope, options).await,
            Self::Hosts(group) => group.begin(scope, options).await,
        }
    }

    /// The pool that follows the primary.
    pub(crate) fn anchor(&self) -> &TenantPool {
        match self {
            Self::One(pool) => pool,
            Self::Hosts(group) => &group.anchor,
        }
    }

    /// A pool on the primary of the moment, for reading its WAL position.
    pub(crate) fn current(&self) -> &TenantPool {
        match self {
            Self::One(pool) => pool,
            Self::Hosts(group) => group
                .hosts
                .iter()
                .find_map(Peer::usable_as_primary)
                .unwrap_or(&group.anchor),
        }
    }

    /// Whether a background task must watch the hosts.
    pub(crate) fn has_hosts(&self) -> bool {
        matches!(self, Self::Hosts(_))
    }

    /// Polls each host (checks those down once due) and makes the anchor follow.
    pub(crate) async fn tick(&self) {
        if let Self::Hosts(group) = self {
            for host in &group.hosts {
                host.tick(&group.options, group.check_interval).await;
            }
            group.follow();
        }
    }

    /// How each host stands (none for a single URL).
    pub(crate) fn status(&self) -> Vec<ReplicaStatus> {
        match self {
            Self::One(_) => Vec::new(),
            Self::Hosts(group) => group.hosts.iter().map(Peer::status).collect(),
        }
    }

    /// Closes every pool.
    pub(crate) async fn close(&self) {
        match self {
            Self::One(pool) => pool.close().await,
            Self::Hosts(group) => {
                group.anchor.close().await;
                for host in &group.hosts {
                    host.close().await;
                }
            }
        }
    }
}

impl HostGroup {
    async fn begin(&self, scope: &TenantScope, options: TxOptions) -> Result<TenantTx, DbError> {
        // READ WRITE said out loud: a host in recovery refuses the BEGIN itself.
        let options = if options.is_read_only() {
            options
        } else {
            options.read_write()
        };
        let deadline = Instant::now() + self.wait;
        loop {
            let mut busy = None;
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            for k in 0..self.hosts.len() {
                let host = &self.hosts[(start + k) % self.hosts.len()];
                let Some(pool) = host.usable_as_primary() else {
                    continue;
                };
                let err = match pool.begin_with(scope, options).await {
                    Ok(tx) => return Ok(tx),
                    Err(err) => err,
                };
                match classify(&err, pool) {
                    Failed::Server => host.mark_down(&err),
                    Failed::NotPrimary => host.mark_standby(),
                    Failed::Busy => busy = Some(err),
                    Failed::Request => return Err(err),
                }
            }
            if let Some(err) = busy {
                return Err(err);
            }
            if !self.discover(deadline).await {
                tracing::warn!(hosts = %describe(&self.hosts), "no host of the primary is up and out of recovery");
                return Err(DbError::Unavailable {
                    reason: "no host of the primary is up and out of recovery",
                });
            }
        }
    }

    /// Checks every host again until one is primary or `deadline` passes; whether one is.
    async fn discover(&self, deadline: Instant) -> bool {
        let Ok(_alone) = tokio::time::timeout_at(deadline, self.discovery.lock()).await else {
            return false;
        };
        let found = find_primary(&self.hosts, &self.options, self.check_interval, deadline).await;
        if found {
            self.follow();
        }
        found
    }

    /// Points the anchor's new connections at a host that is primary, if its own is not.
    fn follow(&self) {
        let mut anchored = self
            .anchor_host
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.hosts[*anchored].usable_as_primary().is_some() {
            return;
        }
        let Some(found) = self
            .hosts
            .iter()
            .position(|h| h.usable_as_primary().is_some())
        else {
            return;
        };
        match self.anchor.follow(self.hosts[found].url()) {
            Ok(()) => {
                tracing::info!(primary = %self.hosts[found].url().redacted(), "the primary moved: new connections go to this host");
                *anchored = found;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot point the primary's pool at the new primary");
            }
        }
    }
}

/// Checks every host of `hosts` again, with a growing pause between rounds, until one is
/// primary (true) or `deadline` passes (false).
async fn find_primary(
    hosts: &[Peer],
    options: &TenantPoolOptions,
    check_interval: Duration,
    deadline: Instant,
) -> bool {
    let mut backoff = Duration::from_millis(50);
    loop {
        if hosts.iter().any(|h| h.usable_as_primary().is_some()) {
            return true;
        }
        let checked = join_all(
            hosts
                .iter()
                .map(|host| host.check(options, check_interval, true)),
        )
        .await;
        for (host, result) in hosts.iter().zip(checked) {
            if let Err(err) = result {
                tracing::error!(host = %host.url().redacted(), error = %err, "host of the primary refused: the guard found its role can get around row-level security; it is never used");
            }
        }
        if hosts.iter().any(|h| h.usable_as_primary().is_some()) {
            return true;
        }
        if Instant::now() + backoff >= deadline {
            return false;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Each host and how it stood, for a message.
fn describe(hosts: &[Peer]) -> String {
    hosts
        .iter()
        .map(Peer::describe)
        .collect::<Vec<_>>()
        .join(", ")
}
