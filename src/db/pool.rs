//! [`TenantPool`]: the runtime role's connection pool, which only hands out tenant
//! transactions.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, Postgres};

use super::begin::BeginPlan;
use super::databases::Databases;
use super::health::{self, Health, is_connection_lost};
use super::recycle::Recycler;
use super::release::{check_installed, clean_settings, release_check};
use super::{DbError, PoolSetOptions, PoolSetStats, TenantTx, TxOptions, TxTimeouts};
use crate::connect::{ConnectError, DatabaseUrl, ServerSet};
use crate::guard::{self, GuardOptions};
use crate::placement::{DatabaseDirectory, Placement, PlacementError};
#[cfg(feature = "seed")]
use crate::placement::{SchemaName, search_path};
use crate::policy::{
    Strategy, TenancyDeclaration, TenantContext, TenantContextMode, TenantKey, TenantVariable,
    owner_signed_entry, quote_literal, signed_context_installed,
};
use crate::resolve::{RegistryOptions, TenantRegistry};
use crate::tenant::TenantId;
use crate::tenant::TenantScope;

mod peer;

/// How to open a [`TenantPool`] for the schema a [`TenancyDeclaration`] describes.
///
/// The [guard](crate::guard) runs when the pool opens, with [`GuardOptions::new`] for the
/// declaration unless [`TenantPoolOptions::guard`] says otherwise;
/// [`TenantPoolOptions::skip_guard`] turns it off.
///
/// ```
/// use rls_tenancy::{TenancyDeclaration, TenantPoolOptions};
/// let options = TenantPoolOptions::new(TenancyDeclaration::reference()?).max_connections(4);
/// assert_eq!(options.variable().as_str(), "app.tenant_id");
/// assert!(options.runs_guard());
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TenantPoolOptions {
    declaration: TenancyDeclaration,
    max_connections: u32,
    acquire_timeout: Duration,
    timeouts: TxTimeouts,
    variable: TenantVariable,
    guard: GuardSetting,
    tenant_key: Option<KeySource>,
    recycle_after: usize,
    peer_timeout: Option<Duration>,
    pool_set: PoolSetOptions,
}

/// Where the pool gets the key that signs its transactions' tenant.
#[derive(Debug, Clone)]
enum KeySource {
    /// A key the application holds.
    Key(Arc<TenantKey>),
    /// A key file, read when the pool opens.
    File(PathBuf),
}

/// How the pool's transactions enter their tenant's context.
#[derive(Debug, Clone)]
pub(super) enum Entry {
    /// `set_config` of the tenant variable: the database has the plain context.
    Plain,
    /// `rls_tenancy.enter` with the application's signature.
    Signed(Arc<TenantKey>),
    /// `rls_tenancy.enter` signed in the database by the deploy role, which can read the keys.
    OwnerSigned,
}

/// How the guard's transaction begins behind a transaction-mode pooler: `DEALLOCATE ALL`
/// clears the named statements another client left on the server connection, which would
/// clash with the guard's.
const POOLER_GUARD_BEGIN: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; DEALLOCATE ALL";

/// What opening the pool does about the guard.
#[derive(Debug, Clone)]
pub(super) enum GuardSetting {
    /// Run it; refuse to open on any refusing finding.
    Run(Box<GuardOptions>),
    /// Do not run it, and warn: nothing checks the role.
    Skipped,
    /// The deploy role writing through tenant transactions: the guard does not apply.
    DeployRoleWriter,
}

