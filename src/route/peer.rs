//! [`Peer`]: one server (a replica, or a host of the primary), its pool (opened once the
//! guard accepted it), whether it is up, whether it is in recovery, and how far it has
//! replayed.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Row};

use super::Lsn;
use crate::connect::{DatabaseUrl, RedactedUrl};
use crate::db::{DbError, TenantPool, TenantPoolOptions};

/// The longest one check of a peer (open, connect, poll) may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What a replica reports about itself: recovery, lag in milliseconds (NULL: unknown), the
/// position replayed (a server not in recovery has everything it wrote).
const POLL: &str = "SELECT pg_is_in_recovery(), \
     CASE WHEN NOT pg_is_in_recovery() THEN 0 \
          WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0 \
          ELSE greatest(0, (extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000)::bigint) END, \
     (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text";

/// Lag not known (never polled, or the replica has replayed no transaction yet).
const UNKNOWN: u64 = u64::MAX;

/// What the last poll said of recovery: not polled yet, not in recovery, in recovery.
const ROLE_UNKNOWN: u8 = 0;
const ROLE_PRIMARY: u8 = 1;
const ROLE_STANDBY: u8 = 2;

/// What a peer is for, which decides what is worth a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerKind {
    /// A replica (`--replica-url`): a server not in recovery is a misconfiguration.
    Replica,
    /// A host of the primary: in recovery is expected (a standby that may be promoted).
    PrimaryHost,
}

/// One server.
#[derive(Debug)]
pub(crate) struct Peer {
    url: DatabaseUrl,
    kind: PeerKind,
    role: AtomicU8,
    pool: OnceLock<TenantPool>,
    down_since: Mutex<Option<Instant>>,
    lag_ms: AtomicU64,
    replayed: AtomicU64,
    warned_primary: AtomicBool,
    /// The poller's own connection, outside every pool.
    monitor: tokio::sync::Mutex<Option<PgConnection>>,
}

/// Why a peer could not be checked.
#[derive(Debug)]
enum CheckFailed {
    /// Unreachable, or lost: the peer is down.
    Down(String),
    /// The guard refused the role on it: never used.
    Refused(DbError),
}

/// A server of a [`crate::RoutingPool`] (a replica, or a host of the primary) as the pool
/// sees it, for readiness reports and tests.
///
/// ```no_run
/// # fn demo(pool: rls_tenancy::RoutingPool) {
/// for replica in pool.replica_status() {
///     println!("{} up={} lag={:?}", replica.url, replica.up, replica.lag);
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaStatus {
    /// Its URL, without the password.
    pub url: RedactedUrl,
    /// Whether it serves reads (opened, answering, not marked down).
    pub up: bool,
    /// Its lag behind the primary when last polled; `None` if unknown.
    pub lag: Option<Duration>,
    /// The WAL position it had replayed when last polled.
    pub replayed: Option<Lsn>,
    /// Whether it was in recovery (a standby) when last polled; `None` if never polled.
    pub in_recovery: Option<bool>,
}

impl Peer {
    /// A peer not opened yet: down until its first check succeeds.
    pub(crate) fn new(url: DatabaseUrl, kind: PeerKind) -> Self {
        Self {
            url,
            kind,
            role: AtomicU8::new(ROLE_UNKNOWN),
            pool: OnceLock::new(),
            down_since: Mutex::new(Some(Instant::now())),
            lag_ms: AtomicU64::new(UNKNOWN),
            replayed: AtomicU64::new(0),
            warned_primary: AtomicBool::new(false),
            monitor: tokio::sync::Mutex::new(None),
        }
    }

    /// Its pool if it may serve a read now: up, lagging no more than `max_lag`, and, for a
    /// pinned read, replayed past `at_least`.
    pub(crate) fn usable(
        &self,
        max_lag: Option<Duration>,
        at_least: Option<Lsn>,
    ) -> Option<&TenantPool> {
        if self.is_down() {
            return None;
        }
        if let Some(max) = max_lag {
            let lag = self.lag_ms.load(Ordering::Acquire);
            if lag == UNKNOWN || u128::from(lag) > max.as_millis() {
                return None;
            }
        }
        if let Some(lsn) = at_least
            && self.replayed.load(Ordering::Acquire) < lsn.as_u64()
        {
            return None;
        }
        self.pool.get()
    }

