//! [`TenantPool`]: the runtime role's connection pool, which only hands out tenant
//! transactions.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};

use super::begin::BeginPlan;
use super::{DbError, TenantTx, TxOptions};
use crate::connect::{ConnectError, DatabaseUrl};
use crate::guard::{self, GuardOptions};
use crate::policy::{TenancyDeclaration, TenantContext, TenantVariable};
use crate::resolve::{RegistryOptions, TenantRegistry};
use crate::tenant::TenantScope;

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

impl TenantPoolOptions {
    /// Options for the schema `declaration` describes: at most 10 connections, a 10 s
    /// acquire timeout, the tenant variable `app.tenant_id`, the guard on.
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
            acquire_timeout: Duration::from_secs(10),
            variable: TenantVariable::default(),
            guard,
        }
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

    /// How long `begin` waits for a free connection (default 10 s).
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
        let variable = options.variable.as_str().to_owned();
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout)
            .after_release(move |conn, _| {
                let variable = variable.clone();
                Box::pin(async move { carries_no_tenant(conn, &variable).await })
            })
            .connect_with(url.connect_options()?)
            .await
            .map_err(|source| ConnectError::Unreachable {
                url: url.redacted(),
                source,
            })?;
        Self::from_pool(pool, options).await
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
    /// errors (a missing schema, an unmigrated database); the database's error when no
    /// connection can be had.
    pub async fn from_pool(pool: PgPool, options: TenantPoolOptions) -> Result<Self, DbError> {
        match &options.guard {
            GuardSetting::Run(guard_options) => {
                // Always the pool's own login role: a role override in the options would
                // check someone else and open the pool for whoever this really is.
                let guard_options = guard_options
                    .clone()
                    .own_role()
                    .tenant_variable(options.variable.clone());
                let mut conn = pool.acquire().await?;
                guard::enforce(&mut conn, &guard_options).await?;
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
        let context = TenantContext::new(options.variable, options.declaration.key_type());
        Ok(Self {
            pool,
            declaration: Arc::new(options.declaration),
            context,
        })
    }

    /// Begins a read-write transaction that sees only `scope`'s tenant.
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
    /// isolation level).
    ///
    /// # Errors
    /// The database's error when no connection can be had or `BEGIN` fails.
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
        let mut plan = BeginPlan::new(options);
        plan.set(self.context.settings(scope.id()));
        TenantTx::begin(&self.pool, &plan, scope).await
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
        TenantRegistry::new(self.pool.clone(), &self.declaration, options)
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