impl TenantPoolOptions {
    /// Options for the schema `declaration` describes: at most 10 connections, a 2 s
    /// acquire timeout, [`TxTimeouts::default`] (5 s statement, 2 s lock, 10 s idle in
    /// transaction), the tenant variable `app.tenant_id`, the guard on.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantPoolOptions};
    /// let options = TenantPoolOptions::new(TenancyDeclaration::from_file("policies/tenancy.toml")?);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn new(declaration: TenancyDeclaration) -> Self {
        let guard = GuardSetting::Run(Box::new(GuardOptions::new(declaration.clone())));
        Self {
            declaration,
            max_connections: 10,
            acquire_timeout: Duration::from_secs(2),
            timeouts: TxTimeouts::default(),
            variable: TenantVariable::default(),
            guard,
            tenant_key: None,
            recycle_after: Self::DEFAULT_RECYCLE_AFTER,
            peer_timeout: None,
            pool_set: PoolSetOptions::default(),
        }
    }

    /// The default of [`TenantPoolOptions::recycle_after`]: 500 tenants, about 17 MB of
    /// relation cache per connection in the reference schema (BENCHMARKS.md).
    pub const DEFAULT_RECYCLE_AFTER: usize = 500;

    /// Under [`crate::Strategy::Schema`], closes a connection on release once it has served
    /// more than `tenants` distinct tenants (default [`Self::DEFAULT_RECYCLE_AFTER`]): a
    /// server connection caches every relation it opened for life, so one that serves every
    /// tenant schema grows with their number; the pool opens a fresh one when it needs it.
    /// The RLS mode has one set of tables and recycles nothing.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantPoolOptions};
    /// let options = TenantPoolOptions::new(TenancyDeclaration::reference()?).recycle_after(200);
    /// assert_eq!(options.get_recycle_after(), 200);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn recycle_after(mut self, tenants: usize) -> Self {
        self.recycle_after = tenants.max(1);
        self
    }

    /// The configured [`TenantPoolOptions::recycle_after`].
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantPoolOptions};
    /// let options = TenantPoolOptions::new(TenancyDeclaration::reference()?);
    /// assert_eq!(options.get_recycle_after(), TenantPoolOptions::DEFAULT_RECYCLE_AFTER);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn get_recycle_after(&self) -> usize {
        self.recycle_after
    }

    /// Signs every transaction's tenant with `key`, the key `rls-migrate --tenant-key-file`
    /// installed: needed when the database has the signed tenant context (the default).
    /// Opening the pool checks the key with one signed transaction and fails with
    /// [`DbError::TenantContext`] when the database does not accept it.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantKey, TenantPoolOptions};
    /// let options = TenantPoolOptions::new(TenancyDeclaration::reference()?).tenant_key(TenantKey::generate());
    /// assert!(options.signs_tenant());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn tenant_key(mut self, key: TenantKey) -> Self {
        self.tenant_key = Some(KeySource::Key(Arc::new(key)));
        self
    }

    /// As [`TenantPoolOptions::tenant_key`], with the key read from the key file at `path`
    /// when the pool opens (`--tenant-key-file`, `RLS_TENANT_KEY_FILE`); an unreadable or
    /// malformed file fails the opening with [`DbError::TenantKey`].
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantPoolOptions};
    /// let options = TenantPoolOptions::new(TenancyDeclaration::reference()?)
    ///     .tenant_key_file("/etc/myapp/tenant.key");
    /// assert!(options.signs_tenant());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn tenant_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.tenant_key = Some(KeySource::File(path.into()));
        self
    }

    /// Whether a tenant key was given.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantPoolOptions};
    /// assert!(!TenantPoolOptions::new(TenancyDeclaration::reference()?).signs_tenant());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn signs_tenant(&self) -> bool {
        self.tenant_key.is_some()
    }

    /// The most connections the pool opens (default 10).
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantPoolOptions};
    /// let options = TenantPoolOptions::new(TenancyDeclaration::reference()?).max_connections(1);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long `begin` waits for a free connection (default 2 s) before it fails with a
    /// 503-worthy `PoolTimedOut`. While the database is known to be down, `begin` fails at
    /// once instead (or, for the one request probing it, within half a second).
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantPoolOptions};
    /// let options = TenantPoolOptions::new(TenancyDeclaration::reference()?).acquire_timeout(std::time::Duration::from_secs(2));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The statement, lock and idle-in-transaction timeouts every tenant transaction sets
    /// in its `BEGIN` round trip (default [`TxTimeouts::default`]).
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantPoolOptions, TxTimeouts};
    /// let options = TenantPoolOptions::new(TenancyDeclaration::reference()?)
    ///     .timeouts(TxTimeouts::default().statement(std::time::Duration::from_secs(30)));
    /// assert_eq!(options.get_timeouts().get_statement().as_secs(), 30);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn timeouts(mut self, timeouts: TxTimeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Makes the pool one peer among others (a replica, or a host of the primary, of a
    /// [`crate::RoutingPool`]), which must fail fast so another peer is tried (the module
    /// `db::pool::peer`): `timeout` bounds a new connection and a `BEGIN`'s answer.
    pub(crate) fn peer_timeout(mut self, timeout: Duration) -> Self {
        self.peer_timeout = Some(timeout);
        self
    }

    /// The configured transaction timeouts.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantPoolOptions};
    /// let options = TenantPoolOptions::new(TenancyDeclaration::reference()?);
    /// assert_eq!(options.get_timeouts().get_lock().as_secs(), 2);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn get_timeouts(&self) -> TxTimeouts {
        self.timeouts
    }

    /// The setting the policies read (default `app.tenant_id`).
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantPoolOptions, TenantVariable};
    /// let options = TenantPoolOptions::new(TenancyDeclaration::reference()?).tenant_variable(TenantVariable::parse("myapp.tenant")?);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn tenant_variable(mut self, variable: TenantVariable) -> Self {
        self.variable = variable;
        self
    }

    /// Runs the guard with these options when the pool opens (it always checks the pool's
    /// own tenant variable).
    ///
    /// ```
    /// # use rls_tenancy::{GuardOptions, TenancyDeclaration, TenantPoolOptions};
    /// let options = TenantPoolOptions::new(TenancyDeclaration::reference()?)
    ///     .guard(GuardOptions::new(TenancyDeclaration::reference()?).allow_security_definer("app.resolve_slug"));
    /// assert!(options.runs_guard());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn guard(mut self, options: GuardOptions) -> Self {
        self.guard = GuardSetting::Run(Box::new(options));
        self
    }

    /// Opens the pool without running the guard. Only for a role checked some other way
    /// (for example by `rls-check` in the deployment pipeline): every pool opened so logs a
    /// warning, since nothing stops a role that can get around row-level security.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantPoolOptions};
    /// let options = TenantPoolOptions::new(TenancyDeclaration::reference()?).skip_guard();
    /// assert!(!options.runs_guard());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn skip_guard(mut self) -> Self {
        self.guard = GuardSetting::Skipped;
        self
    }

    /// Opens a pool for the *deploy* role's cross-tenant writing (seeding, fixtures): each
    /// tenant's rows still go through that tenant's transaction, so the policies vet every
    /// row (the deploy role owns the tables, and FORCE applies to owners). The guard, which
    /// checks a role fit to *serve* requests, would rightly refuse the owner, so only its
    /// check that policies apply at all runs: a superuser or `BYPASSRLS` login is still
    /// refused ([`Error::GuardRefused`]). Every pool opened so logs a warning, since it is
    /// not a pool to serve requests with.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantPoolOptions};
    /// let options = TenantPoolOptions::new(TenancyDeclaration::reference()?).deploy_role_writer();
    /// assert!(!options.runs_guard());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn deploy_role_writer(mut self) -> Self {
        self.guard = GuardSetting::DeployRoleWriter;
        self
    }

    /// Whether opening the pool runs the guard.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantPoolOptions};
    /// assert!(TenantPoolOptions::new(TenancyDeclaration::reference()?).runs_guard());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn runs_guard(&self) -> bool {
        matches!(self.guard, GuardSetting::Run(_))
    }

    /// The declaration the pool serves.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantPoolOptions};
    /// let options = TenantPoolOptions::new(TenancyDeclaration::reference()?);
    /// assert_eq!(options.declaration().schema().as_str(), "app");
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn declaration(&self) -> &TenancyDeclaration {
        &self.declaration
    }

    /// The budgets of the tenant databases' pools under [`crate::Strategy::Database`]
    /// ([`TenantPool::connect_servers`]; default [`PoolSetOptions::default`]: 100
    /// connections in total, 2 per database). The control pool's
    /// [`TenantPoolOptions::max_connections`] come on top.
    ///
    /// ```
    /// # use rls_tenancy::{PoolSetOptions, TenancyDeclaration, TenantPoolOptions};
    /// let options = TenantPoolOptions::new(TenancyDeclaration::reference()?)
    ///     .pool_set(PoolSetOptions::default().max_connections(50));
    /// assert_eq!(options.get_pool_set().get_max_connections(), 50);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn pool_set(mut self, options: PoolSetOptions) -> Self {
        self.pool_set = options;
        self
    }

    /// The configured tenant databases' budgets.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantPoolOptions};
    /// let options = TenantPoolOptions::new(TenancyDeclaration::reference()?);
    /// assert_eq!(options.get_pool_set().get_max_per_database(), 2);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn get_pool_set(&self) -> &PoolSetOptions {
        &self.pool_set
    }

    /// The configured tenant variable.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantPoolOptions};
    /// assert_eq!(TenantPoolOptions::new(TenancyDeclaration::reference()?).variable().as_str(), "app.tenant_id");
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn variable(&self) -> &TenantVariable {
        &self.variable
    }
}

