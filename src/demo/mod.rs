//! `rls-demo`: the subtask list, one page per tenant by subdomain, served with axum.
//!
//! [`Demo::start`] connects to the database given as the runtime role or, with none given,
//! starts an embedded PostgreSQL (a throwaway cluster from the local server binaries),
//! creates the deploy and runtime roles, migrates, and seeds five tenants with the seed
//! library ([`seed_options`]: `tenant-0` .. `tenant-4`, the same data every time; under
//! [`DemoOptions::strategy`] `schema`, each in its own schema, `tenant_0` .. `tenant_4`). Then
//! [`Demo::serve`] answers until its shutdown future completes; the embedded cluster is
//! stopped and removed afterwards.
//!
//! ```no_run
//! use rls_tenancy::demo::{Demo, DemoOptions, shutdown_signal};
//! # async fn demo() -> rls_tenancy::Result<()> {
//! let demo = Demo::start(DemoOptions::new("127.0.0.1:8080".parse().unwrap(), "localhost".parse()?)).await?;
//! for url in demo.tenant_urls() {
//!     println!("open {url}");
//! }
//! demo.serve(shutdown_signal()).await?; // until Ctrl-C
//! # Ok(()) }
//! ```

mod databases;
mod html;
mod item;
mod page;
mod routes;
mod subtasks;
mod tenants;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::response::IntoResponse;
use axum::routing::future::RouteFuture;
use futures_util::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::util::MapFutureLayer;

pub use page::{MAX_PAGE, PageNumber};
pub use routes::{DemoState, router};
pub use subtasks::{
    MAX_OFFSET, MAX_PER_PAGE, SUBTASKS_PER_PAGE, SubtaskItem, SubtaskPage, subtask_page,
    subtask_page_query,
};
pub use tenants::seed_options;

use crate::connect::{ConnectError, DatabaseHosts, DatabaseUrl, ServerSet};
use crate::db::{TenantPoolOptions, TxTimeouts};
use crate::embedded::{
    AdminServer, REFERENCE_MIGRATIONS, REFERENCE_TENANT_MIGRATIONS, ScratchDatabase, ScratchServers,
};
use crate::error::Result;
use crate::http::{AppError, AppState, RequestLimits, Unavailable, WritePinning};
use crate::migrate::{MigrateOptions, migrate_with};
use crate::policy::{Strategy, TenancyDeclaration, TenantKey};
use crate::resolve::{BaseDomain, RegistryOptions};
use crate::route::{RoutingOptions, RoutingPool};
use crate::tenant::TenantSlug;

/// How to run the demo.
///
/// ```
/// use rls_tenancy::demo::DemoOptions;
/// let options = DemoOptions::new("127.0.0.1:0".parse().unwrap(), "localhost".parse()?)
///     .max_connections(4)
///     .shutdown_timeout(std::time::Duration::from_secs(5));
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct DemoOptions {
    database_url: Option<DatabaseHosts>,
    listen: SocketAddr,
    base_domain: BaseDomain,
    max_connections: u32,
    acquire_timeout: Duration,
    timeouts: TxTimeouts,
    limits: RequestLimits,
    shutdown_timeout: Duration,
    replicas: Vec<DatabaseUrl>,
    max_replica_lag: Option<Duration>,
    check_interval: Duration,
    peer_timeout: Option<Duration>,
    failover_wait: Option<Duration>,
    pinning: Option<WritePinning>,
    debug_routing: bool,
    tenant_key_file: Option<PathBuf>,
    strategy: Strategy,
    servers: ServerSet,
}

