//! The database mode's migrations: a tenant database holds the declaration's schema with the
//! tenant migrations applied (recorded in that schema's `_rls_migrations`), the same forced
//! policies and the runtime role's grants on its tenant tables, and the signed tenant context
//! with the application's keys, as the control database has them. [`migrate_databases`]
//! brings every selected tenant database up to date, in parallel, a bounded number at once
//! per server.

use std::collections::HashMap;
use std::fmt;

use futures_util::StreamExt;
use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection};
use tokio::sync::Semaphore;

use super::across::write_outcomes;
use super::installed::InstalledFunctions;
use super::{
    MigrateError, MigrateOptions, SchemaOutcome, grants, policies, release_check, schemas, signed,
};
use crate::connect::{ServerName, ServerSet, connect};
use crate::placement::{PlacedDatabase, placed_databases};
use crate::policy::{TenancyDeclaration, TenantContextMode, quote_literal};

type Result<T, E = MigrateError> = std::result::Result<T, E>;

/// What migrating one tenant database did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DatabaseChanges {
    /// Versions of the tenant migrations applied by this run.
    pub(crate) applied: Vec<i64>,
    /// Tables whose policy was (re)installed by this run.
    pub(crate) policies: Vec<String>,
    /// The id of the tenant key this run installed, if it was new.
    pub(crate) key_installed: Option<String>,
    /// Whether the runtime role's grants were changed (given or taken back) by this run.
    pub(crate) grants: bool,
}

/// Brings the tenant database `conn` is connected to up to date, inside the caller's
/// transaction, as the deploy role in `options`: creates the declaration's schema if need
/// be, applies the tenant migrations it lacks (with `search_path` set to that schema,
/// transaction-locally), installs or updates the signed context and keys (or removes it for
/// the plain context), installs the policies on `decl`'s tenant tables and the release check
/// every tenant transaction's `COMMIT` calls, grants the runtime role DML on them and nothing
/// else, and takes `TEMP`/`CREATE` back from `PUBLIC`.
///
/// # Errors
/// [`MigrateError::Migration`] when a migration fails or an applied one was changed since;
/// [`MigrateError::NoTenantKey`] under the signed context with no key installed or given;
/// else the database's error. The caller rolls back.
pub(crate) async fn migrate_database(
    conn: &mut PgConnection,
    migrator: &Migrator,
    decl: &TenancyDeclaration,
    options: &MigrateOptions,
) -> Result<DatabaseChanges> {
    let schema = decl.schema();
    let path = (
        quote_literal("search_path"),
        quote_literal(&schema.to_string()),
    );
    let applied = schemas::apply_tenant_migrations(conn, migrator, schema, &path).await?;
    let functions = InstalledFunctions::read(conn, options).await?;
    let key_installed = match options.mode {
        TenantContextMode::Signed => {
            signed::install(
                conn,
                options.tenant_key.as_ref(),
                options.retire_old_keys,
                &options.runtime_role,
                functions.current(),
            )
            .await?
            .installed
        }
        TenantContextMode::Plain => None,
    };
    let context = options.context(decl);
    let policies = policies::install_policies(conn, schema, decl, &context).await?;
    if options.mode == TenantContextMode::Plain {
        signed::uninstall(conn).await?;
    }
    if !functions.current() {
        release_check::install(conn, &options.runtime_role).await?;
        functions.mark(conn).await?;
    }
    let grants = grants::grant_tenant_tables(conn, schema, decl, &options.runtime_role).await?;
    grants::revoke_public_defaults(conn).await?;
    Ok(DatabaseChanges {
        applied,
        policies,
        key_installed,
        grants,
    })
}

/// The tenant databases the registry `conn` reads (the control database) places, of the
/// tenants `slugs` names (`None`: all), sorted by slug.
///
/// # Errors
/// [`MigrateError::NoTenantMatches`] for a slug no placed tenant has (nothing is migrated
/// then); [`MigrateError::Placement`] as [`placed_databases`].
///
/// ```no_run
/// # use rls_tenancy::{Strategy, TenancyDeclaration, select_databases};
/// # async fn demo(conn: &mut sqlx::PgConnection) -> rls_tenancy::Result<()> {
/// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?.with_strategy(Strategy::Database);
/// let two = select_databases(conn, &decl, Some(&["acme".into(), "globex".into()])).await?;
/// # Ok(()) }
/// ```
pub async fn select_databases(
    conn: &mut PgConnection,
    decl: &TenancyDeclaration,
    slugs: Option<&[String]>,
) -> Result<Vec<PlacedDatabase>> {
    let placed = placed_databases(conn, decl).await?;
    let Some(slugs) = slugs else {
        return Ok(placed);
    };
    if let Some(missing) = slugs.iter().find(|s| !placed.iter().any(|p| p.slug == **s)) {
        return Err(MigrateError::NoTenantMatches {
            slug: crate::tenant::echo(missing),
        });
    }
    Ok(placed
        .into_iter()
        .filter(|p| slugs.contains(&p.slug))
        .collect())
}

/// One line of a [`DatabasesReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseReport {
    /// The tenant database.
    pub tenant: PlacedDatabase,
    /// What happened to it.
    pub outcome: SchemaOutcome,
}

