//! [`Health`]: whether the database is known to be down, shared by every request of a pool,
//! so that during an outage requests fail at once instead of each waiting for the acquire
//! timeout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use sqlx::{Connection, Postgres};

use super::DbError;

/// The longest a request waits on a database known to be down: it is the probe that finds
/// out whether the database is back.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// The pool's view of the database: up (the normal case) or down since a connection was
/// refused or dropped, until the next connection succeeds. While down, one request at a
/// time probes (waits at most [`PROBE_TIMEOUT`], half a second, for a connection); the
/// others are refused
/// at once with [`DbError::Unavailable`].
#[derive(Debug, Default)]
pub(crate) struct Health {
    down: AtomicBool,
    probing: AtomicBool,
    /// A connection attempt in the background is under way ([`recheck_in_background`]).
    rechecking: AtomicBool,
    /// When the pool last moved to another host (a promotion): connections opened before
    /// are to a server that is gone or no longer primary.
    moved_at: Mutex<Option<Instant>>,
}

impl Health {
    /// Whether the database is known to be down.
    pub(crate) fn is_down(&self) -> bool {
        self.down.load(Ordering::Acquire)
    }

    /// The database refused or dropped a connection.
    pub(crate) fn mark_down(&self) {
        if !self.down.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                "the database is unreachable: requests are refused at once (503) until a connection succeeds"
            );
        }
    }

    /// A connection succeeded: the outage, if any, is over.
    pub(crate) fn mark_up(&self) {
        if self.down.swap(false, Ordering::AcqRel) {
            tracing::info!("the database is reachable again");
        }
    }

    /// The pool now opens its connections on another host.
    pub(crate) fn mark_moved(&self) {
        *self.moved_at.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
    }

    /// Whether a connection `age` old was opened before the pool last moved to another host.
    pub(crate) fn opened_before_move(&self, age: Duration) -> bool {
        self.moved_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|moved| age > moved.elapsed())
    }

    /// The right to probe the database while it is down, if nobody else is probing.
    ///
    /// # Errors
    /// [`DbError::Unavailable`] when another request is probing already.
    pub(crate) fn probe(&self) -> Result<Probe<'_>, DbError> {
        if self.probing.swap(true, Ordering::AcqRel) {
            return Err(DbError::Unavailable {
                reason: "the database was found down moments ago",
            });
        }
        Ok(Probe(self))
    }
}

/// After a probe ran out of its [`PROBE_TIMEOUT`] without a connection: one connection
/// attempt (with `options`) in the background, allowed `patience`, that marks `health` up
/// when it succeeds. A server that is back but slow to log in (a loaded machine; SCRAM's
/// key derivation) would otherwise stay down for good: each probe gives up on its login
/// before it completes. At most one such attempt runs per server.
pub(crate) fn recheck_in_background(
    health: &Arc<Health>,
    options: PgConnectOptions,
    patience: Duration,
) {
    if !health.is_down() || health.rechecking.swap(true, Ordering::AcqRel) {
        return;
    }
    let health = Arc::clone(health);
    tokio::spawn(async move {
        if let Ok(Ok(conn)) =
            tokio::time::timeout(patience, PgConnection::connect_with(&options)).await
        {
            let _ = conn.close().await;
            health.mark_up();
        }
        health.rechecking.store(false, Ordering::Release);
    });
}

/// A probe in progress; dropping it lets the next request probe.
#[derive(Debug)]
pub(crate) struct Probe<'a>(&'a Health);

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        self.0.probing.store(false, Ordering::Release);
    }
}

/// A connection from `pool`, failing at once while `health` says its server is down (unless
/// this request is the one probing it, for at most [`PROBE_TIMEOUT`]). `patience`: see
/// [`acquire_noting_outage`].
pub(crate) async fn acquire(
    pool: &PgPool,
    health: &Health,
    patience: Option<Duration>,
) -> Result<PoolConnection<Postgres>, DbError> {
    if !health.is_down() {
        return acquire_noting_outage(pool, health, patience).await;
    }
    let _probe = health.probe()?;
    tokio::time::timeout(PROBE_TIMEOUT, acquire_noting_outage(pool, health, patience))
        .await
        .unwrap_or(Err(DbError::Unavailable {
            reason: "no connection could be opened",
        }))
}

/// A connection of `pool` that answers a ping, the dead idle ones it meets closed on the way
/// (after one connection turned out dead, the others may be too: killed backends, a
/// restarted server); at most one try per connection the pool may hold, then a plain
/// acquire, which opens a new one.
pub(crate) async fn live_connection(
    pool: &PgPool,
) -> Result<PoolConnection<Postgres>, sqlx::Error> {
    for _ in 0..pool.options().get_max_connections() {
        let mut conn = pool.acquire().await?;
        if conn.ping().await.is_ok() {
            return Ok(conn);
        }
        conn.close_on_drop();
    }
    pool.acquire().await
}