impl DemoOptions {
    /// Serve on `listen`, tenants under `base_domain`, with an embedded database.
    ///
    /// ```
    /// # use rls_tenancy::demo::DemoOptions;
    /// let options = DemoOptions::new("127.0.0.1:8080".parse().unwrap(), "localhost".parse()?);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn new(listen: SocketAddr, base_domain: BaseDomain) -> Self {
        Self {
            database_url: None,
            listen,
            base_domain,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(2),
            timeouts: TxTimeouts::default(),
            limits: RequestLimits::default(),
            shutdown_timeout: Duration::from_secs(10),
            replicas: Vec::new(),
            max_replica_lag: None,
            check_interval: Duration::from_secs(30),
            peer_timeout: None,
            failover_wait: None,
            pinning: None,
            debug_routing: false,
            tenant_key_file: None,
            strategy: Strategy::Rls,
            servers: ServerSet::default(),
        }
    }

    /// Where the tenants' rows live (`--strategy`, default [`Strategy::Rls`]). Under
    /// [`Strategy::Schema`] each tenant's pages come from its own schema; the embedded
    /// database is then migrated for it and seeded with a schema per tenant.
    ///
    /// ```
    /// # use rls_tenancy::demo::DemoOptions;
    /// let options = DemoOptions::new("127.0.0.1:8080".parse().unwrap(), "localhost".parse()?)
    ///     .strategy(rls_tenancy::Strategy::Schema);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Under [`Strategy::Database`] with [`DemoOptions::database_url`] (the control database
    /// holding the registry): the servers the tenant databases are on, each URL logging in as
    /// the runtime role (`--server NAME=URL`, `RLS_SERVERS`, `[[server]]` in `--config`; a
    /// server's `max_connections` bounds its share of the budget). The embedded demo starts
    /// its own two.
    ///
    /// ```
    /// # use rls_tenancy::demo::DemoOptions;
    /// let options = DemoOptions::new("127.0.0.1:8080".parse().unwrap(), "localhost".parse()?)
    ///     .strategy(rls_tenancy::Strategy::Database)
    ///     .database_url("postgres://app_runtime:pw@control/app".parse()?)
    ///     .servers(rls_tenancy::ServerSet::parse_list("eu1=postgres://app_runtime:pw@db1/postgres")?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn servers(mut self, servers: ServerSet) -> Self {
        self.servers = servers;
        self
    }

    /// The tenant key file `rls-migrate --tenant-key-file` installed, for a database given
    /// with [`DemoOptions::database_url`] that has the signed tenant context. The embedded
    /// database needs none: the demo makes its own key.
    ///
    /// ```
    /// # use rls_tenancy::demo::DemoOptions;
    /// let options = DemoOptions::new("127.0.0.1:8080".parse().unwrap(), "localhost".parse()?)
    ///     .tenant_key_file("/etc/rls-demo/tenant.key");
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn tenant_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tenant_key_file = Some(path.into());
        self
    }

    /// Serve the subtask API's reads from these replicas (`--replica-url`), lagging no more
    /// than `max_lag` if given (`--max-replica-lag`), a replica found down checked again
    /// after `check_interval` (`--check-interval`). Needs [`DemoOptions::database_url`].
    ///
    /// ```
    /// # use rls_tenancy::demo::DemoOptions;
    /// use std::time::Duration;
    /// let options = DemoOptions::new("127.0.0.1:8080".parse().unwrap(), "localhost".parse()?)
    ///     .database_url("postgres://app_runtime:pw@10.0.0.1/app".parse()?)
    ///     .replicas(vec!["postgres://app_runtime:pw@10.0.0.2/app".parse()?], Some(Duration::from_secs(2)), Duration::from_secs(30));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn replicas(
        mut self,
        urls: Vec<DatabaseUrl>,
        max_lag: Option<Duration>,
        check_interval: Duration,
    ) -> Self {
        self.replicas = urls;
        self.max_replica_lag = max_lag;
        self.check_interval = check_interval;
        self
    }

    /// How long a replica, or a host of the primary, may take to give a connection or to
    /// answer a `BEGIN` before it is marked down and another is tried (`--peer-timeout`;
    /// default [`RoutingOptions::peer_timeout`]'s 1 s).
    ///
    /// ```
    /// # use rls_tenancy::demo::DemoOptions;
    /// let options = DemoOptions::new("127.0.0.1:8080".parse().unwrap(), "localhost".parse()?)
    ///     .peer_timeout(std::time::Duration::from_millis(250));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn peer_timeout(mut self, timeout: Duration) -> Self {
        self.peer_timeout = Some(timeout);
        self
    }

    /// With several hosts for the primary ([`DemoOptions::database_hosts`]): how long a
    /// write waits for a host to be found primary (`--failover-wait`; default
    /// [`RoutingOptions::failover_wait`]'s 5 s).
    ///
    /// ```
    /// # use rls_tenancy::demo::DemoOptions;
    /// let options = DemoOptions::new("127.0.0.1:8080".parse().unwrap(), "localhost".parse()?)
    ///     .failover_wait(std::time::Duration::from_secs(10));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn failover_wait(mut self, wait: Duration) -> Self {
        self.failover_wait = Some(wait);
        self
    }

    /// The write-pinning cookie (default: [`WritePinning::new`] with a key drawn at start).
    ///
    /// ```
    /// # use rls_tenancy::demo::DemoOptions;
    /// use rls_tenancy::http::{PinKey, WritePinning};
    /// let options = DemoOptions::new("127.0.0.1:8080".parse().unwrap(), "localhost".parse()?)
    ///     .pinning(WritePinning::new(PinKey::new(&[7u8; 32])?));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pinning(mut self, pinning: WritePinning) -> Self {
        self.pinning = Some(pinning);
        self
    }

    /// Name the server that served each subtask API response in `x-served-by`
    /// (`--debug-routing`).
    ///
    /// ```
    /// # use rls_tenancy::demo::DemoOptions;
    /// let options = DemoOptions::new("127.0.0.1:8080".parse().unwrap(), "localhost".parse()?)
    ///     .debug_routing(true);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn debug_routing(mut self, on: bool) -> Self {
        self.debug_routing = on;
        self
    }

    /// Use this database, logging in as the runtime role, instead of an embedded one.
    ///
    /// ```
    /// # use rls_tenancy::demo::DemoOptions;
    /// let options = DemoOptions::new("127.0.0.1:8080".parse().unwrap(), "localhost".parse()?)
    ///     .database_url("postgres://app_runtime:pw@127.0.0.1/app".parse()?);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn database_url(mut self, url: DatabaseUrl) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// Use this database through several hosts (`--database-url` with libpq's multi-host
    /// form, `postgres://app_runtime:pw@h1:5432,h2:5433/app`): writes go to the host that
    /// is primary and follow a promotion (see [`RoutingPool::connect_hosts`]).
    ///
    /// ```
    /// # use rls_tenancy::demo::DemoOptions;
    /// let options = DemoOptions::new("127.0.0.1:8080".parse().unwrap(), "localhost".parse()?)
    ///     .database_hosts("postgres://app_runtime:pw@10.0.0.1:5432,10.0.0.2:5432/app".parse()?);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn database_hosts(mut self, hosts: DatabaseHosts) -> Self {
        self.database_url = Some(hosts);
        self
    }

    /// The most database connections the server opens (default 10). Under
    /// [`Strategy::Database`], the budget of connections to tenant databases over all
    /// servers (the control database's pool of 4 comes on top).
    ///
    /// ```
    /// # use rls_tenancy::demo::DemoOptions;
    /// let options = DemoOptions::new("127.0.0.1:8080".parse().unwrap(), "localhost".parse()?)
    ///     .max_connections(16);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// How long a request waits for a free database connection before its 503 (default
    /// 2 s).
    ///
    /// ```
    /// # use rls_tenancy::demo::DemoOptions;
    /// let options = DemoOptions::new("127.0.0.1:8080".parse().unwrap(), "localhost".parse()?)
    ///     .acquire_timeout(std::time::Duration::from_millis(500));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The statement, lock and idle-in-transaction timeouts of every tenant transaction
    /// (default [`TxTimeouts::default`]).
    ///
    /// ```
    /// # use rls_tenancy::demo::DemoOptions;
    /// use rls_tenancy::TxTimeouts;
    /// let options = DemoOptions::new("127.0.0.1:8080".parse().unwrap(), "localhost".parse()?)
    ///     .timeouts(TxTimeouts::default().statement(std::time::Duration::from_secs(2)));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn timeouts(mut self, timeouts: TxTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// The pages' request deadline and in-flight bound (default [`RequestLimits::default`]).
    ///
    /// ```
    /// # use rls_tenancy::demo::DemoOptions;
    /// use rls_tenancy::http::RequestLimits;
    /// let options = DemoOptions::new("127.0.0.1:8080".parse().unwrap(), "localhost".parse()?)
    ///     .limits(RequestLimits::default().max_in_flight(100));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn limits(mut self, limits: RequestLimits) -> Self {
        self.limits = limits;
        self
    }

    /// How long [`Demo::serve`] lets requests in flight finish once shutdown begins before
    /// it cuts them (default 10 s).
    ///
    /// ```
    /// # use rls_tenancy::demo::DemoOptions;
    /// let options = DemoOptions::new("127.0.0.1:8080".parse().unwrap(), "localhost".parse()?)
    ///     .shutdown_timeout(std::time::Duration::from_secs(30));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }
}

