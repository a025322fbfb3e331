//! [`SeedOptions`]: what `rls-seed` was asked for, as given; [`SeedPlan`]: the same, checked.

use std::borrow::Cow;
use std::sync::Arc;

use sqlx::migrate::Migrator;

use super::profile::{Distribution, SeedLevel, SeedProfile};
use super::{Result, SeedError};
use crate::connect::ServerSet;
use crate::placement::DatabasePattern;
use crate::policy::{Ident, TenantKey};

/// The most connections `--jobs` may open.
const MAX_JOBS: i64 = 64;

/// What to seed, as given on the command line. Values are kept as given (counts as `i64`) and
/// checked by [`crate::seed()`] before it connects, so a negative or inconsistent value gets
/// a clear [`SeedError::InvalidOption`] rather than a wrapped number.
///
/// ```
/// use rls_tenancy::{SeedLevel, SeedOptions};
/// let options = SeedOptions::new(2000)
///     .seed(42)
///     .profile("reference")
///     .min(SeedLevel::Tasks, 2)
///     .max(SeedLevel::Tasks, 4)
///     .jobs(2);
/// assert!(options.validate().is_ok());
/// assert!(SeedOptions::new(0).validate().is_err());
/// assert!(SeedOptions::new(5).min(SeedLevel::Users, 9).validate().is_err()); // 9 > 5
/// ```
#[derive(Debug, Clone)]
pub struct SeedOptions {
    accounts: i64,
    seed: u64,
    profile: String,
    overrides: [(Option<i64>, Option<i64>); 4],
    jobs: Option<i64>,
    resume: bool,
    rollback: bool,
    progress: bool,
    schemas: Option<SchemaSeeding>,
    databases: Option<DatabaseSeeding>,
    tenant_key: Option<TenantKey>,
}

/// The database strategy's part of [`SeedOptions`]: each account in a database of its own.
#[derive(Debug, Clone)]
struct DatabaseSeeding {
    servers: ServerSet,
    pattern: DatabasePattern,
    tenant: SchemaSeeding,
}

/// The database strategy's part of a [`SeedPlan`], checked.
#[derive(Debug, Clone)]
pub(crate) struct DatabasePlan {
    /// The servers (the deploy role's URLs), in the order given.
    pub(crate) servers: ServerSet,
    /// How each tenant's database is named.
    pub(crate) pattern: DatabasePattern,
    /// The tenant migrations and the runtime role, as for a tenant schema.
    pub(crate) tenant: SchemaPlan,
    /// The application's tenant key, for a template database made under the signed context.
    pub(crate) tenant_key: Option<TenantKey>,
}

/// The schema strategy's part of [`SeedOptions`]: each account in a schema of its own.
#[derive(Debug, Clone)]
struct SchemaSeeding {
    migrations: Arc<Migrator>,
    runtime_role: String,
}

/// The schema strategy's part of a [`SeedPlan`], checked.
#[derive(Debug, Clone)]
pub(crate) struct SchemaPlan {
    /// The tenant migrations applied to each new tenant schema.
    pub(crate) migrations: Arc<Migrator>,
    /// The role granted DML on each new tenant schema's tables.
    pub(crate) runtime_role: Ident,
}

/// Validated options.
#[derive(Debug, Clone)]
pub(crate) struct SeedPlan {
    pub(crate) accounts: u64,
    pub(crate) seed: u64,
    pub(crate) distribution: Distribution,
    pub(crate) jobs: u32,
    pub(crate) resume: bool,
    pub(crate) rollback: bool,
    pub(crate) progress: bool,
    /// `Some` under the schema strategy.
    pub(crate) schemas: Option<SchemaPlan>,
    /// `Some` under the database strategy.
    pub(crate) databases: Option<DatabasePlan>,
}

impl SeedOptions {
    /// The seed used when none is given, so that runs are reproducible by default.
    pub const DEFAULT_SEED: u64 = 0;

    /// The profile used when none is given: the reference distribution.
    pub const DEFAULT_PROFILE: &'static str = "reference";

    /// Options for `accounts` accounts with the default seed and profile, as many jobs as
    /// there are CPUs, no resume, no rollback, no progress bar.
    ///
    /// ```
    /// let options = rls_tenancy::SeedOptions::new(10);
    /// assert!(options.validate().is_ok());
    /// ```
    pub fn new(accounts: i64) -> Self {
        Self {
            accounts,
            seed: Self::DEFAULT_SEED,
            profile: Self::DEFAULT_PROFILE.to_owned(),
            overrides: [(None, None); 4],
            jobs: None,
            resume: false,
            rollback: false,
            progress: false,
            schemas: None,
            databases: None,
            tenant_key: None,
        }
    }