/// `PgPool::acquire`, taking the server to be down when a connection attempt failed
/// outright, or none could be had in time although the pool had room to open one and
/// the server refuses connections. With `patience` (a peer's pool, which must fail fast so
/// another peer is tried): once no connection came within it while the pool had room, a
/// server refusing connections fails the acquire at once with its refusal, instead of at
/// the acquire timeout (sqlx retries a refused connection until then); a pool merely busy,
/// or a server merely slow, is still waited for.
pub(crate) async fn acquire_noting_outage(
    pool: &PgPool,
    health: &Health,
    patience: Option<Duration>,
) -> Result<PoolConnection<Postgres>, DbError> {
    let acquired = match patience {
        Some(limit) => acquire_failing_fast(pool, limit).await,
        None => pool.acquire().await,
    };
    match acquired {
        Ok(conn) => Ok(conn),
        Err(err) => {
            let err = DbError::from(err);
            note_failure(pool, health, &err).await;
            Err(err)
        }
    }
}

/// Marks `health` down when `err`, met using `pool`, shows its server refusing or dropping
/// connections: the connection was lost, or none could be had in time although the pool
/// had room to open one and a connection attempt of our own is refused.
pub(crate) async fn note_failure(pool: &PgPool, health: &Health, err: &DbError) {
    match err {
        DbError::Database(sqlx::Error::PoolTimedOut) => {
            // Busy (every connection in use) or unreachable (the pool had room but could
            // not open one: sqlx retries refused connections until the deadline)? Only a
            // connection attempt of our own tells a refusing server from a slow one.
            let room = pool.size() < pool.options().get_max_connections();
            if room && refuses_connections(pool).await {
                health.mark_down();
            }
        }
        DbError::Database(err) if is_connection_lost(err) => health.mark_down(),
        DbError::Connect(crate::connect::ConnectError::Unreachable { source, .. })
            if is_connection_lost(source) =>
        {
            health.mark_down();
        }
        _ => {}
    }
}

/// `pool.acquire()`; after `limit` without a connection while the pool has room to open
/// one, a refusing server's refusal, else the rest of the acquire timeout.
async fn acquire_failing_fast(
    pool: &PgPool,
    limit: Duration,
) -> Result<PoolConnection<Postgres>, sqlx::Error> {
    let started = Instant::now();
    if let Ok(acquired) = tokio::time::timeout(limit, pool.acquire()).await {
        return acquired;
    }
    if pool.size() < pool.options().get_max_connections()
        && let Some(refusal) = refusal(pool).await
    {
        return Err(refusal);
    }
    let rest = pool
        .options()
        .get_acquire_timeout()
        .saturating_sub(started.elapsed());
    tokio::time::timeout(rest, pool.acquire())
        .await
        .unwrap_or(Err(sqlx::Error::PoolTimedOut))
}

/// Whether a fresh connection attempt to `pool`'s server fails because the connection is
/// refused or dropped (not merely slow: a timeout says nothing).
pub(crate) async fn refuses_connections(pool: &PgPool) -> bool {
    refusal(pool).await.is_some()
}

/// Why a fresh connection attempt to `pool`'s server fails, if it does because the
/// connection is refused or dropped.
async fn refusal(pool: &PgPool) -> Option<sqlx::Error> {
    let options = pool.connect_options();
    match tokio::time::timeout(PROBE_TIMEOUT, PgConnection::connect_with(&options)).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            None
        }
        Ok(Err(err)) => is_connection_lost(&err).then_some(err),
        Err(_) => None,
    }
}

/// Whether `err` means the connection or the server is gone (refused, dropped, its backend
/// terminated, the server shutting down or starting up), rather than a fault of the
/// statement. Such a failure says nothing ran, or nothing will be kept, on that connection.
pub(crate) fn is_connection_lost(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P01-57P03: admin/crash shutdown, cannot connect
            // now; 53300: too many connections.
            code.starts_with("08") || code.starts_with("57P") || code == "53300"
        }),
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    #[test]
    fn one_request_probes_a_database_that_is_down_and_the_others_are_refused_at_once() {
        let health = Health::default();
        assert!(!health.is_down());
        health.mark_down();
        assert!(health.is_down());
        let probe = health.probe().expect("the first request probes");
        let refused = health.probe().expect_err("a second request is refused");
        assert!(matches!(refused, DbError::Unavailable { .. }));
        drop(probe);
        assert!(
            health.probe().is_ok(),
            "after a probe, the next one may try"
        );
        health.mark_up();
        assert!(!health.is_down());
    }

    #[test]
    fn lost_connections_are_told_from_statement_faults() {
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(is_connection_lost(&sqlx::Error::Io(reset)));
        assert!(!is_connection_lost(&sqlx::Error::PoolTimedOut));
        assert!(!is_connection_lost(&sqlx::Error::RowNotFound));
    }
}