/// A demo server that is set up and listening, ready to [`serve`](Demo::serve).
///
/// Dropping it (or returning from `serve`) closes the pool, drops the embedded database
/// and then stops and removes the embedded cluster, in that order.
///
/// ```no_run
/// use rls_tenancy::demo::{Demo, DemoOptions};
/// # async fn demo() -> rls_tenancy::Result<()> {
/// let options = DemoOptions::new("127.0.0.1:0".parse().unwrap(), "localhost".parse()?);
/// let demo = Demo::start(options).await?; // embedded: a cluster, roles, schema, 5 tenants
/// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
/// let server = tokio::spawn(demo.serve(async { let _ = stopped.await; }));
/// stop.send(()).ok();
/// server.await.expect("server task")?; // the cluster is gone now
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Demo {
    listener: TcpListener,
    state: DemoState,
    pool: RoutingPool,
    landing_url: String,
    tenant_urls: Vec<String>,
    shutdown_timeout: Duration,
    /// Each seeded tenant's server, in the order of `tenant_urls` (embedded database mode).
    tenant_servers: Vec<String>,
    embedded: Embedded,
}

/// What the embedded mode started, dropped in field order: the databases before the servers
/// that hold them.
#[derive(Debug, Default)]
struct Embedded {
    db: Option<ScratchDatabase>,
    servers: Option<ScratchServers>,
    server: Option<AdminServer>,
}

