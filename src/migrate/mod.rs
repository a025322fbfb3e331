//! `rls-migrate`'s library side: as the deploy role, apply the application's migrations,
//! install the tenant isolation policies on the tables its declaration names, and grant the
//! runtime role exactly what the declaration says. Idempotent: a second run changes nothing.
//!
//! The migrations are the application's own, run by sqlx's [`Migrator`] and recorded where
//! sqlx-cli records them (`_sqlx_migrations`), so `sqlx migrate run` before or after
//! `rls-migrate` agrees on what is applied. The toolkit records nothing of its own there.
//! Teams that run their migrations some other way call [`install_policies`] after them.
//!
//! ```no_run
//! use rls_tenancy::{MigrateOptions, TenancyDeclaration, migrate_with, migrator_from_dir};
//! # async fn demo() -> rls_tenancy::Result<()> {
//! let migrator = migrator_from_dir("migrations").await?;
//! let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?;
//! let options = MigrateOptions::new("postgres://app_deploy:pw@127.0.0.1/app".parse()?, "app_runtime")?;
//! let report = migrate_with(&migrator, &decl, &options).await?;
//! println!("{report}");
//! # Ok(()) }
//! ```

mod across;
mod batch;
mod bootstrap;
mod current;
pub(crate) mod databases;
mod error;
pub(crate) mod grants;
mod installed;
mod policies;
pub(crate) mod records;
mod registry_notify;
mod release_check;
pub(crate) mod schemas;
mod selector;
pub(crate) mod signed;

use std::fmt;
use std::path::Path;

use installed::InstalledFunctions;
use sqlx::Connection;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnection;

pub use across::{SchemaOutcome, SchemaReport, SchemasReport, migrate_schemas, migrate_selected};
pub use bootstrap::{Bootstrap, bootstrap_sql};
pub use databases::{DatabaseReport, DatabasesReport, migrate_databases, select_databases};
pub use error::MigrateError;
#[cfg(feature = "seed")]
pub(crate) use schemas::migrate_schema;
pub(crate) use selector::name_selects;
pub use selector::{SchemaSelection, SchemaSelector, SelectedSchema, select_schemas};

use crate::connect::{self, DatabaseUrl};
use crate::policy::{
    Ident, TenancyDeclaration, TenantContext, TenantContextMode, TenantKey, TenantVariable,
};

type Result<T, E = MigrateError> = std::result::Result<T, E>;

/// What a migration run needs besides the migrations and the declaration: the deploy role's
/// URL, the runtime role to grant, the tenant setting the policies read, and how they read
/// it: the signed tenant context (the default, which needs a [`TenantKey`]) or the plain one.
///
/// ```
/// use rls_tenancy::MigrateOptions;
/// let url = "postgres://app_deploy@localhost/app".parse()?;
/// let options = MigrateOptions::new(url, "app_runtime")?;
/// assert_eq!(options.runtime_role().as_str(), "app_runtime");
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    pub(crate) url: DatabaseUrl,
    pub(crate) runtime_role: Ident,
    pub(crate) variable: TenantVariable,
    pub(crate) mode: TenantContextMode,
    pub(crate) tenant_key: Option<TenantKey>,
    retire_old_keys: bool,
}

impl MigrateOptions {
    /// The default runtime role name.
    pub const DEFAULT_RUNTIME_ROLE: &'static str = "app_runtime";