    /// The random seed: the same seed gives the same data.
    ///
    /// ```
    /// let options = rls_tenancy::SeedOptions::new(10).seed(7);
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The profile from seed/ that gives the count ranges.
    ///
    /// ```
    /// assert!(rls_tenancy::SeedOptions::new(10).profile("nope").validate().is_err());
    /// ```
    pub fn profile(mut self, name: &str) -> Self {
        name.clone_into(&mut self.profile);
        self
    }

    /// Overrides the profile's minimum for `level`.
    ///
    /// ```
    /// use rls_tenancy::{SeedLevel, SeedOptions};
    /// assert!(SeedOptions::new(1).min(SeedLevel::Subtasks, -1).validate().is_err());
    /// ```
    pub fn min(mut self, level: SeedLevel, n: i64) -> Self {
        self.overrides[level as usize].0 = Some(n);
        self
    }

    /// Overrides the profile's maximum for `level`.
    ///
    /// ```
    /// use rls_tenancy::{SeedLevel, SeedOptions};
    /// assert!(SeedOptions::new(1).max(SeedLevel::Projects, 3).validate().is_ok());
    /// ```
    pub fn max(mut self, level: SeedLevel, n: i64) -> Self {
        self.overrides[level as usize].1 = Some(n);
        self
    }

    /// How many connections load in parallel (default: the available parallelism).
    ///
    /// ```
    /// assert!(rls_tenancy::SeedOptions::new(1).jobs(0).validate().is_err());
    /// ```
    pub fn jobs(mut self, n: i64) -> Self {
        self.jobs = Some(n);
        self
    }

    /// Adds only the missing accounts when some already exist (otherwise that is refused).
    ///
    /// ```
    /// let options = rls_tenancy::SeedOptions::new(10).resume(true);
    /// ```
    pub fn resume(mut self, yes: bool) -> Self {
        self.resume = yes;
        self
    }

    /// Generates and writes everything, then rolls every account back.
    ///
    /// ```
    /// let options = rls_tenancy::SeedOptions::new(10).rollback(true);
    /// ```
    pub fn rollback(mut self, yes: bool) -> Self {
        self.rollback = yes;
        self
    }

    /// Shows a progress bar on stderr when it is a terminal.
    ///
    /// ```
    /// let options = rls_tenancy::SeedOptions::new(10).progress(true);
    /// ```
    pub fn progress(mut self, yes: bool) -> Self {
        self.progress = yes;
        self
    }

    /// Seeds under the schema strategy (`rls-seed --strategy schema`): each account gets a
    /// schema of its own (its slug with `-` written `_`: `tenant-0` in `tenant_0`), created
    /// and brought up to date with `tenant_migrations`, its policies installed and
    /// `runtime_role` granted DML on its tables, all in the account's own tenant transaction
    /// together with its registry row and its rows: an account is whole, schema included, or
    /// absent. The rows are the same as under the RLS strategy but for their ids, which
    /// count from 1 in each schema.
    ///
    /// ```no_run
    /// # use rls_tenancy::{SeedOptions, migrator_from_dir, seed};
    /// # async fn demo(url: rls_tenancy::DatabaseUrl) -> rls_tenancy::Result<()> {
    /// let tenant_migrations = migrator_from_dir("migrations/tenant").await?;
    /// let options = SeedOptions::new(2000).in_tenant_schemas(&tenant_migrations, "app_runtime");
    /// let report = seed(&url, &options).await?;
    /// # Ok(()) }
    /// ```
    pub fn in_tenant_schemas(mut self, tenant_migrations: &Migrator, runtime_role: &str) -> Self {
        self.schemas = Some(SchemaSeeding::new(tenant_migrations, runtime_role));
        self
    }

    /// Seeds under the database strategy (`rls-seed --strategy database`): each account gets
    /// a database of its own on one of `servers` (the deploy role's URLs), placed by
    /// [`crate::seed_placement`]'s rule and named by `pattern`, created through the tenant
    /// lifecycle ([`crate::TenantLifecycle::create`]: a clone of the server's template
    /// database, brought up to date with `tenant_migrations`, `CONNECT` for `runtime_role`)
    /// and registered in the control database; then its rows are written in its own tenant
    /// transaction in its own database. The rows are the same as under the schema strategy
    /// (ids counting from 1 in each database). A tenant whose rows fail to load is dropped
    /// again, so an account is whole or absent. The accounts are created one after another
    /// (the lifecycle's create lock makes them take turns anyway) and loaded `--jobs` at a
    /// time per server.
    ///
    /// ```no_run
    /// # use rls_tenancy::{DatabasePattern, SeedOptions, ServerSet, migrator_from_dir, seed};
    /// # async fn demo(control: rls_tenancy::DatabaseUrl) -> Result<(), Box<dyn std::error::Error>> {
    /// let servers = ServerSet::parse_list("eu1=postgres://app_deploy:pw@db1/postgres,eu2=postgres://app_deploy:pw@db2/postgres")?;
    /// let tenant_migrations = migrator_from_dir("migrations/tenant").await?;
    /// let options = SeedOptions::new(100).in_tenant_databases(servers, DatabasePattern::default(), &tenant_migrations, "app_runtime");
    /// let report = seed(&control, &options).await?;
    /// # Ok(()) }
    /// ```
    pub fn in_tenant_databases(
        mut self,
        servers: ServerSet,
        pattern: DatabasePattern,
        tenant_migrations: &Migrator,
        runtime_role: &str,
    ) -> Self {
        self.databases = Some(DatabaseSeeding {
            servers,
            pattern,
            tenant: SchemaSeeding::new(tenant_migrations, runtime_role),
        });
        self
    }