    /// Its pool if it may take writes now: up, and not in recovery when last polled.
    pub(crate) fn usable_as_primary(&self) -> Option<&TenantPool> {
        if self.is_down() || self.role.load(Ordering::Acquire) != ROLE_PRIMARY {
            return None;
        }
        self.pool.get()
    }

    /// Its URL.
    pub(crate) fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// A read-write `BEGIN` found it in recovery: no writes go to it until a poll finds it
    /// promoted.
    pub(crate) fn mark_standby(&self) {
        if self.role.swap(ROLE_STANDBY, Ordering::AcqRel) == ROLE_PRIMARY {
            tracing::warn!(host = %self.url.redacted(), "this host of the primary is in recovery now (demoted): writes go to the host that is primary");
        }
    }

    /// What the last poll found, in words, for an error that says why no host took writes.
    pub(crate) fn describe(&self) -> String {
        let state = if self.is_down() {
            "down"
        } else {
            match self.role.load(Ordering::Acquire) {
                ROLE_PRIMARY => "primary",
                ROLE_STANDBY => "in recovery",
                _ => "not checked",
            }
        };
        format!("{} ({state})", self.url.redacted())
    }

    fn is_down(&self) -> bool {
        self.down_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// A connection to it failed: nothing goes to it until a check `check_interval` later
    /// finds it answering (a failed check starts the interval again).
    pub(crate) fn mark_down(&self, why: &dyn std::fmt::Display) {
        let mut down = self
            .down_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if down.replace(Instant::now()).is_none() {
            let what = match self.kind {
                PeerKind::Replica => {
                    "replica marked down: reads go to the other replicas or the primary until it answers a check"
                }
                PeerKind::PrimaryHost => {
                    "host of the primary marked down: writes go to another host that is primary until it answers a check"
                }
            };
            tracing::warn!(server = %self.url.redacted(), error = %why, "{what}");
        }
    }

    fn mark_up(&self) {
        let mut down = self
            .down_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if down.take().is_some() {
            tracing::info!(server = %self.url.redacted(), "server is up again: it answered a check");
        }
    }

    /// Whether a peer down since a moment is due for a check (`force`: whatever the time).
    fn due(&self, check_interval: Duration, force: bool) -> bool {
        match *self
            .down_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
        {
            None => true,
            Some(since) => force || since.elapsed() >= check_interval,
        }
    }

    /// Checks the peer: opens its pool the first time (the guard runs on it), polls its
    /// recovery state, lag and replay position, and marks it up or down. A peer marked down
    /// is only checked once `check_interval` has passed since (or when `force`d).
    ///
    /// # Errors
    /// The guard's refusal of the peer's role ([`DbError::Guard`]); unreachable peers are
    /// not errors (they are marked down, with a warning).
    pub(crate) async fn check(
        &self,
        options: &TenantPoolOptions,
        check_interval: Duration,
        force: bool,
    ) -> Result<(), DbError> {
        if !self.due(check_interval, force) {
            return Ok(());
        }
        let checked = tokio::time::timeout(CHECK_TIMEOUT, self.check_now(options))
            .await
            .unwrap_or_else(|_| Err(CheckFailed::Down("no answer within 2 s".into())));
        match checked {
            Ok(()) => {
                self.mark_up();
                Ok(())
            }
            Err(CheckFailed::Down(why)) => {
                self.mark_down(&why);
                Ok(())
            }
            Err(CheckFailed::Refused(err)) => {
                self.mark_down(&"the guard refused its role");
                Err(err)
            }
        }
    }

    async fn check_now(&self, options: &TenantPoolOptions) -> Result<(), CheckFailed> {
        if self.is_down() {
            // A peer comes back when it takes a new connection (a draining one still
            // answers on the connections it has).
            *self.monitor.lock().await = None;
        }
        self.poll()
            .await
            .map_err(|err| CheckFailed::Down(err.to_string()))?;
        if self.pool.get().is_none() {
            let pool = TenantPool::connect(&self.url, options.clone())
                .await
                .map_err(|err| match err {
                    DbError::Guard(_) => CheckFailed::Refused(err),
                    other => CheckFailed::Down(other.to_string()),
                })?;
            // Only this task opens pools; a lost race would only drop a spare pool.
            let _ = self.pool.set(pool);
        }
        if let Some(pool) = self.pool.get() {
            // Ends an outage the pool itself noted, so requests are not refused at once.
            pool.ping(CHECK_TIMEOUT)
                .await
                .map_err(|err| CheckFailed::Down(err.to_string()))?;
        }
        Ok(())
    }

    /// Reads recovery state, lag and replay position on the monitor connection.
    async fn poll(&self) -> Result<(), sqlx::Error> {
        let mut monitor = self.monitor.lock().await;
        if monitor.is_none() {
            let options = self
                .url
                .connect_options()
                .map_err(|e| sqlx::Error::Configuration(e.into()))?;
            *monitor = Some(PgConnection::connect_with(&options).await?);
        }
        let Some(conn) = monitor.as_mut() else {
            return Ok(());
        };
        // The simple protocol: behind a transaction-mode pgbouncer, a statement prepared on
        // one server connection is not there on the next.
        let polled = sqlx::raw_sql(POLL).fetch_one(&mut *conn).await.and_then(
            |row| -> Result<(bool, Option<i64>, Option<String>), sqlx::Error> {
                Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?))
            },
        );
        let (in_recovery, lag_ms, replayed) = match polled {
            Ok(row) => row,
            Err(err) => {
                *monitor = None;
                return Err(err);
            }
        };
        self.role.store(
            if in_recovery {
                ROLE_STANDBY
            } else {
                ROLE_PRIMARY
            },
            Ordering::Release,
        );
        if self.kind == PeerKind::Replica
            && !in_recovery
            && !self.warned_primary.swap(true, Ordering::AcqRel)
        {
            tracing::warn!(replica = %self.url.redacted(), "this replica URL points at a server that is not in recovery (a primary): reads sent there are not replica reads; check --replica-url");
        }
        let lag = lag_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .unwrap_or(UNKNOWN);
        self.lag_ms.store(lag, Ordering::Release);
        if let Some(lsn) = replayed.and_then(|text| text.parse::<Lsn>().ok()) {
            self.replayed.store(lsn.as_u64(), Ordering::Release);
        }
        Ok(())
    }

    /// Polls an up peer; checks a down one when it is due.
    pub(crate) async fn tick(&self, options: &TenantPoolOptions, check_interval: Duration) {
        if let Err(err) = self.check(options, check_interval, false).await {
            tracing::error!(server = %self.url.redacted(), error = %err, "server refused: the guard found its role can get around row-level security; it is never used");
        }
    }

    /// How the peer stands now.
    pub(crate) fn status(&self) -> ReplicaStatus {
        let lag = self.lag_ms.load(Ordering::Acquire);
        let replayed = self.replayed.load(Ordering::Acquire);
        ReplicaStatus {
            url: self.url.redacted(),
            up: !self.is_down() && self.pool.get().is_some(),
            lag: (lag != UNKNOWN).then(|| Duration::from_millis(lag)),
            replayed: (replayed != 0).then(|| Lsn::from_u64(replayed)),
            in_recovery: match self.role.load(Ordering::Acquire) {
                ROLE_PRIMARY => Some(false),
                ROLE_STANDBY => Some(true),
                _ => None,
            },
        }
    }

    /// Closes its pool and monitor connection.
    pub(crate) async fn close(&self) {
        if let Some(pool) = self.pool.get() {
            pool.close().await;
        }
        if let Some(conn) = self.monitor.lock().await.take() {
            let _ = conn.close().await;
        }
    }
}
