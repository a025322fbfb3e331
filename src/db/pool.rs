//! [`TenantPool`]: the runtime role's connection pool, which only hands out tenant
//! transactions.

use std::time::Duration;

use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};

use super::{DatabaseUrl, TenantTx};
use crate::error::{Error, Result};
use crate::guard::{self, GuardOptions};
use crate::policy::TenantVariable;
use crate::tenant::TenantScope;

/// How the guard's transaction begins behind a transaction-mode pooler: `DEALLOCATE ALL`
/// clears the named statements another client left on the server connection, which would
/// clash with the guard's.
const POOLER_GUARD_BEGIN: &str = "BEGIN READ ONLY; DEALLOCATE ALL";

/// How to open a [`TenantPool`].
///
/// The [guard](crate::guard) runs when the pool opens, with [`GuardOptions::default`] unless
/// [`TenantPoolOptions::guard`] says otherwise; [`TenantPoolOptions::skip_guard`] turns it off.
///
/// ```
/// use rls_tenancy::TenantPoolOptions;
/// let options = TenantPoolOptions::default().max_connections(4);
/// assert_eq!(options.variable().as_str(), "app.tenant_id");
/// assert!(options.runs_guard());
/// ```
#[derive(Debug, Clone)]
pub struct TenantPoolOptions {
    max_connections: u32,
    acquire_timeout: Duration,
    variable: TenantVariable,
    guard: GuardSetting,
}

/// What opening the pool does about the guard.
#[derive(Debug, Clone)]
enum GuardSetting {
    /// Run it; refuse to open on any refusing finding.
    Run(Box<GuardOptions>),
    /// Do not run it, and warn: nothing checks the role.
    Skipped,
    /// The deploy role writing through tenant transactions: the guard does not apply.
    DeployRoleWriter,
}

impl Default for TenantPoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(10),
            variable: TenantVariable::default(),
            guard: GuardSetting::Run(Box::default()),
        }
    }
}

impl TenantPoolOptions {
    /// The most connections the pool opens (default 10).
    ///
    /// ```
    /// # use rls_tenancy::TenantPoolOptions;
    /// let options = TenantPoolOptions::default().max_connections(1);
    /// ```
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long `begin` waits for a free connection (default 10 s).
    ///
    /// ```
    /// # use rls_tenancy::TenantPoolOptions;
    /// let options = TenantPoolOptions::default().acquire_timeout(std::time::Duration::from_secs(2));
    /// ```
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    /// The setting the policies read (default `app.tenant_id`).
    ///
    /// ```
    /// # use rls_tenancy::{TenantPoolOptions, TenantVariable};
    /// let options = TenantPoolOptions::default().tenant_variable(TenantVariable::parse("myapp.tenant")?);
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
    /// # use rls_tenancy::{GuardOptions, TenantPoolOptions};
    /// let options = TenantPoolOptions::default()
    ///     .guard(GuardOptions::default().allow_security_definer("app.resolve_slug"));
    /// assert!(options.runs_guard());
    /// ```
    pub fn guard(mut self, options: GuardOptions) -> Self {
        self.guard = GuardSetting::Run(Box::new(options));
        self
    }

    /// Opens the pool without running the guard. Only for a role checked some other way
    /// (for example by `rls-check` in the deployment pipeline): opening the pool then logs a
    /// warning, since nothing stops a role that can get around row-level security.
    ///
    /// ```
    /// # use rls_tenancy::TenantPoolOptions;
    /// let options = TenantPoolOptions::default().skip_guard();
    /// assert!(!options.runs_guard());
    /// ```
    pub fn skip_guard(mut self) -> Self {
        self.guard = GuardSetting::Skipped;
        self
    }