/// The runtime role's pool. Its only way to run a statement is a [`TenantTx`] for one tenant.
///
/// ```no_run
/// use rls_tenancy::{TenancyDeclaration, TenantPool, TenantPoolOptions, TenantScope, TenantId};
/// # async fn demo() -> rls_tenancy::Result<()> {
/// let url = "postgres://app_runtime:pw@127.0.0.1/app".parse()?;
/// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?;
/// let pool = TenantPool::connect(&url, TenantPoolOptions::new(decl)).await?;
/// let scope = TenantScope::new(TenantId::new(1)?, "tenant-1".parse()?);
/// let mut tx = pool.begin(&scope).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TenantPool {
    pool: PgPool,
    declaration: Arc<TenancyDeclaration>,
    context: TenantContext,
    entry: Entry,
    timeouts: TxTimeouts,
    release_check: Arc<str>,
    health: Arc<Health>,
    pooler: bool,
    placement: Placement,
    recycler: Option<Arc<Recycler>>,
    /// For a peer's pool: how long a new connection or a `BEGIN`'s answer may take.
    peer_timeout: Option<Duration>,
    /// Under the database strategy: each tenant's database, through a budgeted pool set.
    databases: Option<Databases>,
}

impl TenantPool {
    /// Connects as the role in `url` and runs the guard (see [`TenantPool::from_pool`]).
    ///
    /// A connection is not pinged before each use: a dead one (a killed backend, a
    /// restarted server) is found by the `BEGIN` round trip, and that transaction is begun
    /// once more on a live connection, since nothing of it had run.
    ///
    /// With `?pgbouncer=true` on the URL the pool is pooler-safe (see [`DatabaseUrl`]).
    ///
    /// # Errors
    /// [`DbError::Connect`] when the server is unreachable or refuses the login, else as
    /// [`TenantPool::from_pool`].
    ///
    /// ```no_run
    /// # use rls_tenancy::{TenancyDeclaration, TenantPool, TenantPoolOptions};
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let options = TenantPoolOptions::new(TenancyDeclaration::from_file("policies/tenancy.toml")?);
    /// let pool = TenantPool::connect(&"postgres://app_runtime@localhost/app".parse()?, options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &DatabaseUrl, options: TenantPoolOptions) -> Result<Self, DbError> {
        let health = Arc::new(Health::default());
        let pool = Self::connect_pool(url, &options, &health).await?;
        Self::open(pool, options, url.pgbouncer(), health, None).await
    }

    /// A pool for [`crate::Strategy::Database`]: `control` is the control database, whose
    /// registry names each tenant's server and database; `servers` are the servers the
    /// tenants' databases are on, each URL logging in as the runtime role (its database part
    /// is ignored). `pool.begin(&scope)` runs in the tenant's own database, through a
    /// [`crate::PoolSet`] under [`TenantPoolOptions::pool_set`]'s budgets (and each server's
    /// own `max_connections`, if configured).
    ///
    /// Opening checks the control database as [`TenantPool::connect`] does, and that the
    /// runtime role may read the registry's server and database columns. Each tenant
    /// database is checked (guard, clean settings, signed probe) when its pool first opens,
    /// once. A tenant's place is cached and forgotten on every registry `NOTIFY` (a moved
    /// tenant), or after a minute while nothing listens.
    ///
    /// # Errors
    /// As [`TenantPool::connect`] for the control database;
    /// [`crate::PlacementError::NotDatabaseStrategy`] when the declaration's strategy is
    /// not [`crate::Strategy::Database`]; a server URL sqlx rejects. Per transaction:
    /// [`DbError::Unavailable`] (503) when the tenant's server is down or the budget has
    /// no room within the acquire timeout, [`DbError::UnknownServer`] when the registry names
    /// a server not in `servers`.
    ///
    /// ```no_run
    /// # use rls_tenancy::{ServerSet, Strategy, TenancyDeclaration, TenantPool, TenantPoolOptions, PoolSetOptions};
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?.with_strategy(Strategy::Database);
    /// let servers = ServerSet::parse_list("eu1=postgres://app_runtime@db-eu1/postgres,eu2=postgres://app_runtime@db-eu2/postgres")?;
    /// let options = TenantPoolOptions::new(decl).pool_set(PoolSetOptions::default().max_connections(100));
    /// let pool = TenantPool::connect_servers(&"postgres://app_runtime@control/app".parse()?, &servers, options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_servers(
        control: &DatabaseUrl,
        servers: &ServerSet,
        options: TenantPoolOptions,
    ) -> Result<Self, DbError> {
        if options.declaration.strategy() != Strategy::Database {
            return Err(PlacementError::NotDatabaseStrategy.into());
        }
        let health = Arc::new(Health::default());
        let pool = Self::connect_pool(control, &options, &health).await?;
        Self::open(pool, options, control.pgbouncer(), health, Some(servers)).await
    }

    /// The runtime role's pool of `url`, reporting to `health`.
    async fn connect_pool(
        url: &DatabaseUrl,
        options: &TenantPoolOptions,
        health: &Arc<Health>,
    ) -> Result<PgPool, DbError> {
        let connected = Arc::clone(health);
        let moved = Arc::clone(health);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .test_before_acquire(false)
            // An idle connection from before a promotion is to the old primary: closed, never
            // handed out (no round trip: its age says it).
            .before_acquire(move |_, meta| {
                let current = !moved.opened_before_move(meta.age);
                Box::pin(async move { Ok(current) })
            })
            .after_connect(move |_, _| {
                // The first connection that succeeds ends an outage.
                connected.mark_up();
                Box::pin(async { Ok(()) })
            })
            .connect_with(url.connect_options()?)
            .await
            .map_err(|source| ConnectError::Unreachable {
                url: url.redacted(),
                source,
            })?;
        Ok(pool)
    }

    /// Wraps a pool the application already has (it must log in as the runtime role).
    ///
    /// The plain pool stays usable by its owner; every statement sent through it outside a
    /// tenant transaction sees no tenant, so reads return nothing and writes are refused.
    ///
    /// Unless [`TenantPoolOptions::skip_guard`] was given, the [guard](crate::guard) first
    /// inspects the role of one of the pool's connections and refuses to open on any
    /// `refuse` finding; warnings are logged.
    ///
    /// ```no_run
    /// # use rls_tenancy::{TenancyDeclaration, TenantPool, TenantPoolOptions};
    /// # async fn demo(pg: sqlx::PgPool) -> rls_tenancy::Result<()> {
    /// let options = TenantPoolOptions::new(TenancyDeclaration::from_file("policies/tenancy.toml")?);
    /// let pool = TenantPool::from_pool(pg, options).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`DbError::Guard`] with [`crate::guard::GuardError::Refused`] listing every `refuse`
    /// finding (for a deploy-role writer: a superuser or `BYPASSRLS` login), or the guard's own
    /// errors (a missing schema, an unmigrated database); [`DbError::ReleaseCheck`] when the
    /// database lacks the release check of this version (run rls-migrate); the database's
    /// error when no connection can be had.
    pub async fn from_pool(pool: PgPool, options: TenantPoolOptions) -> Result<Self, DbError> {
        Self::open(pool, options, false, Arc::default(), None).await
    }

    /// Runs the guard as configured and wraps `pool`; `pooler` says a transaction-mode
    /// pooler sits in front of the server. With `servers`, `pool` is the control database
    /// of the database strategy and transactions run in the tenants' databases.
    async fn open(
        pool: PgPool,
        options: TenantPoolOptions,
        pooler: bool,
        health: Arc<Health>,
        servers: Option<&ServerSet>,
    ) -> Result<Self, DbError> {
        let peer_timeout = options.peer_timeout;
        // What every COMMIT calls: a database rls-migrate has not brought up to this version
        // is refused by name before anything else.
        check_installed(&mut *pool.acquire().await?).await?;
        let entry = Self::entry(&pool, &options).await?;
        enforce_guard(&pool, &options.guard, &options.variable, pooler).await?;
        // What a clean connection's watched settings are, for the release check to compare.
        let release_check = release_check(
            &options.variable,
            pooler,
            &clean_settings(&pool, pooler).await?,
        );
        let mode = match entry {
            Entry::Plain => TenantContextMode::Plain,
            Entry::Signed(_) | Entry::OwnerSigned => TenantContextMode::Signed,
        };
        let context = TenantContext::new(options.variable.clone(), options.declaration.key_type())
            .with_mode(mode);
        let (placement, databases) = match servers {
            None => (
                Placement::new(pool.clone(), &options.declaration, pooler),
                None,
            ),
            Some(servers) => {
                let directory = Arc::new(DatabaseDirectory::new(
                    pool.clone(),
                    &options.declaration,
                    pooler,
                ));
                let databases = Databases::new(
                    servers,
                    options.pool_set.clone(),
                    Arc::clone(&directory),
                    options.guard.clone(),
                    options.variable.clone(),
                    entry.clone(),
                    context.clone(),
                )?;
                (Placement::Databases(directory), Some(databases))
            }
        };
        placement.check().await?;
        let recycler = match options.declaration.strategy() {
            Strategy::Schema => Some(Arc::new(Recycler::new(options.recycle_after))),
            Strategy::Rls | Strategy::Database => None,
        };
        let tenant_pool = Self {
            placement,
            recycler,
            databases,
            pool,
            declaration: Arc::new(options.declaration),
            context,
            entry,
            timeouts: options.timeouts,
            release_check,
            health,
            pooler,
            peer_timeout,
        };
        if mode == TenantContextMode::Signed {
            probe_signed(
                &tenant_pool.pool,
                pooler,
                &tenant_pool.entry,
                &tenant_pool.context,
            )
            .await?;
        }
        Ok(tenant_pool)
    }

    /// How this pool's transactions will enter their tenant, from the key it was given and
    /// whether the database has the signed context; refuses a pool that would show empty
    /// pages (signed database, no key) or trust a key the database ignores (plain database).
    async fn entry(pool: &PgPool, options: &TenantPoolOptions) -> Result<Entry, DbError> {
        let key = match &options.tenant_key {
            None => None,
            Some(KeySource::Key(key)) => Some(Arc::clone(key)),
            Some(KeySource::File(path)) => Some(Arc::new(TenantKey::from_file(path)?)),
        };
        let mut conn = pool.acquire().await?;
        let signed = signed_context_installed(&mut conn).await?;
        drop(conn);
        match (signed, key) {
            (true, Some(key)) => Ok(Entry::Signed(key)),
            (true, None) if matches!(options.guard, GuardSetting::DeployRoleWriter) => {
                Ok(Entry::OwnerSigned)
            }
            (true, None) => Err(DbError::TenantContext {
                reason: "the database has the signed tenant context and the pool has no tenant key: give it the key file rls-migrate installed (TenantPoolOptions::tenant_key_file, --tenant-key-file or RLS_TENANT_KEY_FILE)".to_owned(),
            }),
            (false, Some(_)) => Err(DbError::TenantContext {
                reason: "the pool was given a tenant key but the database has the plain tenant context: run rls-migrate --tenant-context signed --tenant-key-file with the same file, or open the pool without a key".to_owned(),
            }),
            (false, None) => Ok(Entry::Plain),
        }
    }

    /// Adds to `plan` what puts its transaction in `id`'s context.
    fn enter(&self, plan: &mut BeginPlan, id: TenantId) {
        enter(&self.entry, &self.context, plan, id);
    }

    /// Begins a read-write transaction that sees only `scope`'s tenant. Under
    /// [`crate::Strategy::Schema`] its `search_path` is the tenant's schema, then the shared
    /// schema, for this transaction only.
    ///
    /// # Errors
    /// The database's error when no connection can be had or `BEGIN` fails.
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::TenantPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
    /// let tx = pool.begin(&scope).await?;
    /// # Ok(()) }
    /// ```
    pub async fn begin(&self, scope: &TenantScope) -> Result<TenantTx, DbError> {
        self.begin_with(scope, TxOptions::default()).await
    }

    /// Begins a transaction that sees only `scope`'s tenant, with `options` (read-only,
    /// isolation level), and the pool's [`TxTimeouts`].
    ///
    /// If the connection turns out to be dead at `BEGIN` (its backend was terminated, the
    /// server restarted), nothing of the transaction has run: it is begun once more on a
    /// live connection. If that fails too, or no connection can be had, the database is
    /// taken to be down: until a connection succeeds again, `begin` fails at once with
    /// [`DbError::Unavailable`] (one request at a time probes, for at most half a second).
    ///
    /// # Errors
    /// [`DbError::Unavailable`] while the database is known to be down; the database's
    /// error (`PoolTimedOut` when no connection is free within the acquire timeout) when no
    /// connection can be had or `BEGIN` fails.
    ///
    /// ```no_run
    /// # use rls_tenancy::{IsolationLevel, TxOptions};
    /// # async fn demo(pool: rls_tenancy::TenantPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
    /// let tx = pool
    ///     .begin_with(&scope, TxOptions::default().read_only().isolation(IsolationLevel::RepeatableRead))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn begin_with(
        &self,
        scope: &TenantScope,
        options: TxOptions,
    ) -> Result<TenantTx, DbError> {
        let plan = self.plan(options, scope, self.placement.settings(scope).await?);
        if let Some(databases) = &self.databases {
            return databases.begin(scope, &plan, &self.declaration).await;
        }
        let conn = self.acquire().await?;
        let first = self.open_tx(conn, &plan, scope).await;
        let failed = match first {
            Ok(tx) => return Ok(tx),
            Err(failed) if failed.connection_lost => failed,
            Err(failed) => return Err(failed.error.into()),
        };
        tracing::debug!(error = %failed.error, "the connection was dead at BEGIN; beginning once more on a live one");
        let conn = self.acquire_live().await?;
        self.open_tx(conn, &plan, scope).await.map_err(|failed| {
            if failed.connection_lost {
                self.health.mark_down();
            }
            failed.error.into()
        })
    }

    /// The `BEGIN` round trip of a transaction for `scope`, with `placement`'s settings.
    fn plan(
        &self,
        options: TxOptions,
        scope: &TenantScope,
        placement: Vec<(String, String)>,
    ) -> BeginPlan {
        let mut plan = BeginPlan::new(options);
        if self.pooler {
            plan.deallocate_all();
        }
        plan.set(self.timeouts.settings());
        self.enter(&mut plan, scope.id());
        plan.set(placement);
        plan
    }

    /// Begins a read-write transaction for `scope` with `search_path` set to `schema` (then
    /// the shared schema), named by the caller instead of read from the registry: how the
    /// seeder creates a tenant, its schema and its rows in that tenant's one transaction,
    /// before the registry row naming the schema is committed.
    #[cfg(feature = "seed")]
    pub(crate) async fn begin_in_schema(
        &self,
        scope: &TenantScope,
        schema: &SchemaName,
    ) -> Result<TenantTx, DbError> {
        let placement = vec![search_path(schema, self.declaration.schema())];
        let plan = self.plan(TxOptions::default(), scope, placement);
        let conn = self.acquire().await?;
        self.open_tx(conn, &plan, scope)
            .await
            .map_err(|failed| failed.error.into())
    }

    /// How this pool's transactions enter their tenant's context (the variable, the key
    /// type, plain or signed): what the policies of a schema the seeder creates must read.
    #[cfg(feature = "seed")]
    pub(crate) fn context(&self) -> &TenantContext {
        &self.context
    }

    /// Begins `plan` on `conn`; a success shows the database is up.
    async fn open_tx(
        &self,
        conn: PoolConnection<Postgres>,
        plan: &BeginPlan,
        scope: &TenantScope,
    ) -> Result<TenantTx, super::tx::BeginFailed> {
        let tx = self
            .answered_in_time(TenantTx::begin(
                conn,
                plan,
                scope,
                Arc::clone(&self.release_check),
                self.pooler,
                Arc::clone(&self.declaration),
                self.recycler.clone(),
            ))
            .await?;
        self.health.mark_up();
        Ok(tx)
    }

    /// A connection from the pool, failing at once while the database is known to be down
    /// (unless this request is the one probing it, for at most half a second).
    async fn acquire(&self) -> Result<PoolConnection<Postgres>, DbError> {
        health::acquire(&self.pool, &self.health, self.peer_timeout).await
    }

    /// A connection that answers a ping: after a dead one, the idle ones may be dead too (a
    /// restarted server ends them all). Dead ones are closed; at most one per connection
    /// the pool may hold is tried before a new one is opened.
    async fn acquire_live(&self) -> Result<PoolConnection<Postgres>, DbError> {
        for _ in 0..self.pool.options().get_max_connections() {
            let mut conn = self.acquire().await?;
            if conn.ping().await.is_ok() {
                return Ok(conn);
            }
            conn.close_on_drop();
        }
        self.acquire().await
    }

    /// Begins a read-write transaction for the running task's current tenant
    /// ([`TenantScope::scope`], [`crate::spawn`]): how code far from the request or job that
    /// chose the tenant opens its transaction. Fails closed: no current tenant, no
    /// transaction.
    ///
    /// # Errors
    /// [`DbError::NoCurrentTenant`] when the task has no current tenant; else as
    /// [`TenantPool::begin`].
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::TenantPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
    /// scope
    ///     .scope(async {
    ///         let tx = pool.begin_current().await?; // scope's transaction
    ///         tx.commit().await
    ///     })
    ///     .await?;
    /// assert!(matches!(pool.begin_current().await, Err(rls_tenancy::DbError::NoCurrentTenant)));
    /// # Ok(()) }
    /// ```
    pub async fn begin_current(&self) -> Result<TenantTx, DbError> {
        self.begin_current_with(TxOptions::default()).await
    }

    /// [`TenantPool::begin_current`] with `options` (read-only, isolation level).
    ///
    /// # Errors
    /// As [`TenantPool::begin_current`].
    ///
    /// ```no_run
    /// # use rls_tenancy::TxOptions;
    /// # async fn demo(pool: rls_tenancy::TenantPool) -> rls_tenancy::Result<()> {
    /// let tx = pool.begin_current_with(TxOptions::default().read_only()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn begin_current_with(&self, options: TxOptions) -> Result<TenantTx, DbError> {
        let scope = TenantScope::current().ok_or(DbError::NoCurrentTenant)?;
        self.begin_with(&scope, options).await
    }

    /// A [`TenantRegistry`] over this pool's declaration, reading through its connections
    /// (the registry is routing data, readable by the runtime role without a tenant).
    ///
    /// ```no_run
    /// # use rls_tenancy::RegistryOptions;
    /// # fn demo(pool: rls_tenancy::TenantPool) {
    /// let registry = pool.registry(RegistryOptions::default());
    /// # }
    /// ```
    pub fn registry(&self, options: RegistryOptions) -> TenantRegistry {
        let registry = TenantRegistry::new(self.pool.clone(), &self.declaration, options)
            .with_health(Arc::clone(&self.health));
        if self.pooler {
            registry.behind_pooler()
        } else {
            registry
        }
    }

    /// Under [`crate::Strategy::Database`] ([`TenantPool::connect_servers`]): the tenant
    /// databases' pools open now, the connections they hold, and how many were opened and
    /// evicted so far; `None` for a pool over one database.
    ///
    /// ```no_run
    /// # fn demo(pool: rls_tenancy::TenantPool) {
    /// if let Some(stats) = pool.pool_set_stats() {
    ///     println!("{} tenant database pools, {} evicted", stats.open_pools, stats.evictions);
    /// }
    /// # }
    /// ```
    pub fn pool_set_stats(&self) -> Option<PoolSetStats> {
        self.databases.as_ref().map(|d| d.set().stats())
    }

    /// The declaration this pool serves.
    ///
    /// ```no_run
    /// # fn demo(pool: rls_tenancy::TenantPool) {
    /// println!("tenant tables in {}", pool.declaration().schema());
    /// # }
    /// ```
    pub fn declaration(&self) -> &TenancyDeclaration {
        &self.declaration
    }

    /// Whether the database answers: a connection from the pool runs `SELECT 1` (simple
    /// protocol, no tenant, pooler-safe) within `deadline`. The readiness probe; it also
    /// ends an outage the pool knows of when it succeeds.
    ///
    /// # Errors
    /// The database's error, or `PoolTimedOut` when no answer came within `deadline`.
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::TenantPool) -> rls_tenancy::Result<()> {
    /// pool.ping(std::time::Duration::from_secs(2)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn ping(&self, deadline: Duration) -> Result<(), DbError> {
        let ping = async {
            let mut conn =
                health::acquire_noting_outage(&self.pool, &self.health, self.peer_timeout).await?;
            let answered = sqlx::raw_sql("SELECT 1").execute(&mut *conn).await;
            if let Err(err) = answered {
                conn.close_on_drop();
                if is_connection_lost(&err) {
                    self.health.mark_down();
                }
                return Err(err.into());
            }
            self.health.mark_up();
            Ok(())
        };
        match tokio::time::timeout(deadline, ping).await {
            Ok(answered) => answered,
            Err(_) => {
                // No answer in time: a refusing server is down (the next requests fail at
                // once); a merely slow one is not.
                if health::refuses_connections(&self.pool).await {
                    self.health.mark_down();
                }
                Err(sqlx::Error::PoolTimedOut.into())
            }
        }
    }

    /// The server's WAL insert position, as PostgreSQL prints it (`16/B374D848`): at or past
    /// the end of every transaction committed before the call, even with asynchronous commit
    /// (`pg_current_wal_lsn()` may lag it then). Simple protocol, no tenant.
    pub(crate) async fn wal_insert_position(&self) -> Result<String, DbError> {
        let mut conn = self.acquire().await?;
        let row = sqlx::raw_sql("SELECT pg_current_wal_insert_lsn()::text")
            .fetch_one(&mut *conn)
            .await?;
        Ok(sqlx::Row::try_get(&row, 0)?)
    }

    /// Whether the pool found its server refusing or dropping connections and no connection
    /// has succeeded since.
    pub(crate) fn is_down(&self) -> bool {
        self.health.is_down()
    }

    /// Opens its future connections to `url` (another host of the same database, whose role
    /// the guard accepted): how the pool that [`crate::RoutingPool::primary`] hands out
    /// follows a promotion. Its idle connections to the old host are closed as they come up
    /// for use (the registry's lookups use them too); one in use stays until it is returned.
    pub(crate) fn follow(&self, url: &DatabaseUrl) -> Result<(), ConnectError> {
        self.pool.set_connect_options(url.connect_options()?);
        self.health.mark_moved();
        Ok(())
    }

    /// Closes every connection (under the database strategy, the tenant databases' too).
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::TenantPool) {
    /// pool.close().await;
    /// # }
    /// ```
    pub async fn close(&self) {
        if let Some(databases) = &self.databases {
            databases.set().close().await;
        }
        self.pool.close().await;
    }
}

