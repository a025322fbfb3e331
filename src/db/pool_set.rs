//! [`PoolSet`]: a connection pool per (server, database), opened lazily, under one connection
//! budget: the route step of the database strategy, where every tenant has a database of its
//! own on one of several servers.
//!
//! # The budget
//!
//! A pool per tenant database, opened without a bound, is a connection explosion at a few
//! hundred tenants. The set bounds what it holds three ways ([`PoolSetOptions`]): a total
//! budget, a budget per server, and a cap per database. Every pool it opens *reserves* its
//! cap from the total and from its server's budget for as long as it is open, and sqlx never
//! opens more connections in a pool than its cap: so the connections the set holds can never
//! exceed either budget, whatever the load (the reservation is the proof, not a count taken
//! after the fact).
//!
//! When a database without a pool needs room, the least recently used *idle* pool (no
//! connection handed out, nobody about to take one) is closed, its connections with it, and
//! its reservation returned; on the same server when it is that server's budget that is
//! spent. When no pool is idle, the request waits for one to become so, and fails with
//! [`DbError::Unavailable`] (HTTP 503 with `Retry-After`) when the acquire timeout passes:
//! never a hang.
//!
//! # Servers apart
//!
//! Each server has its own [health](super::health): once one refuses or drops connections,
//! requests for its databases fail at once (one request at a time probes it), while the other
//! servers' databases are served as before.
//!
//! # Once per database
//!
//! What must run before a database's first transaction (the guard, reading its clean settings
//! for the release check, the signed-context probe) is the set's `on_open` hook: it runs once
//! per database, when its pool first opens, and what it returns is kept for the life of the
//! set (also across evictions), handed out with every connection of that database.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::Postgres;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tokio::sync::{Notify, OnceCell, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::DbError;
use super::health::{self, Health, PROBE_TIMEOUT};
use crate::connect::{ConnectError, DatabaseUrl};

/// How often a request waiting for room re-checks whether a pool became idle, besides being
/// woken when a connection comes back.
const RECHECK: Duration = Duration::from_millis(20);

/// The budgets and timeouts of a [`PoolSet`].
///
/// ```
/// use rls_tenancy::PoolSetOptions;
/// let options = PoolSetOptions::default().max_connections(100).max_per_server(60).max_per_database(2);
/// assert_eq!(options.get_max_connections(), 100);
/// assert_eq!(options.get_max_per_server(), 60);
/// assert_eq!(options.get_max_per_database(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct PoolSetOptions {
    max_connections: u32,
    max_per_server: Option<u32>,
    max_per_database: u32,
    acquire_timeout: Duration,
    idle_timeout: Duration,
}