    /// Options for migrating as the role in `url` and granting `runtime_role`, with the
    /// tenant variable `app.tenant_id` and the signed tenant context (give it a key with
    /// [`MigrateOptions::tenant_key`] unless the database already has one).
    ///
    /// # Errors
    /// [`crate::IdentError`] when the role name is not a plain identifier.
    ///
    /// ```
    /// # use rls_tenancy::MigrateOptions;
    /// let url: rls_tenancy::DatabaseUrl = "postgres://app_deploy@localhost/app".parse()?;
    /// assert!(MigrateOptions::new(url.clone(), MigrateOptions::DEFAULT_RUNTIME_ROLE).is_ok());
    /// assert!(MigrateOptions::new(url, "Robert'); --").is_err());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn new(url: DatabaseUrl, runtime_role: &str) -> Result<Self, crate::IdentError> {
        Ok(Self {
            url,
            runtime_role: Ident::parse("role", runtime_role)?,
            variable: TenantVariable::default(),
            mode: TenantContextMode::Signed,
            tenant_key: None,
            retire_old_keys: false,
        })
    }

    /// How the policies learn the tenant (default [`TenantContextMode::Signed`]). Migrating
    /// a signed database with `Plain` replaces its policies and drops the signed context
    /// with its keys.
    ///
    /// ```
    /// # use rls_tenancy::{MigrateOptions, TenantContextMode};
    /// let options = MigrateOptions::new("postgres://d@localhost/app".parse()?, "app_runtime")?
    ///     .tenant_context(TenantContextMode::Plain);
    /// assert_eq!(options.mode(), TenantContextMode::Plain);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn tenant_context(mut self, mode: TenantContextMode) -> Self {
        self.mode = mode;
        self
    }

    /// The tenant context the run installs.
    ///
    /// ```
    /// # use rls_tenancy::{MigrateOptions, TenantContextMode};
    /// let options = MigrateOptions::new("postgres://d@localhost/app".parse()?, "app_runtime")?;
    /// assert_eq!(options.mode(), TenantContextMode::Signed);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn mode(&self) -> TenantContextMode {
        self.mode
    }

    /// Installs `key` in the signed context when the database does not have it yet. Keys
    /// installed before stay accepted, so applications still holding the old key keep
    /// working during a rotation; [`MigrateOptions::retire_old_keys`] ends the rotation.
    ///
    /// ```
    /// # use rls_tenancy::{MigrateOptions, TenantKey};
    /// let options = MigrateOptions::new("postgres://d@localhost/app".parse()?, "app_runtime")?
    ///     .tenant_key(TenantKey::generate());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn tenant_key(mut self, key: TenantKey) -> Self {
        self.tenant_key = Some(key);
        self
    }

    /// Removes every installed key but the one given with [`MigrateOptions::tenant_key`]:
    /// the end of a key rotation, once every application reads the new key file.
    ///
    /// ```
    /// # use rls_tenancy::{MigrateOptions, TenantKey};
    /// let options = MigrateOptions::new("postgres://d@localhost/app".parse()?, "app_runtime")?
    ///     .tenant_key(TenantKey::generate())
    ///     .retire_old_keys();
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn retire_old_keys(mut self) -> Self {
        self.retire_old_keys = true;
        self
    }

    /// Uses another tenant setting name in the policies.
    ///
    /// ```
    /// # use rls_tenancy::{MigrateOptions, TenantVariable};
    /// let options = MigrateOptions::new("postgres://d@localhost/app".parse()?, "app_runtime")?
    ///     .tenant_variable(TenantVariable::parse("myapp.tenant")?);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn tenant_variable(mut self, variable: TenantVariable) -> Self {
        self.variable = variable;
        self
    }

    /// A pool of at most `connections` of the deploy role's connections. A statement of a
    /// migration across schemas (a batch's script) takes seconds as a matter of course: sqlx's
    /// slow-statement notice, which prints the whole statement, is logged at debug level.
    pub(crate) async fn pool(
        &self,
        connections: u32,
    ) -> Result<sqlx::PgPool, connect::ConnectError> {
        use sqlx::ConnectOptions as _;
        let options = self
            .url
            .connect_options()?
            .log_slow_statements(log::LevelFilter::Debug, std::time::Duration::from_secs(1));
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(connections)
            .connect_with(options)
            .await
            .map_err(|source| connect::ConnectError::Unreachable {
                url: self.url.redacted(),
                source,
            })
    }

    /// The tenant context the policies of `decl`'s tables read, as these options install it.
    pub(crate) fn context(&self, decl: &TenancyDeclaration) -> TenantContext {
        TenantContext::new(self.variable.clone(), decl.key_type()).with_mode(self.mode)
    }

    /// The role that is granted DML.
    ///
    /// ```
    /// # use rls_tenancy::MigrateOptions;
    /// let options = MigrateOptions::new("postgres://d@localhost/app".parse()?, "rt")?;
    /// assert_eq!(options.runtime_role().as_str(), "rt");
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn runtime_role(&self) -> &Ident {
        &self.runtime_role
    }
}

/// What a migration run did. Keys appear by id only, never the key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateReport {
    /// Versions of the migrations applied by this run.
    pub applied_migrations: Vec<i64>,
    /// Tables whose policy or RLS state was (re)installed by this run.
    pub policies_installed: Vec<String>,
    /// The tenant context the policies read.
    pub tenant_context: TenantContextMode,
    /// The id of the tenant key this run installed, if it was new.
    pub tenant_key_installed: Option<String>,
    /// The ids of the tenant keys this run retired.
    pub tenant_keys_retired: Vec<String>,
    /// The ids of the tenant keys the database accepts (none in the plain context).
    pub tenant_keys: Vec<String>,
}

impl MigrateReport {
    /// Whether this run found everything already in place.
    ///
    /// ```
    /// assert!(rls_tenancy::MigrateReport::default().is_noop());
    /// ```
    pub fn is_noop(&self) -> bool {
        self.applied_migrations.is_empty()
            && self.policies_installed.is_empty()
            && self.tenant_key_installed.is_none()
            && self.tenant_keys_retired.is_empty()
    }
}