/// Adds to `plan` what puts its transaction in `id`'s context, as `entry` says.
fn enter(entry: &Entry, context: &TenantContext, plan: &mut BeginPlan, id: TenantId) {
    match entry {
        Entry::Plain => plan.set(context.settings(id)),
        Entry::Signed(key) => plan.call(context.signed_entry(id, key)),
        Entry::OwnerSigned => plan.call(owner_signed_entry(context, id)),
    }
}

/// Runs the guard as `setting` says on a connection of `pool`, for `pool`'s own login role;
/// `pooler` says a transaction-mode pooler sits in front of the server.
pub(super) async fn enforce_guard(
    pool: &PgPool,
    setting: &GuardSetting,
    variable: &TenantVariable,
    pooler: bool,
) -> Result<(), DbError> {
    match setting {
        GuardSetting::Run(guard_options) => {
            // Always the pool's own login role: a role override in the options would
            // check someone else and open the pool for whoever this really is.
            let guard_options = guard_options
                .clone()
                .own_role()
                .tenant_variable(variable.clone());
            if pooler {
                // Its statements in one transaction, so they reach one server connection.
                let mut tx = pool.begin_with(AssertSqlSafe(POOLER_GUARD_BEGIN)).await?;
                guard::enforce(&mut tx, &guard_options).await?;
                tx.rollback().await?;
            } else {
                let mut conn = pool.acquire().await?;
                guard::enforce(&mut conn, &guard_options).await?;
            }
        }
        GuardSetting::Skipped => tracing::warn!(
            "the tenant pool opens without the guard (TenantPoolOptions::skip_guard): nothing checked that its role cannot get around row-level security"
        ),
        GuardSetting::DeployRoleWriter => {
            tracing::warn!(
                "the tenant pool opens for the deploy role's writes (TenantPoolOptions::deploy_role_writer): only its login was checked for SUPERUSER and BYPASSRLS; never serve requests from it"
            );
            let mut conn = pool.acquire().await?;
            guard::enforce_writer(&mut conn).await?;
        }
    }
    Ok(())
}