impl Demo {
    /// Binds the listener, then connects to the database or sets up the embedded one.
    ///
    /// # Errors
    /// An I/O error when the address cannot be bound; [`crate::ConnectError`] when the
    /// database refuses; [`crate::HarnessError::NoPostgres`] when no embedded server can be started;
    /// a migration or database error while setting it up.
    ///
    /// ```no_run
    /// # use rls_tenancy::demo::{Demo, DemoOptions};
    /// # async fn demo(options: DemoOptions) -> rls_tenancy::Result<()> {
    /// let demo = Demo::start(options).await?;
    /// println!("listening on {}", demo.local_addr());
    /// # Ok(()) }
    /// ```
    pub async fn start(options: DemoOptions) -> Result<Self> {
        let listener = TcpListener::bind(options.listen).await?;
        let port = listener.local_addr()?.port();
        let declaration = TenancyDeclaration::reference()?.with_strategy(options.strategy);
        let mut pool_options = TenantPoolOptions::new(declaration.clone())
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .timeouts(options.timeouts);
        if let Some(path) = options.tenant_key_file.clone() {
            pool_options = pool_options.tenant_key_file(path);
        }
        let mut embedded = Embedded::default();
        let (routing, slugs) = match declaration.strategy() {
            Strategy::Database => connect_databases(&options, pool_options, &mut embedded).await?,
            _ => connect_one(options.clone(), pool_options, &declaration, &mut embedded).await?,
        };
        let pool = routing.primary().clone();
        let registry = pool.registry(RegistryOptions::default());
        let base = options.base_domain;
        let site = |host: &str| match port {
            80 => format!("http://{host}/"),
            _ => format!("http://{host}:{port}/"),
        };
        let tenant_urls: Vec<String> = slugs
            .iter()
            .map(|(slug, _)| site(&format!("{slug}.{base}")))
            .collect();
        let landing_url = site(base.as_str());
        let mut state = DemoState::new(AppState::new(pool, registry, base), tenant_urls.clone())
            .with_limits(options.limits)
            .with_routing(routing.clone())
            .with_debug_routing(options.debug_routing);
        if let Some(pinning) = options.pinning {
            state = state.with_pinning(pinning);
        }
        let tenant_servers = slugs
            .iter()
            .filter_map(|(_, server)| server.clone())
            .collect();
        Ok(Self {
            listener,
            state,
            pool: routing,
            landing_url,
            tenant_urls,
            shutdown_timeout: options.shutdown_timeout,
            tenant_servers,
            embedded,
        })
    }