impl Default for PoolSetOptions {
    /// 100 connections in total (`--max-connections`), as many per server, 2 per database, a
    /// 2 s acquire timeout, idle connections closed after 60 s.
    fn default() -> Self {
        Self {
            max_connections: 100,
            max_per_server: None,
            max_per_database: 2,
            acquire_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl PoolSetOptions {
    /// The most connections the set holds over all servers (at least 1).
    ///
    /// ```
    /// # use rls_tenancy::PoolSetOptions;
    /// assert_eq!(PoolSetOptions::default().max_connections(0).get_max_connections(), 1);
    /// ```
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// The total budget.
    ///
    /// ```
    /// # use rls_tenancy::PoolSetOptions;
    /// assert_eq!(PoolSetOptions::default().get_max_connections(), 100);
    /// ```
    pub fn get_max_connections(&self) -> u32 {
        self.max_connections
    }

    /// The most connections the set holds to any one server (at least 1; by default the
    /// total budget).
    ///
    /// ```
    /// # use rls_tenancy::PoolSetOptions;
    /// assert_eq!(PoolSetOptions::default().max_per_server(8).get_max_per_server(), 8);
    /// ```
    pub fn max_per_server(mut self, n: u32) -> Self {
        self.max_per_server = Some(n.max(1));
        self
    }

    /// The per-server budget.
    ///
    /// ```
    /// # use rls_tenancy::PoolSetOptions;
    /// assert_eq!(PoolSetOptions::default().max_connections(10).get_max_per_server(), 10);
    /// ```
    pub fn get_max_per_server(&self) -> u32 {
        self.max_per_server
            .unwrap_or(self.max_connections)
            .min(self.max_connections)
    }

    /// The most connections one database's pool opens, the per-tenant cap (at least 1): what
    /// each open pool reserves from the budgets.
    ///
    /// ```
    /// # use rls_tenancy::PoolSetOptions;
    /// assert_eq!(PoolSetOptions::default().max_per_database(1).get_max_per_database(), 1);
    /// ```
    pub fn max_per_database(mut self, n: u32) -> Self {
        self.max_per_database = n.max(1);
        self
    }

    /// The per-database cap, never more than the per-server budget.
    ///
    /// ```
    /// # use rls_tenancy::PoolSetOptions;
    /// assert_eq!(PoolSetOptions::default().max_connections(1).get_max_per_database(), 1);
    /// ```
    pub fn get_max_per_database(&self) -> u32 {
        self.max_per_database.min(self.get_max_per_server())
    }

    /// How long a request waits for a connection (room in the budget, then a connection of
    /// its database's pool) before it fails with [`DbError::Unavailable`] (default 2 s).
    ///
    /// ```
    /// # use rls_tenancy::PoolSetOptions;
    /// let options = PoolSetOptions::default().acquire_timeout(std::time::Duration::from_millis(500));
    /// assert_eq!(options.get_acquire_timeout().as_millis(), 500);
    /// ```
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The acquire timeout.
    ///
    /// ```
    /// # use rls_tenancy::PoolSetOptions;
    /// assert_eq!(PoolSetOptions::default().get_acquire_timeout().as_secs(), 2);
    /// ```
    pub fn get_acquire_timeout(&self) -> Duration {
        self.acquire_timeout
    }

    /// How long a connection may sit unused in its pool before it is closed (default 60 s);
    /// the pool, and its reservation, stay until it is evicted.
    ///
    /// ```
    /// # use rls_tenancy::PoolSetOptions;
    /// let options = PoolSetOptions::default().idle_timeout(std::time::Duration::from_secs(5));
    /// assert_eq!(options.get_idle_timeout().as_secs(), 5);
    /// ```
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// The idle timeout.
    ///
    /// ```
    /// # use rls_tenancy::PoolSetOptions;
    /// assert_eq!(PoolSetOptions::default().get_idle_timeout().as_secs(), 60);
    /// ```
    pub fn get_idle_timeout(&self) -> Duration {
        self.idle_timeout
    }
}

/// What a [`PoolSet`] has done so far: its churn.
///
/// ```no_run
/// # fn demo(set: rls_tenancy::PoolSet) {
/// let stats = set.stats();
/// println!("{} pools open, {} opened, {} evicted", stats.open_pools, stats.opens, stats.evictions);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolSetStats {
    /// Pools open now.
    pub open_pools: usize,
    /// Connections those pools hold now (idle or in use).
    pub connections: u32,
    /// Pools opened since the set was made.
    pub opens: u64,
    /// Pools closed to make room for another.
    pub evictions: u64,
}

/// A boxed future of the `on_open` hook.
type OpenFuture<T> = Pin<Box<dyn Future<Output = Result<T, DbError>> + Send>>;

/// The hook run once per database when its pool first opens.
type OnOpen<T> = Arc<dyn Fn(PgPool) -> OpenFuture<T> + Send + Sync>;

/// A database on a server: what a pool is kept for.
type Key = (String, String);

/// A pool per (server, database) under a total, a per-server and a per-database connection
/// budget, with idle pools evicted least recently used (see the [module](self) docs).
///
/// `T` is what the `on_open` hook returns for a database (its checked settings, say), handed
/// out with each of its connections.
///
/// ```no_run
/// use rls_tenancy::{PoolSet, PoolSetOptions};
/// # async fn demo() -> rls_tenancy::Result<()> {
/// let servers = [("eu1", "postgres://app_runtime@db-eu1/postgres".parse()?)];
/// let set = PoolSet::new(PoolSetOptions::default().max_connections(100), servers, |_pool| async { Ok(()) })?;
/// let (conn, _checked) = set.acquire("eu1", "app_tenant_acme").await?;
/// # Ok(()) }
/// ```
pub struct PoolSet<T = ()> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for PoolSet<T> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: Send + Sync + 'static> std::fmt::Debug for PoolSet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolSet")
            .field("servers", &self.inner.servers.keys().collect::<Vec<_>>())
            .field("options", &self.inner.options)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

struct Inner<T> {
    options: PoolSetOptions,
    servers: HashMap<String, Server>,
    total: Arc<Semaphore>,
    pools: Mutex<HashMap<Key, Arc<Entry>>>,
    opened: Mutex<HashMap<Key, Arc<OnceCell<Arc<T>>>>>,
    on_open: OnOpen<T>,
    /// Woken when a connection comes back to a pool or a pool is closed.
    freed: Arc<Notify>,
    clock: AtomicU64,
    opens: AtomicU64,
    evictions: AtomicU64,
}

/// A configured server: how to connect (any database), its budget, its health.
struct Server {
    connect: PgConnectOptions,
    /// The per-database cap on this server: what each of its pools reserves.
    cap: u32,
    budget: Arc<Semaphore>,
    health: Arc<Health>,
}

/// An open pool and its reservation.
struct Entry {
    pool: PgPool,
    /// The clock reading of its last use: the smallest is the least recently used.
    last_used: AtomicU64,
    /// Requests between finding this pool and holding one of its connections.
    leases: AtomicUsize,
    reservation: Mutex<Option<Reservation>>,
}

impl Entry {
    /// No connection handed out and nobody about to take one.
    fn is_idle(&self) -> bool {
        self.leases.load(Ordering::Acquire) == 0
            && usize::try_from(self.pool.size()).is_ok_and(|size| size == self.pool.num_idle())
    }
}

/// A pool's share of the total and of its server's budget.
struct Reservation {
    _total: OwnedSemaphorePermit,
    _server: OwnedSemaphorePermit,
}

/// A request's hold on a pool until it has a connection: the pool is not evicted meanwhile.
struct Lease(Arc<Entry>);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.leases.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<T: Send + Sync + 'static> PoolSet<T> {
    /// A set over `servers` (name, URL: its role is the one every pool logs in as; its
    /// database part is replaced by each pool's database) with `options`; `on_open` runs
    /// once per database, when its pool first opens (it may use the pool it is given), and
    /// what it returns comes with every connection of that database. No connection is opened
    /// here.
    ///
    /// # Errors
    /// [`ConnectError::InvalidUrl`] when sqlx rejects an option of a server's URL.
    ///
    /// ```
    /// use rls_tenancy::{PoolSet, PoolSetOptions};
    /// let servers = [("eu1", "postgres://app_runtime@db-eu1/postgres".parse()?)];
    /// let set = PoolSet::new(PoolSetOptions::default(), servers, |_pool| async { Ok(()) })?;
    /// assert_eq!(set.stats().open_pools, 0);
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn new<N, F, Fut>(
        options: PoolSetOptions,
        servers: impl IntoIterator<Item = (N, DatabaseUrl)>,
        on_open: F,
    ) -> Result<Self, ConnectError>
    where
        N: Into<String>,
        F: Fn(PgPool) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, DbError>> + Send + 'static,
    {
        let servers = servers.into_iter().map(|(name, url)| (name, url, None));
        Self::with_limits(options, servers, on_open)
    }

    /// As [`PoolSet::new`], each server with its own connection limit when it has one (a
    /// `[[server]]` entry's `max_connections`), within the per-server budget.
    ///
    /// # Errors
    /// As [`PoolSet::new`].
    ///
    /// ```
    /// use rls_tenancy::{PoolSet, PoolSetOptions};
    /// let servers = [
    ///     ("eu1", "postgres://app_runtime@db-eu1/postgres".parse()?, Some(20)),
    ///     ("eu2", "postgres://app_runtime@db-eu2/postgres".parse()?, None),
    /// ];
    /// let set = PoolSet::with_limits(PoolSetOptions::default(), servers, |_pool| async { Ok(()) })?;
    /// assert!(set.has_server("eu2"));
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn with_limits<N, F, Fut>(
        options: PoolSetOptions,
        servers: impl IntoIterator<Item = (N, DatabaseUrl, Option<u32>)>,
        on_open: F,
    ) -> Result<Self, ConnectError>
    where
        N: Into<String>,
        F: Fn(PgPool) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, DbError>> + Send + 'static,
    {
        let servers = servers
            .into_iter()
            .map(|(name, url, limit)| {
                let budget = limit.map_or(options.get_max_per_server(), |limit| {
                    limit.clamp(1, options.get_max_per_server())
                });
                let server = Server {
                    connect: url.connect_options()?,
                    cap: options.get_max_per_database().min(budget),
                    budget: Arc::new(Semaphore::new(permits(budget))),
                    health: Arc::default(),
                };
                Ok((name.into(), server))
            })
            .collect::<Result<_, ConnectError>>()?;
        let on_open: OnOpen<T> = Arc::new(move |pool| Box::pin(on_open(pool)));
        Ok(Self {
            inner: Arc::new(Inner {
                total: Arc::new(Semaphore::new(permits(options.max_connections))),
                options,
                servers,
                pools: Mutex::default(),
                opened: Mutex::default(),
                on_open,
                freed: Arc::new(Notify::new()),
                clock: AtomicU64::new(0),
                opens: AtomicU64::new(0),
                evictions: AtomicU64::new(0),
            }),
        })
    }

    /// Whether the server `name` was added.
    ///
    /// ```
    /// # use rls_tenancy::{PoolSet, PoolSetOptions};
    /// let servers = [("eu1", "postgres://app_runtime@db-eu1/postgres".parse()?)];
    /// let set = PoolSet::new(PoolSetOptions::default(), servers, |_| async { Ok(()) })?;
    /// assert!(set.has_server("eu1"));
    /// assert!(!set.has_server("us1"));
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn has_server(&self, name: &str) -> bool {
        self.inner.servers.contains_key(name)
    }

    /// A connection to `database` on `server`, with what `on_open` returned for it. Opens the
    /// database's pool when it has none (running `on_open` the first time), evicting the
    /// least recently used idle pool when the budget has no room.
    ///
    /// # Errors
    /// [`DbError::UnknownServer`] for a server never added; [`DbError::Unavailable`] when
    /// the server is known to be down, or no room and no connection could be had within the
    /// acquire timeout; the database's error when a connection fails or `on_open`'s error.
    ///
    /// ```no_run
    /// # async fn demo(set: rls_tenancy::PoolSet) -> rls_tenancy::Result<()> {
    /// let (mut conn, _checked) = set.acquire("eu1", "app_tenant_acme").await?;
    /// # Ok(()) }
    /// ```
    pub async fn acquire(
        &self,
        server: &str,
        database: &str,
    ) -> Result<(PoolConnection<Postgres>, Arc<T>), DbError> {
        let inner = &*self.inner;
        let host = inner
            .servers
            .get(server)
            .ok_or_else(|| DbError::UnknownServer {
                server: server.to_owned(),
            })?;
        // A server known to be down: one request probes it, briefly; the others fail now.
        let probe = if host.health.is_down() {
            Some(host.health.probe()?)
        } else {
            None
        };
        let wait = if probe.is_some() {
            PROBE_TIMEOUT.min(inner.options.acquire_timeout)
        } else {
            inner.options.acquire_timeout
        };
        let deadline = Instant::now() + wait;
        let key = (server.to_owned(), database.to_owned());
        let lease = self.lease(host, &key, deadline).await?;
        let opened = self.opened(host, &key, &lease.0.pool, deadline).await?;
        let acquired = tokio::time::timeout_at(deadline, lease.0.pool.acquire())
            .await
            .unwrap_or(Err(sqlx::Error::PoolTimedOut));
        let probing = probe.is_some();
        drop(probe);
        match acquired {
            Ok(conn) => Ok((conn, opened)),
            Err(err) => {
                let err = DbError::from(err);
                health::note_failure(&lease.0.pool, &host.health, &err).await;
                if probing && matches!(err, DbError::Database(sqlx::Error::PoolTimedOut)) {
                    health::recheck_in_background(
                        &host.health,
                        host.connect.clone().database(database),
                        inner.options.acquire_timeout,
                    );
                }
                Err(match err {
                    DbError::Database(sqlx::Error::PoolTimedOut) => DbError::Unavailable {
                        reason: "no connection to the tenant's database could be had within the acquire timeout",
                    },
                    other => other,
                })
            }
        }
    }

    /// What the set holds and has done.
    ///
    /// ```
    /// # use rls_tenancy::{PoolSet, PoolSetOptions};
    /// let no_servers: [(&str, rls_tenancy::DatabaseUrl); 0] = [];
    /// let set = PoolSet::new(PoolSetOptions::default(), no_servers, |_| async { Ok(()) })?;
    /// assert_eq!(set.stats().connections, 0);
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn stats(&self) -> PoolSetStats {
        let pools = lock(&self.inner.pools);
        PoolSetStats {
            open_pools: pools.len(),
            connections: pools.values().map(|entry| entry.pool.size()).sum(),
            opens: self.inner.opens.load(Ordering::Relaxed),
            evictions: self.inner.evictions.load(Ordering::Relaxed),
        }
    }

    /// Whether `server`'s connections were found refused or dropped, and none has succeeded
    /// since.
    ///
    /// ```
    /// # use rls_tenancy::{PoolSet, PoolSetOptions};
    /// let servers = [("eu1", "postgres://app_runtime@db-eu1/postgres".parse()?)];
    /// let set = PoolSet::new(PoolSetOptions::default(), servers, |_| async { Ok(()) })?;
    /// assert!(!set.is_down("eu1"), "nothing was tried yet");
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn is_down(&self, server: &str) -> bool {
        self.inner
            .servers
            .get(server)
            .is_some_and(|host| host.health.is_down())
    }

    /// The most connections one database's pool holds.
    pub(crate) fn per_database(&self) -> u32 {
        self.inner.options.get_max_per_database()
    }

    /// Takes `server` to be down (its connections were lost at `BEGIN`): its databases'
    /// requests fail at once until a connection to it succeeds again.
    pub(crate) fn mark_down(&self, server: &str) {
        if let Some(host) = self.inner.servers.get(server) {
            host.health.mark_down();
        }
    }

    /// Closes every pool, waiting for the connections in use to come back.
    ///
    /// ```no_run
    /// # async fn demo(set: rls_tenancy::PoolSet) {
    /// set.close().await;
    /// # }
    /// ```
    pub async fn close(&self) {
        let pools: Vec<_> = lock(&self.inner.pools).drain().map(|(_, e)| e).collect();
        for entry in pools {
            entry.pool.close().await;
            lock(&entry.reservation).take();
        }
    }

    /// A lease on `key`'s pool, opening it (under the budget) when it has none.
    async fn lease(&self, host: &Server, key: &Key, deadline: Instant) -> Result<Lease, DbError> {
        loop {
            if let Some(lease) = self.existing(key) {
                return Ok(lease);
            }
            let reservation = self.reserve(&key.0, host, deadline).await?;
            let mut pools = lock(&self.inner.pools);
            // Another request may have opened it meanwhile: then ours goes back.
            if !pools.contains_key(key) {
                let entry = Arc::new(Entry {
                    pool: self.pool_for(host, &key.1),
                    last_used: AtomicU64::new(self.tick()),
                    leases: AtomicUsize::new(0),
                    reservation: Mutex::new(Some(reservation)),
                });
                pools.insert(key.clone(), entry);
                self.inner.opens.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(server = %key.0, database = %key.1, "database pool opened");
            }
        }
    }

    /// A lease on `key`'s pool if it is open, marking it used now.
    fn existing(&self, key: &Key) -> Option<Lease> {
        let pools = lock(&self.inner.pools);
        let entry = pools.get(key)?;
        entry.leases.fetch_add(1, Ordering::AcqRel);
        entry.last_used.store(self.tick(), Ordering::Relaxed);
        Some(Lease(Arc::clone(entry)))
    }

    /// A lazily connecting pool for `database` on `host`, of the per-database cap.
    fn pool_for(&self, host: &Server, database: &str) -> PgPool {
        let options = &self.inner.options;
        let freed = Arc::clone(&self.inner.freed);
        let connected = Arc::clone(&host.health);
        let connect = host.connect.clone().database(database);
        PgPoolOptions::new()
            .max_connections(host.cap)
            .min_connections(0)
            .acquire_timeout(options.acquire_timeout)
            .idle_timeout(options.idle_timeout)
            .test_before_acquire(false)
            .after_connect(move |_, _| {
                // A connection that succeeds ends the server's outage, if any.
                connected.mark_up();
                Box::pin(async { Ok(()) })
            })
            .after_release(move |_, _| {
                freed.notify_waiters();
                Box::pin(async { Ok(true) })
            })
            .connect_lazy_with(connect)
    }

    /// One pool's share of the budgets, evicting idle pools for it, waiting until `deadline`
    /// for one to become idle.
    async fn reserve(
        &self,
        server: &str,
        host: &Server,
        deadline: Instant,
    ) -> Result<Reservation, DbError> {
        let need = host.cap;
        loop {
            let freed = self.inner.freed.notified();
            if let Some(reservation) = self.try_reserve(host, need) {
                return Ok(reservation);
            }
            if self.evict(server, host, need).await {
                continue;
            }
            if Instant::now() >= deadline {
                return Err(DbError::Unavailable {
                    reason: "the connection budget is in use by other tenants' databases",
                });
            }
            let recheck = (Instant::now() + RECHECK).min(deadline);
            let _woken = tokio::time::timeout_at(recheck, freed).await;
        }
    }

    /// Both shares at once, or neither.
    fn try_reserve(&self, host: &Server, need: u32) -> Option<Reservation> {
        let total = Arc::clone(&self.inner.total)
            .try_acquire_many_owned(need)
            .ok()?;
        let server = Arc::clone(&host.budget).try_acquire_many_owned(need).ok()?;
        Some(Reservation {
            _total: total,
            _server: server,
        })
    }

    /// Closes the least recently used idle pool whose reservation makes room for `need` on
    /// `server` (one of `server`'s when its own budget is short); `false` when none is idle.
    async fn evict(&self, server: &str, host: &Server, need: u32) -> bool {
        let server_short = host.budget.available_permits() < permits(need);
        let victim = {
            let mut pools = lock(&self.inner.pools);
            let key = pools
                .iter()
                .filter(|(key, entry)| entry.is_idle() && (!server_short || key.0 == server))
                .min_by_key(|(_, entry)| entry.last_used.load(Ordering::Relaxed))
                .map(|(key, _)| key.clone());
            key.and_then(|key| pools.remove(&key).map(|entry| (key, entry)))
        };
        let Some((key, entry)) = victim else {
            return false;
        };
        entry.pool.close().await;
        lock(&entry.reservation).take();
        self.inner.evictions.fetch_add(1, Ordering::Relaxed);
        self.inner.freed.notify_waiters();
        tracing::debug!(server = %key.0, database = %key.1, "idle database pool evicted to make room");
        true
    }

    /// What `on_open` returned for `key`, running it the first time (one request runs it;
    /// the others wait for it). A failure is not kept: the next request tries again.
    /// A failure that shows the server refusing connections marks it down.
    async fn opened(
        &self,
        host: &Server,
        key: &Key,
        pool: &PgPool,
        deadline: Instant,
    ) -> Result<Arc<T>, DbError> {
        let cell = Arc::clone(lock(&self.inner.opened).entry(key.clone()).or_default());
        let init = cell
            .get_or_try_init(|| async { (self.inner.on_open)(pool.clone()).await.map(Arc::new) });
        let opened = match tokio::time::timeout_at(deadline, init).await {
            Ok(Ok(opened)) => opened,
            Ok(Err(err)) => {
                health::note_failure(pool, &host.health, &err).await;
                return Err(err);
            }
            Err(_) => {
                return Err(DbError::Unavailable {
                    reason: "the tenant's database could not be checked within the acquire timeout",
                });
            }
        };
        Ok(Arc::clone(opened))
    }

    /// The next reading of the set's use clock.
    fn tick(&self) -> u64 {
        self.inner.clock.fetch_add(1, Ordering::Relaxed)
    }
}

/// `n` as a semaphore's permit count.
fn permits(n: u32) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Locks `mutex`, going on after a panic elsewhere (the maps stay consistent: every change
/// is one insert or remove).
fn lock<V>(mutex: &Mutex<V>) -> std::sync::MutexGuard<'_, V> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