/// Begins and rolls back one signed transaction, in one message, to check that the
/// database accepts this pool's signature (the right key, installed; clocks that agree).
pub(super) async fn probe_signed(
    pool: &PgPool,
    pooler: bool,
    entry: &Entry,
    context: &TenantContext,
) -> Result<(), DbError> {
    let mut plan = BeginPlan::new(TxOptions::default().read_only());
    if pooler {
        plan.deallocate_all();
    }
    let probe = TenantId::new(1).unwrap_or_else(|_| unreachable!("1 is a valid tenant id"));
    enter(entry, context, &mut plan, probe);
    let sql = format!(
        "{}; SELECT rls_tenancy.tenant({}) IS NOT DISTINCT FROM '{}'; ROLLBACK",
        plan.sql(),
        quote_literal(context.variable().as_str()),
        probe
    );
    let mut conn = pool.acquire().await?;
    let rows = sqlx::raw_sql(AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(err) => {
            conn.close_on_drop();
            return Err(match err.as_database_error() {
                Some(db) if db.code().as_deref() == Some("28000") => DbError::TenantContext {
                    reason: db.message().to_owned(),
                },
                _ => err.into(),
            });
        }
    };
    let entered = rows
        .last()
        .map(|row| sqlx::Row::try_get::<bool, _>(row, 0))
        .transpose()?;
    if entered == Some(true) {
        Ok(())
    } else {
        Err(DbError::TenantContext {
                reason: "a signed transaction did not see its tenant: the installed rls_tenancy functions do not match this version of the toolkit; run rls-migrate".to_owned(),
            })
    }
}