impl fmt::Display for MigrateReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.applied_migrations.is_empty() {
            writeln!(f, "migrations: up to date")?;
        } else {
            writeln!(f, "migrations: applied {:?}", self.applied_migrations)?;
        }
        if self.policies_installed.is_empty() {
            writeln!(f, "policies: all in place")?;
        } else {
            writeln!(
                f,
                "policies: installed on {}",
                self.policies_installed.join(", ")
            )?;
        }
        match self.tenant_context {
            TenantContextMode::Signed => {
                write!(
                    f,
                    "tenant context: signed, keys accepted: {}",
                    self.tenant_keys.join(", ")
                )?;
                if let Some(id) = &self.tenant_key_installed {
                    write!(f, " (installed {id})")?;
                }
                if !self.tenant_keys_retired.is_empty() {
                    write!(f, " (retired {})", self.tenant_keys_retired.join(", "))?;
                }
                writeln!(f)?;
            }
            TenantContextMode::Plain => writeln!(f, "tenant context: plain")?,
        }
        write!(f, "grants: runtime role privileges reset to DML only")
    }
}

/// Reads the sqlx migrations in `dir` (the `sqlx migrate` format).
///
/// # Errors
/// [`MigrateError::Source`] when the directory cannot be read or holds a malformed file.
///
/// ```no_run
/// # async fn demo() -> rls_tenancy::Result<()> {
/// let migrator = rls_tenancy::migrator_from_dir("migrations").await?;
/// # Ok(()) }
/// ```
pub async fn migrator_from_dir(dir: impl AsRef<Path>) -> Result<Migrator> {
    let dir = dir.as_ref();
    Migrator::new(dir.to_owned())
        .await
        .map_err(|source| MigrateError::Source {
            dir: dir.display().to_string(),
            source,
        })
}

/// Applies `migrator`'s migrations, installs the policies on `decl`'s tenant tables and
/// grants the runtime role, as the deploy role in `options`.
///
/// Migrations, policies and grants are applied in one transaction: a failure anywhere
/// leaves nothing changed.
///
/// # Errors
/// [`MigrateError::Connect`] (unreachable, refused), [`MigrateError::MissingRole`] (runtime
/// role absent), [`MigrateError::Migration`] (a migration failed and was rolled back),
/// [`MigrateError::Declaration`] (a declared table or column is missing or of the wrong type;
/// checked after the migrations, which are rolled back with everything else), or a database
/// error.
///
/// ```no_run
/// # use rls_tenancy::{MigrateOptions, TenancyDeclaration, migrate_with, migrator_from_dir};
/// # async fn demo() -> rls_tenancy::Result<()> {
/// let migrator = migrator_from_dir("migrations").await?;
/// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?;
/// let options = MigrateOptions::new("postgres://app_deploy@localhost/app".parse()?, "app_runtime")?;
/// migrate_with(&migrator, &decl, &options).await?;
/// assert!(migrate_with(&migrator, &decl, &options).await?.is_noop());
/// # Ok(()) }
/// ```
#[tracing::instrument(skip_all, fields(url = %options.url, runtime_role = options.runtime_role.as_str()))]
pub async fn migrate_with(
    migrator: &Migrator,
    decl: &TenancyDeclaration,
    options: &MigrateOptions,
) -> Result<MigrateReport> {
    run(Some(migrator), decl, options).await
}

/// Installs the policies on `decl`'s tenant tables and grants the runtime role, without
/// running any migration: for teams that apply their migrations with their own tool. Run it
/// after every migration, in the same deployment step.
///
/// # Errors
/// As [`migrate_with`], but for the migration errors.
///
/// ```no_run
/// # use rls_tenancy::{MigrateOptions, TenancyDeclaration, install_policies};
/// # async fn demo() -> rls_tenancy::Result<()> {
/// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?;
/// let options = MigrateOptions::new("postgres://app_deploy@localhost/app".parse()?, "app_runtime")?;
/// install_policies(&decl, &options).await?;
/// # Ok(()) }
/// ```
#[tracing::instrument(skip_all, fields(url = %options.url, runtime_role = options.runtime_role.as_str()))]
pub async fn install_policies(
    decl: &TenancyDeclaration,
    options: &MigrateOptions,
) -> Result<MigrateReport> {
    run(None, decl, options).await
}

