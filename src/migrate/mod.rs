//! `rls-migrate`: as the deploy role, apply migrations/, install policies/, grant the
//! runtime role exactly what it needs. Idempotent: a second run changes nothing.
//!
//! ```no_run
//! use rls_tenancy::{MigrateOptions, migrate};
//! # async fn demo() -> rls_tenancy::Result<()> {
//! let deploy = "postgres://app_deploy:pw@127.0.0.1/app".parse()?;
//! let report = migrate(&deploy, &MigrateOptions::new("app_runtime")?).await?;
//! println!("{report}");
//! # Ok(()) }
//! ```

mod bootstrap;
mod grants;
mod policies;

use std::fmt;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

pub use bootstrap::{Bootstrap, bootstrap_sql};

use crate::db::DatabaseUrl;
use crate::error::{Error, Result};
use crate::policy::{Ident, TenancyDeclaration, TenantVariable};

/// The migrations in migrations/, compiled in.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What [`migrate`] needs besides the deploy role's URL.
///
/// ```
/// use rls_tenancy::MigrateOptions;
/// let options = MigrateOptions::new("app_runtime")?;
/// assert_eq!(options.runtime_role().as_str(), "app_runtime");
/// assert!(MigrateOptions::new("bad role").is_err());
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    runtime_role: Ident,
    variable: TenantVariable,
    declaration: TenancyDeclaration,
}

impl MigrateOptions {
    /// The default runtime role name.
    pub const DEFAULT_RUNTIME_ROLE: &'static str = "app_runtime";

    /// Options for granting `runtime_role`, with the built-in declaration and variable.
    ///
    /// # Errors
    /// [`Error::InvalidIdentifier`] when the role name is not a plain identifier.
    ///
    /// ```
    /// # use rls_tenancy::MigrateOptions;
    /// let options = MigrateOptions::new(MigrateOptions::DEFAULT_RUNTIME_ROLE)?;
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn new(runtime_role: &str) -> Result<Self> {
        Ok(Self {
            runtime_role: Ident::parse("role", runtime_role)?,
            variable: TenantVariable::default(),
            declaration: TenancyDeclaration::builtin()?,
        })
    }

    /// Uses another tenant setting name in the policies.
    ///
    /// ```
    /// # use rls_tenancy::{MigrateOptions, TenantVariable};
    /// let options = MigrateOptions::new("app_runtime")?
    ///     .tenant_variable(TenantVariable::parse("myapp.tenant")?);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn tenant_variable(mut self, variable: TenantVariable) -> Self {
        self.variable = variable;
        self
    }

    /// Uses another declaration of tenant tables than the built-in `policies/tenancy.toml`.
    ///
    /// ```
    /// # use rls_tenancy::{MigrateOptions, TenancyDeclaration};
    /// let options = MigrateOptions::new("app_runtime")?
    ///     .declaration(TenancyDeclaration::builtin()?);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn declaration(mut self, declaration: TenancyDeclaration) -> Self {
        self.declaration = declaration;
        self
    }

    /// The role that is granted DML.
    ///
    /// ```
    /// # use rls_tenancy::MigrateOptions;
    /// assert_eq!(MigrateOptions::new("rt")?.runtime_role().as_str(), "rt");
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn runtime_role(&self) -> &Ident {
        &self.runtime_role
    }
}

/// What a [`migrate`] run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrateReport {
    /// Versions of the migrations applied by this run.
    pub applied_migrations: Vec<i64>,
    /// Tables whose policy or RLS state was (re)installed by this run.
    pub policies_installed: Vec<String>,
}

impl MigrateReport {
    /// Whether this run found everything already in place.
    ///
    /// ```
    /// assert!(rls_tenancy::MigrateReport::default().is_noop());
    /// ```
    pub fn is_noop(&self) -> bool {
        self.applied_migrations.is_empty() && self.policies_installed.is_empty()
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
        write!(f, "grants: runtime role privileges reset to DML only")
    }
}

/// Applies migrations, installs policies and grants the runtime role, as the deploy role.
///
/// Migrations, policies and grants are applied in one transaction: a failure anywhere
/// leaves nothing changed.
///
/// # Errors
/// [`Error::Connect`] (unreachable, refused), [`Error::MissingRole`] (runtime role absent),
/// [`Error::Migration`] (a migration failed and was rolled back), or a database error.
///
/// ```no_run
/// # use rls_tenancy::{MigrateOptions, migrate};
/// # async fn demo() -> rls_tenancy::Result<()> {
/// let report = migrate(&"postgres://app_deploy@localhost/app".parse()?, &MigrateOptions::new("app_runtime")?).await?;
/// assert!(migrate(&"postgres://app_deploy@localhost/app".parse()?, &MigrateOptions::new("app_runtime")?).await?.is_noop());
/// # Ok(()) }
/// ```
#[tracing::instrument(skip_all, fields(url = %url, runtime_role = options.runtime_role.as_str()))]
pub async fn migrate(url: &DatabaseUrl, options: &MigrateOptions) -> Result<MigrateReport> {
    let mut conn = PgConnection::connect_with(&url.connect_options()?)
        .await
        .map_err(|source| Error::Connect {
            url: url.redacted(),
            source,
        })?;
    let role_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)")
            .bind(options.runtime_role.as_str())
            .fetch_one(&mut conn)
            .await?;
    if !role_exists {
        return Err(Error::MissingRole {
            role: options.runtime_role.as_str().to_owned(),
        });
    }

    // One transaction for everything: the migrations (each in a savepoint), the policies and
    // the grants. A failure anywhere leaves the database exactly as it was, never tables
    // without their policies.
    let mut tx = conn.begin().await?;
    let applied_before = applied_versions(&mut tx).await?;
    MIGRATOR
        .run(&mut *tx)
        .await
        .map_err(|source| Error::Migration { source })?;
    let applied_migrations = applied_versions(&mut tx)
        .await?
        .into_iter()
        .filter(|v| !applied_before.contains(v))
        .collect();
    let policies_installed =
        policies::install_policies(&mut tx, &options.declaration, &options.variable).await?;
    grants::grant_runtime(&mut tx, &options.declaration, &options.runtime_role).await?;
    tx.commit().await?;

    Ok(MigrateReport {
        applied_migrations,
        policies_installed,
    })
}

async fn applied_versions(conn: &mut PgConnection) -> Result<Vec<i64>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    Ok(
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&mut *conn)
            .await?,
    )
}
