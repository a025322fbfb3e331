//! [`ScratchServers`]: the database strategy's test bed over two real servers.

use sqlx::{AssertSqlSafe, Connection};

use super::{AdminServer, REFERENCE_MIGRATIONS, Result, ScratchDatabase};
use crate::connect::{ConnectError, DatabaseUrl, Server, ServerSet, connect};
use crate::migrate::{MigrateError, MigrateOptions, migrate_with};
use crate::policy::{Ident, Strategy, TenancyDeclaration, TenantKey, quote_literal};

/// A control database on [`AdminServer::shared`] (a [`ScratchDatabase`] migrated with the
/// reference schema under the database strategy, with the signed tenant context and a key
/// of its own) and the same deploy and runtime roles, with the same passwords, on
/// [`AdminServer::second`]; the deploy role may create databases on both. The servers are
/// named `one` and `two`. Dropping it drops every database the deploy role made on either
/// server, then the roles.
///
/// ```no_run
/// # async fn demo() -> rls_tenancy::Result<()> {
/// let bed = rls_tenancy::ScratchServers::create().await?;
/// assert_eq!(bed.deploy_servers().len(), 2);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ScratchServers {
    second: AdminServer,
    declaration: TenancyDeclaration,
    key: TenantKey,
    deploy_servers: ServerSet,
    runtime_servers: ServerSet,
    /// Dropped last: the roles it drops own nothing by then.
    control: ScratchDatabase,
}

impl ScratchServers {
    /// Creates the control database and the roles on both servers, starting the second
    /// server on first use.
    ///
    /// # Errors
    /// [`crate::HarnessError::NoPostgres`] when a server cannot be found or started; a
    /// database error when the roles or the control database cannot be made.
    pub async fn create() -> Result<Self> {
        Self::create_with(AdminServer::second().await?.clone()).await
    }