    /// The address the server listens on.
    ///
    /// ```no_run
    /// # fn demo(demo: rls_tenancy::demo::Demo) {
    /// println!("{}", demo.local_addr());
    /// # }
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        // A bound listener always has an address; fall back to the unspecified one if not.
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    /// The landing page's URL, on the bare base domain.
    ///
    /// ```no_run
    /// # fn demo(demo: rls_tenancy::demo::Demo) {
    /// assert_eq!(demo.landing_url(), "http://localhost:8080/");
    /// # }
    /// ```
    pub fn landing_url(&self) -> &str {
        &self.landing_url
    }

    /// The URLs of the seeded tenants, `tenant-0` first (embedded mode only; empty with a
    /// database URL).
    ///
    /// ```no_run
    /// # fn demo(demo: rls_tenancy::demo::Demo) {
    /// assert_eq!(demo.tenant_urls()[1], "http://tenant-1.localhost:8080/");
    /// # }
    /// ```
    pub fn tenant_urls(&self) -> &[String] {
        &self.tenant_urls
    }

    /// The embedded cluster's directory, removed when the demo ends; `None` with a database
    /// URL.
    ///
    /// ```no_run
    /// # fn demo(demo: rls_tenancy::demo::Demo) {
    /// if let Some(dir) = demo.cluster_dir() {
    ///     println!("embedded PostgreSQL in {}", dir.display());
    /// }
    /// # }
    /// ```
    pub fn cluster_dir(&self) -> Option<&Path> {
        self.embedded
            .server
            .as_ref()
            .and_then(AdminServer::cluster_dir)
    }

    /// The second embedded cluster's directory under [`Strategy::Database`] (server `two`);
    /// `None` otherwise.
    ///
    /// ```no_run
    /// # fn demo(demo: rls_tenancy::demo::Demo) {
    /// if let Some(dir) = demo.second_cluster_dir() {
    ///     println!("server two in {}", dir.display());
    /// }
    /// # }
    /// ```
    pub fn second_cluster_dir(&self) -> Option<&Path> {
        self.embedded
            .servers
            .as_ref()
            .and_then(|bed| bed.second().cluster_dir())
    }

    /// The server each seeded tenant's database is on, in the order of
    /// [`Demo::tenant_urls`] (embedded mode under [`Strategy::Database`]; empty otherwise).
    ///
    /// ```no_run
    /// # fn demo(demo: rls_tenancy::demo::Demo) {
    /// for (url, server) in demo.tenant_urls().iter().zip(demo.tenant_servers()) {
    ///     println!("{url} on server {server}");
    /// }
    /// # }
    /// ```
    pub fn tenant_servers(&self) -> &[String] {
        &self.tenant_servers
    }

