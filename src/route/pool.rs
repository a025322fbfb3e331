//! [`RoutingPool`]: the route step. Writes go to the primary; reads go round-robin to a
//! healthy replica, unless the task must read the primary.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::failure::{Failed, classify};
use super::peer::{Peer, PeerKind, ReplicaStatus};
use super::primaries::Primaries;
use super::primary::{ReadRule, current};
use super::writes::{OpenWrites, WriteMark};
use super::{Lsn, RouteError, RoutingOptions};
use crate::connect::{DatabaseHosts, DatabaseUrl};
use crate::db::{DbError, TenantPool, TenantPoolOptions, TenantTx, TxOptions, is_connection_lost};
use crate::policy::TenancyDeclaration;
use crate::resolve::{RegistryOptions, TenantRegistry};
use crate::tenant::TenantScope;

/// Which server a routed transaction runs on.
///
/// ```
/// use rls_tenancy::ServedBy;
/// assert_eq!(ServedBy::Replica.as_str(), "replica");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServedBy {
    /// The primary (every write; reads that must see the latest state).
    Primary,
    /// A replica.
    Replica,
}

impl ServedBy {
    /// `primary` or `replica`, as the `x-served-by` header says.
    ///
    /// ```
    /// assert_eq!(rls_tenancy::ServedBy::Primary.as_str(), "primary");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ServedBy::Primary => "primary",
            ServedBy::Replica => "replica",
        }
    }
}

/// A primary [`TenantPool`] and replica pools, each opened only after the
/// [guard](crate::guard) accepted the role on that server: the route step of the request
/// path, before the tenant transaction begins (it picks the pool; [`TenantPool`] begins).
///
/// - [`RoutingPool::begin`]: a read-write tenant transaction on the primary.
/// - [`RoutingPool::read`]: a read-only tenant transaction on a replica, chosen round-robin
///   among those that are up and lag no more than [`RoutingOptions::max_replica_lag`]; on
///   the primary when none is, when the task has a write transaction open, inside
///   [`crate::use_primary`], or when a pin asks for a position no replica has replayed.
/// - A replica whose connection fails is marked down and the read goes to the next one
///   (nothing had run: `BEGIN` had not succeeded); it is checked again in the background
///   after [`RoutingOptions::check_interval`].
///
/// Clones share the pools.
///
/// ```no_run
/// use rls_tenancy::{RoutingOptions, RoutingPool, TenancyDeclaration, TenantPoolOptions};
/// # async fn demo(scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
/// let options = RoutingOptions::new(TenantPoolOptions::new(TenancyDeclaration::from_file("policies/tenancy.toml")?))
///     .replica("postgres://app_runtime@10.0.0.2/app".parse()?);
/// let pool = RoutingPool::connect(&"postgres://app_runtime@10.0.0.1/app".parse()?, options).await?;
/// let mut tx = pool.read(&scope).await?; // a replica, read-only
/// let n: i64 = sqlx::query_scalar("SELECT count(*) FROM app.projects").fetch_one(&mut **tx).await?;
/// tx.commit().await?;
/// let tx = pool.begin(&scope).await?; // the primary
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct RoutingPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    primary: Primaries,
    replicas: Vec<Peer>,
    next: AtomicUsize,
    writes: Arc<OpenWrites>,
    options: TenantPoolOptions,
    max_lag: Option<Duration>,
    check_interval: Duration,
}