async fn run(
    migrator: Option<&Migrator>,
    decl: &TenancyDeclaration,
    options: &MigrateOptions,
) -> Result<MigrateReport> {
    let mut conn = connect::connect(&options.url).await?;
    let role_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)")
            .bind(options.runtime_role.as_str())
            .fetch_one(&mut conn)
            .await?;
    if !role_exists {
        return Err(MigrateError::MissingRole {
            role: options.runtime_role.as_str().to_owned(),
        });
    }

    // One transaction for everything: the migrations (each in a savepoint), the policies and
    // the grants. A failure anywhere leaves the database exactly as it was, never tables
    // without their policies.
    let mut tx = conn.begin().await?;
    let mut applied_migrations = Vec::new();
    if let Some(migrator) = migrator {
        let table = migrator.table_name.as_ref();
        let applied_before = applied_versions(&mut tx, table).await?;
        migrator.run(&mut *tx).await?;
        applied_migrations = applied_versions(&mut tx, table)
            .await?
            .into_iter()
            .filter(|v| !applied_before.contains(v))
            .collect();
    }
    // The declaration is checked against the tables the migrations just created: a name or
    // type that does not fit rolls back the migrations too.
    crate::policy::verify(&mut tx, decl).await??;
    let context =
        TenantContext::new(options.variable.clone(), decl.key_type()).with_mode(options.mode);
    let functions = InstalledFunctions::read(&mut tx, options).await?;
    let keys = match options.mode {
        TenantContextMode::Signed => {
            signed::install(
                &mut tx,
                options.tenant_key.as_ref(),
                options.retire_old_keys,
                &options.runtime_role,
                functions.current(),
            )
            .await?
        }
        TenantContextMode::Plain => signed::KeyChanges::default(),
    };
    let policies_installed =
        policies::install_policies(&mut tx, decl.schema(), decl, &context).await?;
    if options.mode == TenantContextMode::Plain {
        signed::uninstall(&mut tx).await?;
    }
    if !functions.current() {
        release_check::install(&mut tx, &options.runtime_role).await?;
        functions.mark(&mut tx).await?;
    }
    registry_notify::install_registry_notify(&mut tx, decl).await?;
    register_static_tenants(&mut tx, decl).await?;
    if decl.strategy() == crate::Strategy::Schema {
        // Where the tenant schemas' migrations are recorded, before the grants close it.
        sqlx::raw_sql(sqlx::AssertSqlSafe(records::create_sql(decl.schema())))
            .execute(&mut *tx)
            .await?;
    }
    grants::grant_runtime(&mut tx, decl, &options.runtime_role).await?;
    tx.commit().await?;

    Ok(MigrateReport {
        applied_migrations,
        policies_installed,
        tenant_context: options.mode,
        tenant_key_installed: keys.installed,
        tenant_keys_retired: keys.retired,
        tenant_keys: keys.accepted,
    })
}

/// Gives each static tenant its registry row (slug, and under the schema strategy its schema;
/// the registry's other columns take their defaults), so it has a tenant id for the database
/// wall and resolves like any tenant, in both strategies. A row that exists keeps its id and
/// gets the declared schema.
///
/// # Errors
/// [`DeclarationError::Invalid`] under the RLS strategy for a static tenant with its own
/// migrations or tenant tables: every tenant shares the declaration's tables there.
async fn register_static_tenants(conn: &mut PgConnection, decl: &TenancyDeclaration) -> Result<()> {
    if decl.static_tenants().is_empty() {
        return Ok(());
    }
    let schema_mode = decl.strategy() == crate::Strategy::Schema;
    if !schema_mode
        && let Some(own) = decl
            .static_tenants()
            .iter()
            .find(|t| t.migrations.is_some() || !t.tenant_tables.is_empty())
    {
        return Err(crate::policy::DeclarationError::Invalid {
            reason: format!(
                "static tenant {} has its own migrations or tenant tables, which need the schema strategy: under strategy \"rls\" every tenant's rows live in the shared tables; remove them or set strategy = \"schema\"",
                own.name
            ),
        }
        .into());
    }
    let registry = decl.registry();
    let (slugs, schemas): (Vec<&str>, Vec<&str>) = decl
        .static_tenants()
        .iter()
        .map(|t| (t.name.as_str(), t.schema.as_str()))
        .unzip();
    let (schema, table, slug) = (decl.schema(), &registry.table, &registry.slug_column);
    let query = if schema_mode {
        let column = &registry.schema_column;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {schema}.{table} ({slug}, {column})
             SELECT * FROM unnest($1::text[], $2::text[])
             ON CONFLICT ({slug}) DO UPDATE SET {column} = EXCLUDED.{column}
              WHERE {table}.{column} IS DISTINCT FROM EXCLUDED.{column}"
        )))
        .bind(slugs)
        .bind(schemas)
    } else {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {schema}.{table} ({slug}) SELECT unnest($1::text[])
             ON CONFLICT ({slug}) DO NOTHING"
        )))
        .bind(slugs)
    };
    query.execute(&mut *conn).await?;
    Ok(())
}

async fn applied_versions(conn: &mut PgConnection, table: &str) -> Result<Vec<i64>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(table)
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    let table = Ident::parse("table", table)?;
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT version FROM {table} WHERE success ORDER BY version"
    )))
    .fetch_all(&mut *conn)
    .await?)
}
