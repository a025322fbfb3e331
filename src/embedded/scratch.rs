//! [`ScratchDatabase`]: a database and two roles of one's own, removed afterwards.

use std::sync::atomic::{AtomicU32, Ordering};

use rand::RngExt;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgConnection};

use super::AdminServer;
use super::Result;
use crate::connect::{ConnectError, DatabaseUrl, connect as connect_to};
use crate::migrate::MigrateError;
use crate::migrate::{Bootstrap, MigrateOptions, bootstrap_sql, migrate_with};
use crate::policy::{Ident, TenancyDeclaration, TenantContextMode, TenantKey};

/// This repository's reference migrations (`migrations/`), compiled in: the schema the
/// tests, the benchmarks, the seeder and the demo run on.
pub static REFERENCE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// This repository's reference tenant migrations (`migrations/tenant/`), compiled in: the
/// tables of one tenant's own schema under `strategy = "schema"`, applied to each tenant
/// schema by [`crate::migrate_schemas`].
pub static REFERENCE_TENANT_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("./migrations/tenant");

/// A fresh database owned by a fresh deploy role, with a fresh runtime role, set up exactly as
/// the README's one-time SQL does. Names are unique per process and call, so tests run in
/// parallel. Dropping it drops the database (terminating its connections) and both roles.
///
/// ```no_run
/// use rls_tenancy::ScratchDatabase;
/// # async fn demo() -> rls_tenancy::Result<()> {
/// let db = ScratchDatabase::migrated().await?;
/// let runtime_url = db.runtime_url();   // log in as the runtime role
/// let admin = db.admin_pool().await?;   // superuser, for setting up fixtures
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ScratchDatabase {
    server: AdminServer,
    name: Ident,
    deploy_role: Ident,
    runtime_role: Ident,
    deploy_url: DatabaseUrl,
    runtime_url: DatabaseUrl,
    tenant_key: Option<TenantKey>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl ScratchDatabase {
    /// Creates the roles and the database on the process's shared [`AdminServer`].
    ///
    /// # Errors
    /// [`HarnessError::NoPostgres`] when no server can be found, or a database error.
    ///
    /// ```no_run
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let db = rls_tenancy::ScratchDatabase::create().await?;
    /// # Ok(()) }
    /// ```
    pub async fn create() -> Result<Self> {
        Self::create_on(AdminServer::shared().await?.clone()).await
    }

    /// Creates the roles and the database on `server`.
    ///
    /// # Errors
    /// A database error when the server refuses.
    ///
    /// ```no_run
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let server = rls_tenancy::AdminServer::start_local().await?;
    /// let db = rls_tenancy::ScratchDatabase::create_on(server).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_on(server: AdminServer) -> Result<Self> {
        let mut rng = rand::rng();
        let tag: u32 = rng.random_range(0..1_000_000);
        let base = format!(
            "rls_t{}_{}_{tag:06}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let password = |rng: &mut rand::rngs::ThreadRng| -> String {
            (0..24)
                .map(|_| {
                    char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)])
                })
                .collect()
        };
        let (deploy_password, runtime_password) = (password(&mut rng), password(&mut rng));
        let name = Ident::parse("database", &base)?;
        let deploy_role = Ident::parse("role", &format!("{base}_deploy"))?;
        let runtime_role = Ident::parse("role", &format!("{base}_runtime"))?;

        let mut admin = connect(server.admin_url()).await?;
        for statement in bootstrap_sql(&Bootstrap {
            database: &name,
            deploy_role: &deploy_role,
            runtime_role: &runtime_role,
            deploy_password: &deploy_password,
            runtime_password: &runtime_password,
        }) {
            sqlx::raw_sql(AssertSqlSafe(statement))
                .execute(&mut admin)
                .await?;
        }
        let db_url = server.admin_url().with_database(name.as_str());
        Ok(Self {
            deploy_url: db_url.with_credentials(deploy_role.as_str(), &deploy_password)?,
            runtime_url: db_url.with_credentials(runtime_role.as_str(), &runtime_password)?,
            server,
            name,
            deploy_role,
            runtime_role,
            tenant_key: None,
        })
    }

    /// Creates the database and runs [`migrate_with`] on it as the deploy role, with the
    /// plain tenant context (the policies read the tenant setting directly); see
    /// [`ScratchDatabase::migrated_signed`] for the signed one.
    ///
    /// # Errors
    /// As [`ScratchDatabase::create`] and [`migrate_with`].
    ///
    /// ```no_run
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let db = rls_tenancy::ScratchDatabase::migrated().await?;
    /// # Ok(()) }
    /// ```
    pub async fn migrated() -> Result<Self> {
        Self::migrated_on(AdminServer::shared().await?.clone()).await
    }

    /// Creates the database on `server` and migrates it, as [`ScratchDatabase::migrated`]
    /// does on the shared server: for tests that need a server of their own (an outage).
    ///
    /// # Errors
    /// As [`ScratchDatabase::create_on`] and [`migrate_with`].
    ///
    /// ```no_run
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let server = rls_tenancy::AdminServer::start_local().await?;
    /// let db = rls_tenancy::ScratchDatabase::migrated_on(server).await?;
    /// # Ok(()) }
    /// ```
    pub async fn migrated_on(server: AdminServer) -> Result<Self> {
        let db = Self::create_on(server).await?;
        let options = MigrateOptions::new(db.deploy_url.clone(), db.runtime_role.as_str())?
            .tenant_context(TenantContextMode::Plain);
        let declaration = TenancyDeclaration::reference().map_err(MigrateError::from)?;
        migrate_with(&REFERENCE_MIGRATIONS, &declaration, &options).await?;
        Ok(db)
    }

    /// Creates the database and migrates it with the signed tenant context and a fresh
    /// [`TenantKey`] ([`ScratchDatabase::tenant_key`]), as `rls-migrate` does by default.
    ///
    /// # Errors
    /// As [`ScratchDatabase::create`] and [`migrate_with`].
    ///
    /// ```no_run
    /// # use rls_tenancy::{TenancyDeclaration, TenantPool, TenantPoolOptions};
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let db = rls_tenancy::ScratchDatabase::migrated_signed().await?;
    /// let key = db.tenant_key().expect("signed").clone();
    /// let options = TenantPoolOptions::new(TenancyDeclaration::reference()?).tenant_key(key);
    /// let pool = TenantPool::connect(db.runtime_url(), options).await?;
    /// # Ok(()) }
    /// ```
    pub async fn migrated_signed() -> Result<Self> {
        Self::migrated_signed_on(AdminServer::shared().await?.clone()).await
    }

    /// [`ScratchDatabase::migrated_signed`] on `server`.
    ///
    /// # Errors
    /// As [`ScratchDatabase::create_on`] and [`migrate_with`].
    ///
    /// ```no_run
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let server = rls_tenancy::AdminServer::start_local().await?;
    /// let db = rls_tenancy::ScratchDatabase::migrated_signed_on(server).await?;
    /// # Ok(()) }
    /// ```
    pub async fn migrated_signed_on(server: AdminServer) -> Result<Self> {
        let mut db = Self::create_on(server).await?;
        let key = TenantKey::generate();
        let options = MigrateOptions::new(db.deploy_url.clone(), db.runtime_role.as_str())?
            .tenant_key(key.clone());
        let declaration = TenancyDeclaration::reference().map_err(MigrateError::from)?;
        migrate_with(&REFERENCE_MIGRATIONS, &declaration, &options).await?;
        db.tenant_key = Some(key);
        Ok(db)
    }

    /// The tenant key the database was migrated with, for a signed database.
    ///
    /// ```no_run
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let db = rls_tenancy::ScratchDatabase::migrated().await?;
    /// assert!(db.tenant_key().is_none());
    /// # Ok(()) }
    /// ```
    pub fn tenant_key(&self) -> Option<&TenantKey> {
        self.tenant_key.as_ref()
    }

    /// The database's name.
    ///
    /// ```no_run
    /// # async fn demo(db: rls_tenancy::ScratchDatabase) {
    /// assert!(db.name().as_str().starts_with("rls_t"));
    /// # }
    /// ```
    pub fn name(&self) -> &Ident {
        &self.name
    }

    /// The deploy role (owns the database and, after migration, the schema).
    ///
    /// ```no_run
    /// # async fn demo(db: rls_tenancy::ScratchDatabase) {
    /// assert!(db.deploy_role().as_str().ends_with("_deploy"));
    /// # }
    /// ```
    pub fn deploy_role(&self) -> &Ident {
        &self.deploy_role
    }

    /// The runtime role (DML only).
    ///
    /// ```no_run
    /// # async fn demo(db: rls_tenancy::ScratchDatabase) {
    /// assert!(db.runtime_role().as_str().ends_with("_runtime"));
    /// # }
    /// ```
    pub fn runtime_role(&self) -> &Ident {
        &self.runtime_role
    }

    /// A URL that logs in to this database as the deploy role.
    ///
    /// ```no_run
    /// # async fn demo(db: rls_tenancy::ScratchDatabase) {
    /// let url = db.deploy_url();
    /// # }
    /// ```
    pub fn deploy_url(&self) -> &DatabaseUrl {
        &self.deploy_url
    }

    /// A URL that logs in to this database as the runtime role.
    ///
    /// ```no_run
    /// # async fn demo(db: rls_tenancy::ScratchDatabase) {
    /// let url = db.runtime_url();
    /// # }
    /// ```
    pub fn runtime_url(&self) -> &DatabaseUrl {
        &self.runtime_url
    }

    /// A URL that logs in to this database as the superuser.
    ///
    /// ```no_run
    /// # async fn demo(db: rls_tenancy::ScratchDatabase) {
    /// let url = db.admin_url();
    /// # }
    /// ```
    pub fn admin_url(&self) -> DatabaseUrl {
        self.server.admin_url().with_database(self.name.as_str())
    }

    /// A small superuser pool on this database, for fixtures and for injecting faults.
    ///
    /// # Errors
    /// [`Error::Connect`] when the server refuses.
    ///
    /// ```no_run
    /// # async fn demo(db: rls_tenancy::ScratchDatabase) -> rls_tenancy::Result<()> {
    /// let admin = db.admin_pool().await?;
    /// sqlx::query("SELECT 1").execute(&admin).await?;
    /// # Ok(()) }
    /// ```
    pub async fn admin_pool(&self) -> Result<PgPool> {
        let url = self.admin_url();
        Ok(PgPoolOptions::new()
            .max_connections(2)
            .connect_with(url.connect_options()?)
            .await
            .map_err(|source| ConnectError::Unreachable {
                url: url.redacted(),
                source,
            })?)
    }

    async fn drop_everything(admin_url: DatabaseUrl, statements: Vec<String>) -> Result<()> {
        let mut admin = connect(&admin_url).await?;
        for statement in statements {
            sqlx::raw_sql(AssertSqlSafe(statement))
                .execute(&mut admin)
                .await?;
        }
        Ok(())
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let statements = vec![
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            // Privileges the roles were given on other databases (a test granting CONNECT on a
            // second scratch database) are shared objects, which would keep the roles alive.
            format!("DROP OWNED BY {}, {}", self.runtime_role, self.deploy_role),
            format!("DROP ROLE IF EXISTS {}", self.runtime_role),
            format!("DROP ROLE IF EXISTS {}", self.deploy_role),
        ];
        let admin_url = self.server.admin_url().clone();
        // Drop cannot await; clean up on a private runtime in a thread of its own so this
        // works inside or outside an async context, and also while a test is panicking.
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(Self::drop_everything(admin_url, statements))
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, database = self.name.as_str(), "could not drop the scratch database");
            }
            Err(_) => tracing::warn!(
                database = self.name.as_str(),
                "the scratch database clean-up thread panicked"
            ),
        }
    }
}

async fn connect(url: &DatabaseUrl) -> Result<PgConnection> {
    Ok(connect_to(url).await?)
}