    /// Serves until `shutdown` completes, then stops accepting and lets requests in flight
    /// finish for up to the shutdown timeout; requests still running then are cut (a 503
    /// with `Retry-After`; their transactions roll back). Then it closes the pool and
    /// removes the embedded database and cluster, whichever way serving ended.
    ///
    /// # Errors
    /// An I/O error from the listener.
    ///
    /// ```no_run
    /// # async fn demo(demo: rls_tenancy::demo::Demo) -> rls_tenancy::Result<()> {
    /// demo.serve(rls_tenancy::demo::shutdown_signal()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn serve<F>(self, shutdown: F) -> Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Self {
            listener,
            state,
            pool,
            shutdown_timeout,
            embedded,
            ..
        } = self;
        let cut = CancellationToken::new();
        let app = router(state).layer(cut_when_cancelled(cut.clone()));
        let (stopping, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stopping.send(());
        });
        let served = drain(server.into_future(), stopped, shutdown_timeout, &cut).await;
        if tokio::time::timeout(POOL_CLOSE_TIMEOUT, pool.close())
            .await
            .is_err()
        {
            tracing::warn!("database connections did not close in time; leaving them to exit");
        }
        drop(embedded);
        tracing::info!("rls-demo stopped");
        Ok(served?)
    }
}

/// How long closing the pool may take at the end of [`Demo::serve`].
const POOL_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connections get to close after the requests in flight were cut.
const AFTER_CUT_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs `server` to its end; once `stopped` fires, gives it `deadline` to drain before
/// cutting the requests still in flight through `cut`.
async fn drain(
    server: impl Future<Output = std::io::Result<()>>,
    stopped: tokio::sync::oneshot::Receiver<()>,
    deadline: Duration,
    cut: &CancellationToken,
) -> std::io::Result<()> {
    tokio::pin!(server);
    let deadline_passed = async {
        match stopped.await {
            Ok(()) => tokio::time::sleep(deadline).await,
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        served = &mut server => served,
        () = deadline_passed => {
            tracing::warn!(?deadline, "shutdown deadline passed: cutting the requests still in flight");
            cut.cancel();
            tokio::time::timeout(AFTER_CUT_TIMEOUT, server).await.unwrap_or(Ok(()))
        }
    }
}

/// The future of one request, as the router's layers see it.
type Answer =
    BoxFuture<'static, std::result::Result<axum::response::Response, std::convert::Infallible>>;

/// A layer that answers 503 (`Unavailable::ShuttingDown`) for every request still running
/// when `cut` is cancelled, dropping its handler: its tenant transaction rolls back.
fn cut_when_cancelled(
    cut: CancellationToken,
) -> MapFutureLayer<impl Fn(RouteFuture<std::convert::Infallible>) -> Answer + Clone> {
    MapFutureLayer::new(move |request: RouteFuture<std::convert::Infallible>| {
        let cut = cut.clone();
        Box::pin(async move {
            tokio::select! {
                response = request => response,
                () = cut.cancelled() => Ok(AppError::from(Unavailable::ShuttingDown).into_response()),
            }
        }) as Answer
    })
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM.
///
/// ```no_run
/// # async fn demo() {
/// rls_tenancy::demo::shutdown_signal().await;
/// println!("shutting down");
/// # }
/// ```
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; use Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        result = tokio::signal::ctrl_c() => {
            if let Err(e) = result {
                tracing::warn!(error = %e, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
        }
        () = terminate => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// The seeded tenants and, under the database strategy, their servers.
type Seeded = Vec<(TenantSlug, Option<String>)>;

/// The RLS and schema strategies: one database (several hosts, replicas), given or embedded.
async fn connect_one(
    options: DemoOptions,
    mut pool_options: TenantPoolOptions,
    declaration: &TenancyDeclaration,
    embedded: &mut Embedded,
) -> Result<(RoutingPool, Seeded)> {
    let (runtime_url, slugs) = match options.database_url {
        Some(url) => (url, Vec::new()),
        None => {
            let key = TenantKey::generate();
            let (db, server, slugs) = start_embedded(&key, declaration).await?;
            pool_options = pool_options.tenant_key(key);
            let url = DatabaseHosts::from(db.runtime_url().clone());
            embedded.db = Some(db);
            embedded.server = Some(server);
            (url, slugs)
        }
    };
    let mut routing_options = options
        .replicas
        .into_iter()
        .fold(RoutingOptions::new(pool_options), RoutingOptions::replica)
        .check_interval(options.check_interval);
    if let Some(lag) = options.max_replica_lag {
        routing_options = routing_options.max_replica_lag(lag);
    }
    if let Some(timeout) = options.peer_timeout {
        routing_options = routing_options.peer_timeout(timeout);
    }
    if let Some(wait) = options.failover_wait {
        routing_options = routing_options.failover_wait(wait);
    }
    let routing = RoutingPool::connect_hosts(&runtime_url, routing_options).await?;
    Ok((
        routing,
        slugs.into_iter().map(|slug| (slug, None)).collect(),
    ))
}

/// The database strategy: the control database and the servers given, or two embedded
/// servers with the demo's tenants seeded over them. Read replicas are the RLS and schema
/// strategies' (a tenant database's replicas would be named per server).
async fn connect_databases(
    options: &DemoOptions,
    pool_options: TenantPoolOptions,
    embedded: &mut Embedded,
) -> Result<(RoutingPool, Seeded)> {
    if !options.replicas.is_empty() {
        return Err(crate::PlacementError::OneDatabase.into());
    }
    let (budget, acquire) = (options.max_connections, options.acquire_timeout);
    let (pool, seeded) = match &options.database_url {
        Some(hosts) => {
            if hosts.urls().len() > 1 {
                return Err(ConnectError::SeveralHosts {
                    count: hosts.urls().len(),
                }
                .into());
            }
            let pool = databases::connect(
                hosts.first(),
                &options.servers,
                pool_options,
                budget,
                acquire,
            )
            .await?;
            (pool, Vec::new())
        }
        None => {
            let started = databases::start_embedded().await?;
            let bed = &started.bed;
            let pool = databases::connect(
                bed.control().runtime_url(),
                bed.runtime_servers(),
                pool_options.tenant_key(bed.tenant_key().clone()),
                budget,
                acquire,
            )
            .await?;
            let seeded = started
                .tenants
                .into_iter()
                .map(|(slug, server)| (slug, Some(server)))
                .collect();
            embedded.servers = Some(started.bed);
            embedded.server = Some(started.first);
            (pool, seeded)
        }
    };
    Ok((RoutingPool::primary_only(pool), seeded))
}

/// Starts a private cluster, creates the roles and database, migrates it for `declaration`
/// with the signed tenant context and `key`, and seeds it with rls-seed's library (under the
/// schema strategy, a schema per tenant).
async fn start_embedded(
    key: &TenantKey,
    declaration: &TenancyDeclaration,
) -> Result<(ScratchDatabase, AdminServer, Vec<TenantSlug>)> {
    tracing::info!("no DATABASE_URL: starting an embedded PostgreSQL");
    let server = AdminServer::start_local().await?;
    let db = ScratchDatabase::create_on(server.clone()).await?;
    let options = MigrateOptions::new(db.deploy_url().clone(), db.runtime_role().as_str())?
        .tenant_key(key.clone());
    migrate_with(&REFERENCE_MIGRATIONS, declaration, &options).await?;
    let mut seeding = seed_options();
    if declaration.strategy() == Strategy::Schema {
        seeding =
            seeding.in_tenant_schemas(&REFERENCE_TENANT_MIGRATIONS, db.runtime_role().as_str());
    }
    let slugs = tenants::seed_tenants(db.deploy_url(), &seeding).await?;
    tracing::info!(tenants = slugs.len(), "embedded database ready");
    Ok((db, server, slugs))
}