    /// The application's tenant key (`rls-seed --tenant-key-file`, the file `rls-migrate`
    /// installed): under [`SeedOptions::in_tenant_databases`] with the signed tenant context,
    /// a server's template database is made with it when it does not exist yet.
    ///
    /// ```
    /// let options = rls_tenancy::SeedOptions::new(10).tenant_key(rls_tenancy::TenantKey::generate());
    /// ```
    pub fn tenant_key(mut self, key: TenantKey) -> Self {
        self.tenant_key = Some(key);
        self
    }

    /// Whether [`SeedOptions::in_tenant_schemas`] was given.
    ///
    /// ```
    /// assert!(!rls_tenancy::SeedOptions::new(5).seeds_tenant_schemas());
    /// ```
    pub fn seeds_tenant_schemas(&self) -> bool {
        self.schemas.is_some()
    }

    /// Checks the options without connecting.
    ///
    /// # Errors
    /// [`SeedError::InvalidOption`] naming the flag at fault, [`SeedError::UnknownProfile`].
    ///
    /// ```
    /// let err = rls_tenancy::SeedOptions::new(-3).validate().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid --accounts: -3 is not a number of accounts: use 1 or more");
    /// ```
    pub fn validate(&self) -> Result<()> {
        self.plan().map(|_| ())
    }

    pub(crate) fn plan(&self) -> Result<SeedPlan> {
        if self.accounts < 1 {
            return Err(SeedError::InvalidOption {
                option: "--accounts",
                reason: format!(
                    "{} is not a number of accounts: use 1 or more",
                    self.accounts
                ),
            });
        }
        let jobs = match self.jobs {
            None => std::thread::available_parallelism().map_or(1, |n| n.get() as i64),
            Some(n) if (1..=MAX_JOBS).contains(&n) => n,
            Some(n) => {
                return Err(SeedError::InvalidOption {
                    option: "--jobs",
                    reason: format!("{n} is not a number of connections: use 1 to {MAX_JOBS}"),
                });
            }
        };
        let mut distribution = SeedProfile::builtin(&self.profile)?.distribution();
        for level in SeedLevel::ALL {
            if let (None, None) = self.overrides[level as usize] {
                continue;
            }
            let (min, max) = self.overrides[level as usize];
            distribution = distribution.with(level, min, max)?;
        }
        Ok(SeedPlan {
            accounts: self.accounts as u64,
            seed: self.seed,
            distribution,
            jobs: jobs.clamp(1, MAX_JOBS) as u32,
            resume: self.resume,
            rollback: self.rollback,
            progress: self.progress,
            schemas: self.schemas.as_ref().map(SchemaSeeding::plan).transpose()?,
            databases: self.databases.as_ref().map(|d| d.plan(self)).transpose()?,
        })
    }
}

/// A migrator of its own with `migrator`'s migrations (a [`Migrator`] is not `Clone`).
pub(crate) fn copy_migrator(migrator: &Migrator) -> Migrator {
    Migrator {
        migrations: Cow::Owned(migrator.iter().cloned().collect()),
        ..Migrator::DEFAULT
    }
}

impl DatabaseSeeding {
    fn plan(&self, options: &SeedOptions) -> Result<DatabasePlan> {
        if options.rollback {
            return Err(SeedError::InvalidOption {
                option: "--rollback",
                reason: "not available with --strategy database, which creates each tenant's database: seed a scratch control database instead".into(),
            });
        }
        super::spread::seed_placement(options.accounts.max(0) as u64, &self.servers)?;
        Ok(DatabasePlan {
            servers: self.servers.clone(),
            pattern: self.pattern.clone(),
            tenant: self.tenant.plan()?,
            tenant_key: options.tenant_key.clone(),
        })
    }
}

impl SchemaSeeding {
    fn new(tenant_migrations: &Migrator, runtime_role: &str) -> Self {
        Self {
            migrations: Arc::new(copy_migrator(tenant_migrations)),
            runtime_role: runtime_role.to_owned(),
        }
    }

    fn plan(&self) -> Result<SchemaPlan> {
        let runtime_role =
            Ident::parse("role", &self.runtime_role).map_err(|e| SeedError::InvalidOption {
                option: "--runtime-role",
                reason: e.to_string(),
            })?;
        Ok(SchemaPlan {
            migrations: Arc::clone(&self.migrations),
            runtime_role,
        })
    }
}