impl RoutingPool {
    /// Opens the primary's pool (the guard runs on it) and each replica's: a replica that
    /// cannot be reached is marked down with a warning and checked again after the check
    /// interval; one that is not in recovery is used with a warning. A background task
    /// polls the replicas' lag and replay position every
    /// [`RoutingOptions::poll_interval`] until the last clone is dropped.
    ///
    /// # Errors
    /// [`RouteError::ReplicaMismatch`] when a replica URL names another role or database
    /// than `primary`; [`RouteError::Primary`] when the primary cannot be opened;
    /// [`RouteError::ReplicaRefused`] when the guard refuses the role on a replica.
    ///
    /// ```no_run
    /// # use rls_tenancy::{RoutingOptions, RoutingPool, TenancyDeclaration, TenantPoolOptions};
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let options = RoutingOptions::new(TenantPoolOptions::new(TenancyDeclaration::reference()?));
    /// let pool = RoutingPool::connect(&"postgres://app_runtime@127.0.0.1/app".parse()?, options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(
        primary: &DatabaseUrl,
        options: RoutingOptions,
    ) -> Result<Self, RouteError> {
        Self::connect_hosts(&DatabaseHosts::from(primary.clone()), options).await
    }

    /// [`RoutingPool::connect`] with several hosts for the primary (libpq's multi-host URL,
    /// `postgres://app:pw@h1:5432,h2:5433/app`): each host's pool is opened (the guard runs
    /// on each), and writes go to the host that is not in recovery, as libpq's
    /// `target_session_attrs=read-write` chooses; over several if several are (equivalent
    /// pgbouncer or HAProxy frontends of one primary). A host whose `BEGIN` fails because
    /// it is gone, draining or in recovery is set aside and another tried (nothing of the
    /// transaction ran); hosts are polled every [`RoutingOptions::poll_interval`], so a
    /// promoted standby takes the writes as soon as it is seen out of recovery, and when no
    /// host is primary a write checks them again for at most
    /// [`RoutingOptions::failover_wait`]. An unreachable host at start is marked down and
    /// checked again after the check interval. With one host, as [`RoutingPool::connect`].
    ///
    /// # Errors
    /// As [`RoutingPool::connect`]; [`RouteError::PrimaryRefused`] when the guard refuses
    /// the role on a host; [`RouteError::NoPrimary`] when no host is primary within the
    /// failover wait.
    ///
    /// ```no_run
    /// # use rls_tenancy::{DatabaseHosts, RoutingOptions, RoutingPool, TenancyDeclaration, TenantPoolOptions};
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let hosts: DatabaseHosts = "postgres://app_runtime@10.0.0.1:5432,10.0.0.2:5432/app".parse()?;
    /// let options = RoutingOptions::new(TenantPoolOptions::new(TenancyDeclaration::reference()?));
    /// let pool = RoutingPool::connect_hosts(&hosts, options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_hosts(
        primary: &DatabaseHosts,
        options: RoutingOptions,
    ) -> Result<Self, RouteError> {
        for replica in &options.replicas {
            same_login(primary.first(), replica)?;
        }
        let primaries = Primaries::open(primary, &options).await?;
        // A replica's pool fails fast: another replica or the primary can take its reads.
        let peer_options = options.pool.clone().peer_timeout(options.peer_timeout);
        let replicas: Vec<Peer> = options
            .replicas
            .iter()
            .cloned()
            .map(|url| Peer::new(url, PeerKind::Replica))
            .collect();
        for replica in &replicas {
            replica
                .check(&peer_options, options.check_interval, true)
                .await
                .map_err(|source| RouteError::ReplicaRefused {
                    replica: replica.status().url,
                    source,
                })?;
        }
        let inner = Arc::new(Inner {
            primary: primaries,
            replicas,
            next: AtomicUsize::new(0),
            writes: Arc::default(),
            options: peer_options,
            max_lag: options.max_replica_lag,
            check_interval: options.check_interval,
        });
        if !inner.replicas.is_empty() || inner.primary.has_hosts() {
            tokio::spawn(watch(Arc::downgrade(&inner), options.poll_interval));
        }
        Ok(Self { inner })
    }

    /// Begins a read-write tenant transaction on the primary. While it is open, the task's
    /// reads ([`RoutingPool::read`]) go to the primary too.
    ///
    /// # Errors
    /// As [`TenantPool::begin`].
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::RoutingPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
    /// let mut tx = pool.begin(&scope).await?;
    /// sqlx::query("UPDATE app.subtasks SET is_complete = true WHERE id = 1").execute(&mut **tx).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn begin(&self, scope: &TenantScope) -> Result<RoutedTx, DbError> {
        self.begin_with(scope, TxOptions::default()).await
    }

    /// [`RoutingPool::begin`] with `options` (isolation level, read-only); always on the
    /// primary.
    ///
    /// # Errors
    /// As [`TenantPool::begin_with`].
    ///
    /// ```no_run
    /// # use rls_tenancy::{IsolationLevel, TxOptions};
    /// # async fn demo(pool: rls_tenancy::RoutingPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
    /// let tx = pool.begin_with(&scope, TxOptions::default().isolation(IsolationLevel::Serializable)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn begin_with(
        &self,
        scope: &TenantScope,
        options: TxOptions,
    ) -> Result<RoutedTx, DbError> {
        let tx = self.inner.primary.begin(scope, options).await?;
        Ok(RoutedTx {
            tx,
            served_by: ServedBy::Primary,
            write: Some(self.inner.writes.open()),
        })
    }

    /// Begins a read-only tenant transaction where the route says: a replica chosen
    /// round-robin among those up and not lagging, else the primary (see [`RoutingPool`]).
    ///
    /// # Errors
    /// As [`TenantPool::begin_with`], for the server finally chosen; a replica's connection
    /// failure is not an error (the next server is tried).
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::RoutingPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
    /// let tx = pool.read(&scope).await?;
    /// println!("served by the {}", tx.served_by().as_str());
    /// # Ok(()) }
    /// ```
    pub async fn read(&self, scope: &TenantScope) -> Result<RoutedTx, DbError> {
        let options = TxOptions::default().read_only();
        let at_least = match current() {
            Some(ReadRule::Primary) => return self.read_on_primary(scope, options).await,
            Some(ReadRule::AtLeast(lsn)) => Some(lsn),
            None => None,
        };
        let peers = &self.inner.replicas;
        if peers.is_empty() || self.inner.writes.in_running_task() {
            return self.read_on_primary(scope, options).await;
        }
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        for k in 0..peers.len() {
            let peer = &peers[(start + k) % peers.len()];
            let Some(pool) = peer.usable(self.inner.max_lag, at_least) else {
                continue;
            };
            let err = match pool.begin_with(scope, options).await {
                Ok(tx) => {
                    return Ok(RoutedTx {
                        tx,
                        served_by: ServedBy::Replica,
                        write: None,
                    });
                }
                Err(err) => err,
            };
            match classify(&err, pool) {
                Failed::Server | Failed::NotPrimary => peer.mark_down(&err),
                Failed::Busy => {
                    tracing::debug!("a replica's pool is busy; trying the next server");
                }
                Failed::Request => return Err(err),
            }
        }
        self.read_on_primary(scope, options).await
    }

    /// The transaction of a request that `writes` (its method is not safe, or its route is
    /// marked writing) or only reads: a write begins read-write on the primary; a read is
    /// read-only where [`RoutingPool::read`] sends it (the primary inside
    /// [`use_primary`](super::use_primary), which marks no write: it pins nothing).
    #[cfg(feature = "axum")]
    pub(crate) async fn begin_for_request(
        &self,
        scope: &TenantScope,
        writes: bool,
    ) -> Result<RoutedTx, DbError> {
        if writes {
            self.begin(scope).await
        } else {
            self.read(scope).await
        }
    }

    async fn read_on_primary(
        &self,
        scope: &TenantScope,
        options: TxOptions,
    ) -> Result<RoutedTx, DbError> {
        let tx = self.inner.primary.begin(scope, options).await?;
        Ok(RoutedTx {
            tx,
            served_by: ServedBy::Primary,
            write: None,
        })
    }

    /// The primary's current WAL position: a replica that has replayed it has every write
    /// committed before the call. What the pinning cookie carries after a write.
    ///
    /// # Errors
    /// As [`TenantPool::begin`] when no connection to the primary can be had.
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::RoutingPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
    /// pool.begin(&scope).await?.commit().await?;
    /// let written = pool.primary_position().await?;
    /// let tx = rls_tenancy::read_at_least(written, pool.read(&scope)).await?; // sees the write
    /// # Ok(()) }
    /// ```
    pub async fn primary_position(&self) -> Result<Lsn, DbError> {
        let text = self.inner.primary.current().wal_insert_position().await?;
        text.parse().map_err(|_| DbError::Unavailable {
            reason: "the primary reported no WAL position",
        })
    }

    /// A routing pool with no replicas over `primary`: every transaction on it. The same
    /// API whether or not replicas are configured.
    ///
    /// ```no_run
    /// # fn demo(pool: rls_tenancy::TenantPool) {
    /// let routing = rls_tenancy::RoutingPool::primary_only(pool);
    /// # }
    /// ```
    pub fn primary_only(primary: TenantPool) -> Self {
        let options = RoutingOptions::new(TenantPoolOptions::new(primary.declaration().clone()));
        Self {
            inner: Arc::new(Inner {
                primary: Primaries::One(primary),
                replicas: Vec::new(),
                next: AtomicUsize::new(0),
                writes: Arc::default(),
                options: options.pool,
                max_lag: None,
                check_interval: options.check_interval,
            }),
        }
    }

    /// The primary's pool. With several hosts, a pool of its own whose new connections go
    /// to the host found primary (it follows a promotion; a connection it opened before
    /// stays on its host until it fails): for reads that need no routing (the registry, a
    /// readiness probe). Write through [`RoutingPool::begin`], which tries the hosts.
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::RoutingPool) -> rls_tenancy::Result<()> {
    /// pool.primary().ping(std::time::Duration::from_secs(1)).await?;
    /// # Ok(()) }
    /// ```
    pub fn primary(&self) -> &TenantPool {
        self.inner.primary.anchor()
    }

    /// A [`TenantRegistry`] reading the primary (routing data must be current).
    ///
    /// ```no_run
    /// # fn demo(pool: rls_tenancy::RoutingPool) {
    /// let registry = pool.registry(rls_tenancy::RegistryOptions::default());
    /// # }
    /// ```
    pub fn registry(&self, options: RegistryOptions) -> TenantRegistry {
        self.inner.primary.anchor().registry(options)
    }

    /// The declaration the pools serve.
    ///
    /// ```no_run
    /// # fn demo(pool: rls_tenancy::RoutingPool) {
    /// println!("{}", pool.declaration().schema());
    /// # }
    /// ```
    pub fn declaration(&self) -> &TenancyDeclaration {
        self.inner.primary.anchor().declaration()
    }

    /// How each replica stands, in the order they were given.
    ///
    /// ```no_run
    /// # fn demo(pool: rls_tenancy::RoutingPool) {
    /// let up = pool.replica_status().iter().filter(|r| r.up).count();
    /// # }
    /// ```
    pub fn replica_status(&self) -> Vec<ReplicaStatus> {
        self.inner.replicas.iter().map(Peer::status).collect()
    }

    /// How each host of the primary stands, in the order given (empty with a single
    /// primary URL).
    ///
    /// ```no_run
    /// # fn demo(pool: rls_tenancy::RoutingPool) {
    /// let primaries = pool.primary_status().iter().filter(|h| h.up && h.in_recovery == Some(false)).count();
    /// # }
    /// ```
    pub fn primary_status(&self) -> Vec<ReplicaStatus> {
        self.inner.primary.status()
    }

    /// Closes every pool.
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::RoutingPool) {
    /// pool.close().await;
    /// # }
    /// ```
    pub async fn close(&self) {
        self.inner.primary.close().await;
        for replica in &self.inner.replicas {
            replica.close().await;
        }
    }
}