    /// Opens a pool for the *deploy* role's cross-tenant writing (seeding, fixtures): each
    /// tenant's rows still go through that tenant's transaction, so the policies vet every
    /// row (the deploy role owns the tables, and FORCE applies to owners). The guard, which
    /// checks a role fit to *serve* requests, would rightly refuse the owner, so it is not
    /// run; unlike [`TenantPoolOptions::skip_guard`] this is the expected set-up and is only
    /// logged at debug level.
    ///
    /// ```
    /// # use rls_tenancy::TenantPoolOptions;
    /// let options = TenantPoolOptions::default().deploy_role_writer();
    /// assert!(!options.runs_guard());
    /// ```
    pub fn deploy_role_writer(mut self) -> Self {
        self.guard = GuardSetting::DeployRoleWriter;
        self
    }

    /// Whether opening the pool runs the guard.
    ///
    /// ```
    /// # use rls_tenancy::TenantPoolOptions;
    /// assert!(TenantPoolOptions::default().runs_guard());
    /// ```
    pub fn runs_guard(&self) -> bool {
        matches!(self.guard, GuardSetting::Run(_))
    }

    /// The configured tenant variable.
    ///
    /// ```
    /// # use rls_tenancy::TenantPoolOptions;
    /// assert_eq!(TenantPoolOptions::default().variable().as_str(), "app.tenant_id");
    /// ```
    pub fn variable(&self) -> &TenantVariable {
        &self.variable
    }
}

/// The runtime role's pool. Its only way to run a statement is a [`TenantTx`] for one tenant.
///
/// ```no_run
/// use rls_tenancy::{TenantPool, TenantPoolOptions, TenantScope, TenantId};
/// # async fn demo() -> rls_tenancy::Result<()> {
/// let url = "postgres://app_runtime:pw@127.0.0.1/app".parse()?;
/// let pool = TenantPool::connect(&url, TenantPoolOptions::default()).await?;
/// let scope = TenantScope::new(TenantId::new(1)?, "tenant-1".parse()?);
/// let mut tx = pool.begin(&scope).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TenantPool {
    pool: PgPool,
    variable: TenantVariable,
    pooler: bool,
}

