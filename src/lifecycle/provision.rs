//! [`provision_database`]: one tenant's own database on one server (the database strategy),
//! cloned from the server's template database.
//!
//! The template (`<base>_tenant_template`, [`DatabasePattern::template`]) holds what every
//! tenant database holds: the declaration's schema with the tenant migrations applied, the
//! policies, the runtime role's grants and the signed context with the application's keys.
//! It is created when missing and brought up to date before each clone (a no-op when it is),
//! under an advisory lock so that no clone copies it half-migrated. `CREATE DATABASE …
//! TEMPLATE` copies it file by file, much cheaper than replaying the migrations; the clone
//! is made closed to every role (`ALLOW_CONNECTIONS false`: a caller cut off mid-way leaves
//! nothing anyone can enter), then gets a token key of its own, and `CONNECT` for the runtime
//! role only (the template has none, and `PUBLIC` has nothing on either).

use sqlx::migrate::Migrator;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::{LifecycleError, Result};
use crate::connect::{self, DatabaseUrl, Server};
use crate::migrate::MigrateOptions;
use crate::migrate::databases::migrate_database;
use crate::migrate::signed::renew_token_key;
use crate::placement::DatabaseName;
use crate::policy::TenancyDeclaration;

/// The advisory lock (in each server's `postgres` database) held while a template is
/// migrated and cloned: "rlsdb" in ASCII.
const TEMPLATE_LOCK: i64 = 0x0072_6c73_6462;

/// Creates `database` on `server` as a clone of the server's template database (`template`),
/// creating and migrating the template first when it is missing or behind, then gives the
/// clone its own token key, revokes everything from `PUBLIC` on it and grants the runtime
/// role `CONNECT`. Connects as `server`'s URL (the deploy role, which needs `CREATEDB`);
/// `options` give the runtime role, the tenant context and key, as for `rls-migrate`.
/// Nothing is left behind when a step fails: a clone that could not be finished is dropped.
///
/// # Errors
/// [`LifecycleError::Connect`] when the server is unreachable,
/// [`LifecycleError::DatabaseTaken`] when `database` exists on the server,
/// [`LifecycleError::CannotCreateDatabase`] when the deploy role lacks `CREATEDB`,
/// [`LifecycleError::Migrate`] when the template cannot be migrated; else the database's error.
///
/// ```no_run
/// use rls_tenancy::{DatabasePattern, MigrateOptions, Server, TenancyDeclaration, Strategy, migrator_from_dir, provision_database};
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?.with_strategy(Strategy::Database);
/// let options = MigrateOptions::new("postgres://app_deploy@control/app".parse()?, "app_runtime")?;
/// let server: Server = "eu1=postgres://app_deploy@10.0.0.1/postgres".parse()?;
/// let pattern = DatabasePattern::default();
/// let database = pattern.database("app", &"acme".parse()?)?;
/// let migrator = migrator_from_dir("migrations/tenant").await?;
/// provision_database(&server, &database, &pattern.template("app")?, &migrator, &decl, &options).await?;
/// # Ok(()) }
/// ```
#[tracing::instrument(skip_all, fields(server = server.name().as_str(), database = database.as_str()))]
pub async fn provision_database(
    server: &Server,
    database: &DatabaseName,
    template: &DatabaseName,
    migrator: &Migrator,
    decl: &TenancyDeclaration,
    options: &MigrateOptions,
) -> Result<()> {
    let job = Job {
        server,
        database,
        template,
        migrator,
        decl,
        options,
    };
    let mut admin = connect::connect(&maintenance_url(server)).await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(TEMPLATE_LOCK)
        .execute(&mut admin)
        .await?;
    let cloned = job.clone_template(&mut admin).await;
    // Closing the session releases the lock too; unlocking first lets the next create in.
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(TEMPLATE_LOCK)
        .execute(&mut admin)
        .await;
    cloned?;
    unlocked?;
    if let Err(err) = job.finish_clone(&mut admin).await {
        drop_database(&mut admin, database).await?;
        return Err(err);
    }
    admin.close().await?;
    tracing::info!("provisioned the tenant database");
    Ok(())
}

/// One [`provision_database`] call's inputs.
struct Job<'a> {
    server: &'a Server,
    database: &'a DatabaseName,
    template: &'a DatabaseName,
    migrator: &'a Migrator,
    decl: &'a TenancyDeclaration,
    options: &'a MigrateOptions,
}

/// Drops `database` on `server` (its sessions ended first), if it exists.
///
/// # Errors
/// [`LifecycleError::Connect`] when the server is unreachable; else the database's error.
///
/// ```no_run
/// # use rls_tenancy::{Server, drop_tenant_database};
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let server: Server = "eu1=postgres://app_deploy@10.0.0.1/postgres".parse()?;
/// drop_tenant_database(&server, &"app_tenant_acme".parse()?).await?;
/// # Ok(()) }
/// ```
#[tracing::instrument(skip_all, fields(server = server.name().as_str(), database = database.as_str()))]
pub async fn drop_tenant_database(server: &Server, database: &DatabaseName) -> Result<()> {
    let mut admin = connect::connect(&maintenance_url(server)).await?;
    drop_database(&mut admin, database).await?;
    admin.close().await?;
    Ok(())
}