/// Polls every replica each `interval` (and checks those down once due) until the pool is
/// gone.
async fn watch(pool: Weak<Inner>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(inner) = pool.upgrade() else {
            return;
        };
        for replica in &inner.replicas {
            replica.tick(&inner.options, inner.check_interval).await;
        }
        inner.primary.tick().await;
    }
}

/// Refuses a replica URL with another role or database than the primary's.
fn same_login(primary: &DatabaseUrl, replica: &DatabaseUrl) -> Result<(), RouteError> {
    for (what, theirs, ours) in [
        ("role", replica.username(), primary.username()),
        ("database", replica.database(), primary.database()),
    ] {
        if theirs != ours {
            return Err(RouteError::ReplicaMismatch {
                replica: replica.redacted(),
                what,
                replica_value: theirs.unwrap_or_default().to_owned(),
                primary_value: ours.unwrap_or_default().to_owned(),
            });
        }
    }
    Ok(())
}

/// A tenant transaction and the server it runs on: a [`TenantTx`] (it dereferences to
/// one, so `&mut **tx` is the sqlx executor) plus [`RoutedTx::served_by`].
///
/// ```no_run
/// # async fn demo(pool: rls_tenancy::RoutingPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
/// let mut tx = pool.read(&scope).await?;
/// let names: Vec<String> = sqlx::query_scalar("SELECT name FROM app.projects").fetch_all(&mut **tx).await?;
/// tx.commit().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RoutedTx {
    tx: TenantTx,
    served_by: ServedBy,
    /// For a write transaction: keeps the task's reads on the primary while it lives.
    write: Option<WriteMark>,
}

