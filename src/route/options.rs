//! [`RoutingOptions`]: the replicas of a [`crate::RoutingPool`] and how they are watched.

use std::time::Duration;

use crate::connect::DatabaseUrl;
use crate::db::TenantPoolOptions;

/// How to open a [`crate::RoutingPool`]: the [`TenantPoolOptions`] every server's pool is
/// opened with (the guard runs on each), the replica URLs, the most lag a replica may have
/// and still serve reads, how often a peer found down is checked again, and how long a
/// write waits for a primary to be found among several hosts.
///
/// ```
/// use std::time::Duration;
/// use rls_tenancy::{RoutingOptions, TenancyDeclaration, TenantPoolOptions};
/// let options = RoutingOptions::new(TenantPoolOptions::new(TenancyDeclaration::reference()?))
///     .replica("postgres://app_runtime@10.0.0.2/app".parse()?)
///     .max_replica_lag(Duration::from_secs(5));
/// assert_eq!(options.replicas().len(), 1);
/// assert_eq!(options.get_check_interval(), Duration::from_secs(30));
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RoutingOptions {
    pub(crate) pool: TenantPoolOptions,
    pub(crate) replicas: Vec<DatabaseUrl>,
    pub(crate) max_replica_lag: Option<Duration>,
    pub(crate) check_interval: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) failover_wait: Duration,
    pub(crate) peer_timeout: Duration,
}