/// The server's `postgres` database, where databases are created and dropped from.
fn maintenance_url(server: &Server) -> DatabaseUrl {
    server.url().with_database("postgres")
}

impl Job<'_> {
    /// Under the template lock: refuses a taken name, brings the template up to date
    /// (creating it when missing), and clones it.
    async fn clone_template(&self, admin: &mut PgConnection) -> Result<()> {
        let (server, database, template) = (self.server, self.database, self.template);
        if exists(admin, database).await? {
            return Err(LifecycleError::DatabaseTaken {
                server: server.name().to_string(),
                database: database.as_str().to_owned(),
            });
        }
        if !exists(admin, template).await? {
            let create = format!("CREATE DATABASE {template} TEMPLATE template0");
            create_database(admin, server, &create).await?;
            tracing::info!(
                template = template.as_str(),
                "created the template database"
            );
        }
        // Checked every time, not only after its CREATE: a caller cut off between the two
        // would leave the template open to PUBLIC (a new database lets PUBLIC connect and make
        // temporary tables), and every later provisioning skips the CREATE. Revoked only when
        // PUBLIC holds something: a REVOKE rewrites the database's catalog row even when it
        // changes nothing.
        let public_holds: bool = sqlx::query_scalar(
            "SELECT has_database_privilege('public', $1, 'CONNECT')
                 OR has_database_privilege('public', $1, 'TEMP')
                 OR has_database_privilege('public', $1, 'CREATE')",
        )
        .bind(template.as_str())
        .fetch_one(&mut *admin)
        .await?;
        if public_holds {
            let revoke = format!("REVOKE ALL ON DATABASE {template} FROM PUBLIC");
            sqlx::raw_sql(AssertSqlSafe(revoke))
                .execute(&mut *admin)
                .await?;
        }
        let mut conn = connect::connect(&server.url().with_database(template.as_str())).await?;
        let mut tx = conn.begin().await?;
        let changes = migrate_database(&mut tx, self.migrator, self.decl, self.options).await?;
        tx.commit().await?;
        // No session may stay on a template while it is cloned.
        conn.close().await?;
        if !changes.applied.is_empty() || !changes.policies.is_empty() {
            tracing::info!(template = template.as_str(), applied = ?changes.applied, "migrated the template database");
        }
        // Closed to every role until finished: CREATE DATABASE does not copy the template's
        // privileges (PUBLIC may connect to a new database), and a caller that goes away while
        // the server copies the template (Ctrl-C) leaves the copy behind, unregistered, with
        // the application's keys and the runtime role's grants inside.
        let clone =
            format!("CREATE DATABASE {database} TEMPLATE {template} ALLOW_CONNECTIONS false");
        create_database(admin, server, &clone).await
    }

    /// Opens the clone to its owner only, gives it a token key of its own, then `CONNECT` to
    /// the runtime role, last.
    async fn finish_clone(&self, admin: &mut PgConnection) -> Result<()> {
        let database = self.database;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "REVOKE ALL ON DATABASE {database} FROM PUBLIC; ALTER DATABASE {database} ALLOW_CONNECTIONS true"
        )))
        .execute(&mut *admin)
        .await?;
        let url = self.server.url().with_database(database.as_str());
        let mut conn = connect::connect(&url).await?;
        renew_token_key(&mut conn).await?;
        conn.close().await?;
        let runtime = self.options.runtime_role();
        sqlx::raw_sql(AssertSqlSafe(format!(
            "GRANT CONNECT ON DATABASE {database} TO {runtime}"
        )))
        .execute(&mut *admin)
        .await?;
        Ok(())
    }
}

/// Runs a `CREATE DATABASE`, naming a missing `CREATEDB` for what it is.
async fn create_database(admin: &mut PgConnection, server: &Server, sql: &str) -> Result<()> {
    match sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut *admin)
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if err.as_database_error().and_then(|e| e.code()).as_deref() == Some("42501") => {
            Err(LifecycleError::CannotCreateDatabase {
                server: server.name().to_string(),
            })
        }
        Err(err) => Err(err.into()),
    }
}

async fn exists(admin: &mut PgConnection, database: &DatabaseName) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1)",
    )
    .bind(database.as_str())
    .fetch_one(&mut *admin)
    .await?)
}

async fn drop_database(admin: &mut PgConnection, database: &DatabaseName) -> Result<()> {
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
    )))
    .execute(&mut *admin)
    .await?;
    Ok(())
}