impl TenantPool {
    /// Connects as the role in `url` and runs the guard (see [`TenantPool::from_pool`]).
    ///
    /// A connection coming back to this pool is checked once more: if code inside a tenant
    /// transaction set the tenant at session level (`SET app.tenant_id`, or `set_config`
    /// with `is_local => false`), the setting would outlive the transaction, so such a
    /// connection is closed instead of reused.
    ///
    /// # Errors
    /// [`Error::Connect`] when the server is unreachable or refuses the login, else as
    /// [`TenantPool::from_pool`].
    ///
    /// ```no_run
    /// # use rls_tenancy::{TenantPool, TenantPoolOptions};
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let pool = TenantPool::connect(&"postgres://app_runtime@localhost/app".parse()?, TenantPoolOptions::default()).await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &DatabaseUrl, options: TenantPoolOptions) -> Result<Self> {
        let variable = options.variable.as_str().to_owned();
        let mut pool_options = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout);
        // Through a transaction-mode pooler a statement after COMMIT may run on another
        // server connection, so a check there would inspect someone else's connection.
        if !url.pgbouncer() {
            pool_options = pool_options.after_release(move |conn, _| {
                let variable = variable.clone();
                Box::pin(async move { carries_no_tenant(conn, &variable).await })
            });
        }
        let pool = pool_options
            .connect_with(url.connect_options()?)
            .await
            .map_err(|source| Error::Connect {
                url: url.redacted(),
                source,
            })?;
        Self::open(pool, options, url.pgbouncer()).await
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
    /// # use rls_tenancy::{TenantPool, TenantPoolOptions};
    /// # async fn demo(pg: sqlx::PgPool) -> rls_tenancy::Result<()> {
    /// let pool = TenantPool::from_pool(pg, TenantPoolOptions::default()).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::GuardRefused`] listing every `refuse` finding; the guard's own errors
    /// ([`Error::MissingSchema`], [`Error::NotMigrated`]); the database's error when no
    /// connection can be had.
    pub async fn from_pool(pool: PgPool, options: TenantPoolOptions) -> Result<Self> {
        Self::open(pool, options, false).await
    }

    /// Runs the guard as configured and wraps `pool`; `pooler` says a transaction-mode
    /// pooler sits in front of the server.
    async fn open(pool: PgPool, options: TenantPoolOptions, pooler: bool) -> Result<Self> {
        match &options.guard {
            GuardSetting::Run(guard_options) => {
                // Always the pool's own login role: a role override in the options would
                // check someone else and open the pool for whoever this really is.
                let guard_options = guard_options
                    .clone()
                    .own_role()
                    .tenant_variable(options.variable.clone());
                // In a read-only transaction: through a transaction-mode pooler the guard's
                // statements then all run on one server connection.
                let begin = if pooler {
                    POOLER_GUARD_BEGIN
                } else {
                    "BEGIN READ ONLY"
                };
                let mut tx = pool.begin_with(AssertSqlSafe(begin)).await?;
                guard::enforce(&mut tx, &guard_options).await?;
                tx.rollback().await?;
            }
            GuardSetting::Skipped => tracing::warn!(
                "the tenant pool opens without the guard (TenantPoolOptions::skip_guard): nothing checked that its role cannot get around row-level security"
            ),
            GuardSetting::DeployRoleWriter => tracing::debug!(
                "the deploy role's tenant pool opens without the runtime-role guard; every row still passes its tenant's policy"
            ),
        }
        Ok(Self {
            pool,
            variable: options.variable,
            pooler,
        })
    }

    /// Begins a transaction that sees only `scope`'s tenant.
    ///
    /// # Errors
    /// The database's error when no connection can be had or `BEGIN` fails.
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::TenantPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
    /// let tx = pool.begin(&scope).await?;
    /// # Ok(()) }
    /// ```
    pub async fn begin(&self, scope: &TenantScope) -> Result<TenantTx> {
        TenantTx::begin(&self.pool, &self.variable, scope, self.pooler).await
    }

    /// Whether the database answers: a connection from the pool runs `SELECT 1` (simple
    /// protocol, no tenant, pooler-safe) within `deadline`. The readiness probe.
    ///
    /// # Errors
    /// The database's error, or `PoolTimedOut` when no answer came within `deadline`.
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::TenantPool) -> rls_tenancy::Result<()> {
    /// pool.ping(std::time::Duration::from_secs(2)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn ping(&self, deadline: Duration) -> Result<()> {
        let ping = async {
            let mut conn = self.pool.acquire().await?;
            sqlx::raw_sql("SELECT 1").execute(&mut *conn).await?;
            Ok(())
        };
        tokio::time::timeout(deadline, ping)
            .await
            .unwrap_or(Err(Error::Database(sqlx::Error::PoolTimedOut)))
    }

    /// Whether a transaction-mode pooler sits in front of the server (`?pgbouncer=true`).
    pub(crate) fn behind_pooler(&self) -> bool {
        self.pooler
    }

    /// The plain pool, for reading routing data that is not tenant data (the registry).
    /// Not public: outside a tenant transaction the runtime role sees no tenant rows anyway,
    /// but handing it out would invite code that forgets the tenant.
    pub(crate) fn plain_pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection.
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::TenantPool) {
    /// pool.close().await;
    /// # }
    /// ```
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Whether a connection handed back to the pool is free of any tenant: the variable is
/// unset (NULL) or reverted to `''`. Anything else was set at session level and would leak.
async fn carries_no_tenant(conn: &mut PgConnection, variable: &str) -> sqlx::Result<bool> {
    let value: Option<String> = sqlx::query_scalar("SELECT current_setting($1, true)")
        .bind(variable)
        .fetch_one(conn)
        .await?;
    let clean = value.as_deref().is_none_or(str::is_empty);
    if !clean {
        tracing::error!(
            "a connection came back with the tenant set at session level; it is closed, not reused"
        );
    }
    Ok(clean)
}
