//! The database mode's side of the lifecycle: which server a new tenant goes to, its
//! database name, and the create that commits the registry row only once the database is made.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, PgConnection};

use super::create::NewTenant;
use super::{
    LifecycleError, Result, TenantLifecycle, TenantRecord, drop_tenant_database, provision_database,
};
use crate::connect::{ConnectError, Server, ServerName, ServerSet};
use crate::placement::{DatabaseName, DatabasePattern};
use crate::policy::Strategy;
use crate::resolve::add_domain;

/// The advisory lock (in the control database) that serializes database-mode creates, so two
/// of them never both take a server's last place: "rlsnew" in ASCII.
const CREATE_LOCK: i64 = 0x726c_736e_6577;

/// Where the database mode puts tenant databases.
#[derive(Debug)]
pub(super) struct TenantDatabases {
    pub(super) servers: ServerSet,
    pattern: DatabasePattern,
    /// The control database's name: the pattern's `<base>`.
    base: String,
}

impl TenantDatabases {
    /// The configured server named `name`.
    pub(super) fn server(&self, name: &ServerName) -> Result<&Server> {
        Ok(self.servers.server(name)?)
    }

    /// The template database tenant databases are cloned from, on each server.
    pub(super) fn template(&self) -> Result<DatabaseName> {
        Ok(self.pattern.template(&self.base)?)
    }
}

impl TenantLifecycle {
    /// The servers tenant databases go to and how they are named: needed in the database
    /// mode (a new tenant goes to the server with the fewest tenants unless
    /// [`NewTenant::server`] names one; a server at its `max_tenants` takes no more). The
    /// pattern's `<base>` is the control database's name.
    ///
    /// ```no_run
    /// use rls_tenancy::{DatabasePattern, MigrateOptions, ServerSet, Strategy, TenancyDeclaration, TenantLifecycle};
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?.with_strategy(Strategy::Database);
    /// let options = MigrateOptions::new("postgres://app_deploy@control/app".parse()?, "app_runtime")?;
    /// let servers = ServerSet::parse_list("eu1=postgres://app_deploy@db1/postgres,eu2=postgres://app_deploy@db2/postgres")?;
    /// let lifecycle = TenantLifecycle::connect(decl, options).await?.servers(servers, DatabasePattern::default());
    /// # Ok(()) }
    /// ```
    pub fn servers(mut self, servers: ServerSet, pattern: DatabasePattern) -> Self {
        let base = self.options.url.database().unwrap_or("postgres").to_owned();
        self.databases = Some(TenantDatabases {
            servers,
            pattern,
            base,
        });
        self
    }

    pub(super) fn tenant_databases(&self) -> Result<&TenantDatabases> {
        self.databases
            .as_ref()
            .ok_or(LifecycleError::Connect(ConnectError::NoServers))
    }

    /// In the database mode, the tenant's server (configured) and database; `None` in the
    /// other modes.
    pub(super) fn placed(&self, tenant: &TenantRecord) -> Result<Option<(&Server, DatabaseName)>> {
        if self.decl.strategy() != Strategy::Database {
            return Ok(None);
        }
        let databases = self.tenant_databases()?;
        let (Some(server), Some(database)) = (&tenant.server, &tenant.database) else {
            return Err(LifecycleError::NoDatabase {
                slug: tenant.slug.to_string(),
            });
        };
        let server = databases.servers.server(&server.parse()?)?;
        Ok(Some((server, database.parse()?)))
    }

    /// A tenant in the database mode: its registry row and domains in one transaction, which
    /// commits only once its database is provisioned on the chosen server; nothing is left
    /// when any step fails.
    pub(super) async fn create_in_database(&self, new: &NewTenant) -> Result<TenantRecord> {
        let databases = self.tenant_databases()?;
        self.tenant_migrator
            .as_ref()
            .ok_or(LifecycleError::NoTenantMigrations)?;
        let database = databases.pattern.database(&databases.base, &new.slug)?;
        databases.template()?;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CREATE_LOCK)
            .execute(&mut *tx)
            .await?;
        self.check_free(&mut tx, &new.slug, None).await?;
        let server = self
            .choose_server(&mut tx, databases, new.server.as_ref())
            .await?;
        let registry = self.decl.registry();
        let place = [
            (&registry.server_column, server.name().as_str()),
            (&registry.database_column, database.as_str()),
        ];
        let id = self.insert(&mut tx, new, &place).await?;
        for domain in &new.domains {
            add_domain(&mut tx, &self.decl, &new.slug, domain).await?;
        }
        self.provision(server, &database).await?;
        if let Err(err) = tx.commit().await {
            drop_tenant_database(server, &database).await?;
            return Err(err.into());
        }
        tracing::info!(
            id,
            server = server.name().as_str(),
            database = database.as_str(),
            "created the tenant"
        );
        Ok(TenantRecord {
            id: self.decl.key_type().parse_id(&id)?,
            slug: new.slug.clone(),
            schema: None,
            server: Some(server.name().to_string()),
            database: Some(database.as_str().to_owned()),
            domains: new.domains.iter().map(ToString::to_string).collect(),
            active: true,
        })
    }

    /// Clones `server`'s template into `database` there ([`provision_database`]).
    pub(super) async fn provision(&self, server: &Server, database: &DatabaseName) -> Result<()> {
        let migrator = self
            .tenant_migrator
            .as_ref()
            .ok_or(LifecycleError::NoTenantMigrations)?;
        let template = self.tenant_databases()?.template()?;
        provision_database(
            server,
            database,
            &template,
            migrator,
            &self.decl,
            &self.options,
        )
        .await
    }

    /// Takes the create lock in `conn`'s transaction and refuses server `to` when it holds
    /// its `max_tenants` (a move's target: checked before anything is made, and again in
    /// the transaction that gives it the tenant).
    pub(super) async fn reserve(&self, conn: &mut PgConnection, to: &ServerName) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CREATE_LOCK)
            .execute(&mut *conn)
            .await?;
        self.choose_server(conn, self.tenant_databases()?, Some(to))
            .await?;
        Ok(())
    }

    /// The server named `wanted`, or the one with the fewest tenants (the first given, on a
    /// tie); never one at its `max_tenants`.
    async fn choose_server<'s>(
        &self,
        conn: &mut PgConnection,
        databases: &'s TenantDatabases,
        wanted: Option<&ServerName>,
    ) -> Result<&'s Server> {
        let registry = self.decl.registry();
        let sql = format!(
            "SELECT {server}::text, count(*) FROM {shared}.{table} WHERE {server} IS NOT NULL GROUP BY 1",
            server = registry.server_column,
            shared = self.decl.schema(),
            table = registry.table,
        );
        let counts: HashMap<String, i64> = sqlx::query_as(AssertSqlSafe(sql))
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
        let count = |s: &Server| counts.get(s.name().as_str()).copied().unwrap_or(0);
        let full = |s: &Server| {
            s.tenant_limit()
                .is_some_and(|max| count(s) >= i64::from(max))
        };
        if let Some(name) = wanted {
            let server = databases.servers.server(name)?;
            if let Some(max) = server.tenant_limit().filter(|_| full(server)) {
                return Err(LifecycleError::ServerFull {
                    server: name.to_string(),
                    max,
                });
            }
            return Ok(server);
        }
        databases
            .servers
            .iter()
            .enumerate()
            .filter(|(_, s)| !full(s))
            .min_by_key(|(order, s)| (count(s), *order))
            .map(|(_, s)| s)
            .ok_or(LifecycleError::ServersFull)
    }
}