/// What [`migrate_databases`] did, database by database (sorted by slug).
///
/// ```
/// use rls_tenancy::{DatabaseReport, DatabasesReport, PlacedDatabase, SchemaOutcome};
/// let acme = PlacedDatabase { slug: "acme".into(), server: "eu1".into(), database: "app_tenant_acme".parse()? };
/// let report = DatabasesReport {
///     databases: vec![DatabaseReport { tenant: acme, outcome: SchemaOutcome::Failed { error: "boom".into() } }],
/// };
/// assert!(report.has_failures());
/// assert_eq!(
///     report.to_string(),
///     "acme (eu1/app_tenant_acme): FAILED: boom\ntenant databases: 0 migrated, 0 already current, 1 failed"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabasesReport {
    /// Every tenant database the run looked at.
    pub databases: Vec<DatabaseReport>,
}

impl DatabasesReport {
    /// Whether any database failed (`rls-migrate` then exits 1).
    ///
    /// ```
    /// assert!(!rls_tenancy::DatabasesReport::default().has_failures());
    /// ```
    pub fn has_failures(&self) -> bool {
        self.databases
            .iter()
            .any(|d| matches!(d.outcome, SchemaOutcome::Failed { .. }))
    }
}

impl fmt::Display for DatabasesReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines = self
            .databases
            .iter()
            .map(|d| (d.tenant.to_string(), &d.outcome));
        write_outcomes(f, lines, "tenant databases")
    }
}

/// Applies `migrator` (the tenant migrations) to each of `selection`'s tenant databases, as
/// the deploy role of each one's server in `servers` (`options` give the runtime role, the
/// tenant context and key), each in its own transaction, at most `jobs` at once per server.
/// One database's failure (an unreachable or unconfigured server too) is reported and the
/// others go on; a rerun applies only what each lacks. `done` is called as each finishes.
///
/// ```no_run
/// # use rls_tenancy::{MigrateOptions, ServerSet, Strategy, TenancyDeclaration, migrate_databases, migrator_from_dir, select_databases};
/// # async fn demo(conn: &mut sqlx::PgConnection, servers: &ServerSet) -> rls_tenancy::Result<()> {
/// let tenant_migrations = migrator_from_dir("migrations/tenant").await?;
/// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?.with_strategy(Strategy::Database);
/// let options = MigrateOptions::new("postgres://app_deploy@control/app".parse()?, "app_runtime")?;
/// let selection = select_databases(conn, &decl, None).await?;
/// let report = migrate_databases(&tenant_migrations, &decl, &options, servers, &selection, 4, &|_| {}).await;
/// println!("{report}");
/// # Ok(()) }
/// ```
#[tracing::instrument(skip_all, fields(jobs, databases = selection.len()))]
pub async fn migrate_databases(
    migrator: &Migrator,
    decl: &TenancyDeclaration,
    options: &MigrateOptions,
    servers: &ServerSet,
    selection: &[PlacedDatabase],
    jobs: u32,
    done: &(dyn Fn(&DatabaseReport) + Sync),
) -> DatabasesReport {
    let jobs = jobs.max(1) as usize;
    let per_server: HashMap<&str, Semaphore> = servers
        .iter()
        .map(|s| (s.name().as_str(), Semaphore::new(jobs)))
        .collect();
    let mut databases: Vec<DatabaseReport> = futures_util::stream::iter(selection)
        .map(|tenant| {
            let per_server = &per_server;
            async move {
                let outcome = match migrate_one(migrator, decl, options, servers, per_server, tenant).await {
                    Ok(changes) if changes == DatabaseChanges::default() => SchemaOutcome::Current,
                    Ok(changes) => SchemaOutcome::Migrated {
                        applied: changes.applied,
                    },
                    Err(error) => {
                        tracing::warn!(slug = tenant.slug, server = tenant.server, %error, "tenant database failed to migrate");
                        SchemaOutcome::Failed {
                            error: error.to_string(),
                        }
                    }
                };
                let line = DatabaseReport {
                    tenant: tenant.clone(),
                    outcome,
                };
                done(&line);
                line
            }
        })
        .buffer_unordered(jobs * servers.len().max(1))
        .collect()
        .await;
    databases.sort_by(|a, b| a.tenant.slug.cmp(&b.tenant.slug));
    DatabasesReport { databases }
}

/// One tenant database in its own transaction, holding one of its server's permits.
async fn migrate_one(
    migrator: &Migrator,
    decl: &TenancyDeclaration,
    options: &MigrateOptions,
    servers: &ServerSet,
    per_server: &HashMap<&str, Semaphore>,
    tenant: &PlacedDatabase,
) -> Result<DatabaseChanges> {
    let name: ServerName = tenant.server.parse()?;
    let server = servers.server(&name)?;
    let _permit = match per_server.get(name.as_str()) {
        Some(semaphore) => semaphore.acquire().await.ok(),
        None => None,
    };
    let url = server.url().with_database(tenant.database.as_str());
    let mut conn = connect(&url).await?;
    let mut tx = conn.begin().await?;
    let changes = migrate_database(&mut tx, migrator, decl, options).await?;
    tx.commit().await?;
    conn.close().await?;
    Ok(changes)
}