impl RoutedTx {
    /// The server the transaction runs on.
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::RoutingPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
    /// assert_eq!(pool.begin(&scope).await?.served_by(), rls_tenancy::ServedBy::Primary);
    /// # Ok(()) }
    /// ```
    pub fn served_by(&self) -> ServedBy {
        self.served_by
    }

    /// Commits (see [`TenantTx::commit`]). Never sent twice: when the connection is lost
    /// while a write transaction's `COMMIT` is under way (its server stopped, a failover),
    /// the outcome is unknown and the error says so.
    ///
    /// # Errors
    /// [`DbError::CommitOutcomeUnknown`] for a write transaction whose connection was lost
    /// during `COMMIT`; else as [`TenantTx::commit`].
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::RoutingPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
    /// pool.begin(&scope).await?.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn commit(self) -> Result<(), DbError> {
        let writing = self.write.is_some();
        match self.tx.commit().await {
            Err(DbError::Database(source)) if writing && is_connection_lost(&source) => {
                Err(DbError::CommitOutcomeUnknown { source })
            }
            done => done,
        }
    }

    /// Rolls back (see [`TenantTx::rollback`]).
    ///
    /// # Errors
    /// As [`TenantTx::rollback`].
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::RoutingPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
    /// pool.read(&scope).await?.rollback().await?;
    /// # Ok(()) }
    /// ```
    pub async fn rollback(self) -> Result<(), DbError> {
        self.tx.rollback().await
    }
}

impl Deref for RoutedTx {
    type Target = TenantTx;

    fn deref(&self) -> &TenantTx {
        &self.tx
    }
}

impl DerefMut for RoutedTx {
    fn deref_mut(&mut self) -> &mut TenantTx {
        &mut self.tx
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    #[test]
    fn a_replica_must_use_the_primarys_role_and_database() {
        let url = |s: &str| s.parse::<DatabaseUrl>().expect("test URLs parse");
        let primary = url("postgres://app:pw@10.0.0.1/app");
        let same = url("postgres://app:pw@10.0.0.2:5433/app");
        let role = url("postgres://admin:pw@10.0.0.2/app");
        let db = url("postgres://app:pw@10.0.0.2/other");
        assert!(matches!(same_login(&primary, &same), Ok(())));
        let refused = same_login(&primary, &role).map_err(|e| e.to_string());
        assert!(
            matches!(&refused, Err(m) if m.contains("role `admin`") && m.contains("`app`") && !m.contains("pw")),
            "{refused:?}"
        );
        let refused = same_login(&primary, &db).map_err(|e| e.to_string());
        assert!(
            matches!(&refused, Err(m) if m.contains("database `other`")),
            "{refused:?}"
        );
    }
}