impl RoutingOptions {
    /// No replicas (every read on the primary), no lag limit, peers found down checked
    /// again after 30 s, replicas' lag and replay position polled every 250 ms.
    ///
    /// ```
    /// # use rls_tenancy::{RoutingOptions, TenancyDeclaration, TenantPoolOptions};
    /// let options = RoutingOptions::new(TenantPoolOptions::new(TenancyDeclaration::reference()?));
    /// assert!(options.replicas().is_empty());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn new(pool: TenantPoolOptions) -> Self {
        Self {
            pool,
            replicas: Vec::new(),
            max_replica_lag: None,
            check_interval: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
            failover_wait: Duration::from_secs(5),
            peer_timeout: Duration::from_secs(1),
        }
    }

    /// Adds a replica (`--replica-url`, repeatable). It must log in as the primary's role to
    /// the primary's database; only host and port may differ.
    ///
    /// ```
    /// # use rls_tenancy::{RoutingOptions, TenancyDeclaration, TenantPoolOptions};
    /// let options = RoutingOptions::new(TenantPoolOptions::new(TenancyDeclaration::reference()?))
    ///     .replica("postgres://app_runtime@10.0.0.2/app".parse()?)
    ///     .replica("postgres://app_runtime@10.0.0.3/app".parse()?);
    /// assert_eq!(options.replicas().len(), 2);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn replica(mut self, url: DatabaseUrl) -> Self {
        self.replicas.push(url);
        self
    }

    /// The replica URLs.
    ///
    /// ```
    /// # use rls_tenancy::{RoutingOptions, TenancyDeclaration, TenantPoolOptions};
    /// # let options = RoutingOptions::new(TenantPoolOptions::new(TenancyDeclaration::reference()?));
    /// for url in options.replicas() {
    ///     println!("{url}"); // password hidden
    /// }
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn replicas(&self) -> &[DatabaseUrl] {
        &self.replicas
    }

    /// Skips replicas lagging more than `lag` behind the primary (`--max-replica-lag`),
    /// measured on the replica: `now() - pg_last_xact_replay_timestamp()` while it has
    /// received WAL it has not replayed yet, zero when it has replayed all it received.
    ///
    /// ```
    /// # use rls_tenancy::{RoutingOptions, TenancyDeclaration, TenantPoolOptions};
    /// let options = RoutingOptions::new(TenantPoolOptions::new(TenancyDeclaration::reference()?))
    ///     .max_replica_lag(std::time::Duration::from_secs(2));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn max_replica_lag(mut self, lag: Duration) -> Self {
        self.max_replica_lag = Some(lag);
        self
    }

    /// How long a peer found down stays out before it is checked again in the background
    /// (`--check-interval`, default 30 s, as ProxySQL's `CHECK_INTERVAL`).
    ///
    /// ```
    /// # use rls_tenancy::{RoutingOptions, TenancyDeclaration, TenantPoolOptions};
    /// let options = RoutingOptions::new(TenantPoolOptions::new(TenancyDeclaration::reference()?))
    ///     .check_interval(std::time::Duration::from_secs(5));
    /// assert_eq!(options.get_check_interval().as_secs(), 5);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn check_interval(mut self, interval: Duration) -> Self {
        self.check_interval = interval;
        self
    }

    /// The configured check interval.
    ///
    /// ```
    /// # use rls_tenancy::{RoutingOptions, TenancyDeclaration, TenantPoolOptions};
    /// let options = RoutingOptions::new(TenantPoolOptions::new(TenancyDeclaration::reference()?));
    /// assert_eq!(options.get_check_interval().as_secs(), 30);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn get_check_interval(&self) -> Duration {
        self.check_interval
    }

    /// How often each replica's lag and replay position are read (default 250 ms): the
    /// longest a replica that caught up with a pinned write waits to serve it.
    ///
    /// ```
    /// # use rls_tenancy::{RoutingOptions, TenancyDeclaration, TenantPoolOptions};
    /// let options = RoutingOptions::new(TenantPoolOptions::new(TenancyDeclaration::reference()?))
    ///     .poll_interval(std::time::Duration::from_millis(100));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// With several hosts for the primary ([`crate::DatabaseHosts`]): how long a write
    /// waits, when no host is primary, for one to be found (the hosts are checked again
    /// with a growing pause, up to 1 s), before it fails with
    /// [`crate::DbError::Unavailable`]; and how long opening the pool waits for one.
    /// Default 5 s. A single primary URL fails at once, as a [`crate::TenantPool`] does.
    ///
    /// ```
    /// # use rls_tenancy::{RoutingOptions, TenancyDeclaration, TenantPoolOptions};
    /// let options = RoutingOptions::new(TenantPoolOptions::new(TenancyDeclaration::reference()?))
    ///     .failover_wait(std::time::Duration::from_secs(10));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn failover_wait(mut self, wait: Duration) -> Self {
        self.failover_wait = wait;
        self
    }

    /// How long a peer (a replica, or a host of a multi-host primary) may take before the
    /// route step gives up on it and tries another (default 1 s, as ProxySQL's
    /// `connect_timeout_server`): a new connection not had in that time is checked for a
    /// server refusing connections (a peer down, its port closed), which marks the peer
    /// down at once instead of after the acquire timeout; a `BEGIN` not answered in that
    /// time (a paused pgbouncer queues it) is given up and the peer marked down. Nothing of
    /// the transaction has run either way. A pool merely busy is still waited for up to the
    /// acquire timeout. A single primary URL has no other peer and waits as a
    /// [`crate::TenantPool`] does.
    ///
    /// ```
    /// # use rls_tenancy::{RoutingOptions, TenancyDeclaration, TenantPoolOptions};
    /// let options = RoutingOptions::new(TenantPoolOptions::new(TenancyDeclaration::reference()?))
    ///     .peer_timeout(std::time::Duration::from_millis(500));
    /// assert_eq!(options.get_peer_timeout().as_millis(), 500);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn peer_timeout(mut self, timeout: Duration) -> Self {
        self.peer_timeout = timeout;
        self
    }

    /// The configured peer timeout.
    ///
    /// ```
    /// # use rls_tenancy::{RoutingOptions, TenancyDeclaration, TenantPoolOptions};
    /// let options = RoutingOptions::new(TenantPoolOptions::new(TenancyDeclaration::reference()?));
    /// assert_eq!(options.get_peer_timeout().as_secs(), 1);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn get_peer_timeout(&self) -> Duration {
        self.peer_timeout
    }
}