    /// As [`ScratchServers::create`], with `second` as server `two`: for a test that stops
    /// its second server (a cluster of its own from [`AdminServer::start_local`]).
    ///
    /// # Errors
    /// As [`ScratchServers::create`].
    ///
    /// ```no_run
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let own = rls_tenancy::AdminServer::start_local().await?;
    /// let bed = rls_tenancy::ScratchServers::create_with(own).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_with(second: AdminServer) -> Result<Self> {
        Self::create_on(AdminServer::shared().await?.clone(), second).await
    }

    /// As [`ScratchServers::create`], on `first` (server `one`, holding the control database)
    /// and `second` (server `two`): for the embedded demo, which starts both clusters itself.
    ///
    /// # Errors
    /// As [`ScratchServers::create`].
    ///
    /// ```no_run
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// use rls_tenancy::{AdminServer, ScratchServers};
    /// let (one, two) = tokio::try_join!(AdminServer::start_local(), AdminServer::start_local())?;
    /// let bed = ScratchServers::create_on(one, two).await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_on(first: AdminServer, second: AdminServer) -> Result<Self> {
        let control = ScratchDatabase::create_on(first.clone()).await?;
        let deploy_password = password(control.deploy_url())?;
        let runtime_password = password(control.runtime_url())?;
        let (deploy, runtime) = (control.deploy_role(), control.runtime_role());
        let mut admin = connect(first.admin_url()).await?;
        sqlx::raw_sql(AssertSqlSafe(format!("ALTER ROLE {deploy} CREATEDB")))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        let mut admin = connect(second.admin_url()).await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE ROLE {deploy} LOGIN PASSWORD {} NOSUPERUSER CREATEDB NOCREATEROLE NOBYPASSRLS;
             CREATE ROLE {runtime} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOBYPASSRLS",
            quote_literal(&deploy_password),
            quote_literal(&runtime_password),
        )))
        .execute(&mut admin)
        .await?;
        admin.close().await?;
        let declaration = TenancyDeclaration::reference()
            .map_err(MigrateError::from)?
            .with_strategy(Strategy::Database);
        let key = TenantKey::generate();
        let options = MigrateOptions::new(control.deploy_url().clone(), runtime.as_str())?
            .tenant_key(key.clone());
        migrate_with(&REFERENCE_MIGRATIONS, &declaration, &options).await?;
        let servers = |user: &str, password: &str| -> Result<ServerSet> {
            let named = |name: &str, server: &AdminServer| -> Result<Server> {
                let url = server
                    .admin_url()
                    .with_database("postgres")
                    .with_credentials(user, password)?;
                Ok(Server::new(name.parse()?, url))
            };
            Ok(ServerSet::new(vec![
                named("one", &first)?,
                named("two", &second)?,
            ])?)
        };
        Ok(Self {
            deploy_servers: servers(deploy.as_str(), &deploy_password)?,
            runtime_servers: servers(runtime.as_str(), &runtime_password)?,
            second,
            declaration,
            key,
            control,
        })
    }

    /// Server `two`.
    pub fn second(&self) -> &AdminServer {
        &self.second
    }

    /// The control database, holding the registry.
    pub fn control(&self) -> &ScratchDatabase {
        &self.control
    }

    /// The reference declaration under [`Strategy::Database`].
    pub fn declaration(&self) -> &TenancyDeclaration {
        &self.declaration
    }

    /// The tenant key installed in the control database (tenant databases get it too).
    pub fn tenant_key(&self) -> &TenantKey {
        &self.key
    }

    /// The migration options for tenant databases: the deploy role, the runtime role, the
    /// signed context with [`ScratchServers::tenant_key`].
    ///
    /// # Errors
    /// Never in practice (the role names are valid); as [`MigrateOptions::new`].
    pub fn migrate_options(&self) -> Result<MigrateOptions> {
        Ok(MigrateOptions::new(
            self.control.deploy_url().clone(),
            self.control.runtime_role().as_str(),
        )?
        .tenant_key(self.key.clone()))
    }

    /// The two servers as the deploy role reaches them (for `rls-tenant`, `rls-migrate`).
    pub fn deploy_servers(&self) -> &ServerSet {
        &self.deploy_servers
    }

    /// The two servers as the runtime role reaches them (for the tenant pool, `rls-check`).
    pub fn runtime_servers(&self) -> &ServerSet {
        &self.runtime_servers
    }

    /// The superuser URL of server `one` or `two` (database `postgres`).
    pub fn admin_url(&self, server: &str) -> Option<DatabaseUrl> {
        match server {
            "one" => Some(self.control.admin_url().with_database("postgres")),
            "two" => Some(self.second.admin_url().clone()),
            _ => None,
        }
    }

    async fn clean_up(
        urls: Vec<DatabaseUrl>,
        deploy: Ident,
        runtime: Ident,
        control: Ident,
    ) -> Result<()> {
        for (n, url) in urls.iter().enumerate() {
            let mut admin = connect(url).await?;
            let databases: Vec<String> = sqlx::query_scalar(
                "SELECT quote_ident(d.datname) FROM pg_catalog.pg_database d
                  JOIN pg_catalog.pg_roles r ON r.oid = d.datdba
                 WHERE r.rolname = $1 AND d.datname <> $2",
            )
            .bind(deploy.as_str())
            .bind(control.as_str())
            .fetch_all(&mut admin)
            .await?;
            for database in databases {
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await?;
            }
            // The first server's roles go with the control database.
            if n > 0 {
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP ROLE IF EXISTS {runtime}; DROP ROLE IF EXISTS {deploy}"
                )))
                .execute(&mut admin)
                .await?;
            }
            admin.close().await?;
        }
        Ok(())
    }
}

impl Drop for ScratchServers {
    fn drop(&mut self) {
        let urls = vec![
            self.control.admin_url().with_database("postgres"),
            self.second.admin_url().clone(),
        ];
        let deploy = self.control.deploy_role().clone();
        let runtime = self.control.runtime_role().clone();
        let control = self.control.name().clone();
        // As ScratchDatabase: Drop cannot await, so a thread of its own with a runtime.
        let cleanup = std::thread::spawn(move || {
            let runtime_rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime_rt.block_on(Self::clean_up(urls, deploy, runtime, control))
        });
        match cleanup.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not clean up the scratch servers"),
            Err(_) => tracing::warn!("the scratch servers clean-up thread panicked"),
        }
    }
}

/// The password a harness URL carries.
fn password(url: &DatabaseUrl) -> Result<String> {
    url::Url::parse(url.expose_secret())
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
        .ok_or_else(|| {
            ConnectError::InvalidUrl {
                reason: "the harness URL carries no password".into(),
            }
            .into()
        })
}
