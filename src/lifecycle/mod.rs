//! `rls-tenant`'s library side: the tenant lifecycle (create, list, suspend and resume,
//! rename, drop, run SQL per tenant) in every strategy, as the deploy role.
//!
//! In the RLS mode a tenant is a registry row; its rows live in the shared tables, behind
//! the policies. In the schema mode a tenant is a registry row and a schema of its own:
//! [`TenantLifecycle::create`] makes the schema, its tables (the tenant migrations), their
//! policies and grants and the registry row in one transaction, so a failure anywhere
//! leaves nothing behind. In the database mode a tenant is a registry row naming a server and
//! a database of its own there, cloned from the server's template ([`provision_database`]);
//! the row commits only once the database is made.
//!
//! # Why create replays the migrations instead of cloning a template schema
//!
//! Measured on this repository's reference tables (PostgreSQL 15, fsync on): a new schema's
//! cost is the catalog work of its tables, indexes and policies, and a clone by
//! `CREATE TABLE … (LIKE template.t INCLUDING ALL)` does the same catalog work plus the
//! foreign keys, policies and grants that `LIKE` does not copy, and was no faster (see
//! BENCHMARKS.md). So create sends the tenant migrations, their records and the policies as
//! one script in one round trip (what `psql -f` would send), then the grants; no template
//! to keep in step, and a new tenant is exactly what `rls-migrate` would make of it. What
//! made creation grow with the tenant count was a foreign key from each tenant table into
//! the shared registry (two triggers per tenant table on the registry); the reference tenant
//! migrations have none.
//!
//! ```no_run
//! use rls_tenancy::{MigrateOptions, NewTenant, Strategy, TenancyDeclaration, TenantLifecycle, migrator_from_dir};
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?.with_strategy(Strategy::Schema);
//! let options = MigrateOptions::new("postgres://app_deploy@localhost/app".parse()?, "app_runtime")?;
//! let lifecycle = TenantLifecycle::connect(decl, options)
//!     .await?
//!     .tenant_migrations(migrator_from_dir("migrations/tenant").await?);
//! let acme = lifecycle.create(&NewTenant::new("acme".parse()?)).await?;
//! lifecycle.suspend(&acme.slug).await?;
//! # Ok(()) }
//! ```

mod changes;
mod copy;
mod create;
mod databases;
mod drop;
mod error;
mod moving;
mod provision;
mod record;
mod retire;
mod run;

use std::collections::HashMap;

use sqlx::migrate::Migrator;
use sqlx::{AssertSqlSafe, PgPool};

pub use create::NewTenant;
pub use drop::DropPlan;
pub use error::LifecycleError;
pub use moving::{MoveProgress, MoveReport};
pub use provision::{drop_tenant_database, provision_database};
pub use record::{TenantRecord, list_text};
pub use run::{RunOutcome, RunReport, TenantRun};

use crate::db::{PoolSetOptions, TenantPool, TenantPoolOptions, TxTimeouts};
use crate::migrate::MigrateOptions;
use crate::placement::SchemaName;
use crate::policy::{Strategy, TenancyDeclaration, TenantContext};
use crate::resolve::{self as domain_table, BaseDomain, DomainName};
use crate::tenant::TenantSlug;

type Result<T, E = LifecycleError> = std::result::Result<T, E>;

/// The tenant lifecycle over one database, as the deploy role. Cheap to keep: a small pool
/// of the deploy role's connections and the registry statements, rendered once.
///
/// See the [module documentation](self) for an example.
#[derive(Debug)]
pub struct TenantLifecycle {
    pool: PgPool,
    decl: TenancyDeclaration,
    options: MigrateOptions,
    context: TenantContext,
    tenant_migrator: Option<Migrator>,
    /// The servers tenant databases go to, in the database mode.
    databases: Option<databases::TenantDatabases>,
    /// The base domain subdomain routing works under, when known.
    base_domain: Option<BaseDomain>,
    /// Whether the registry table has a `name` column (the reference's `accounts.name`).
    has_name: bool,
    select: String,
}

impl TenantLifecycle {
    /// Connects as the deploy role in `options` for the tenants `decl` registers; `options`
    /// also give the runtime role a new schema is granted to and the tenant context its
    /// policies read, as for `rls-migrate`.
    ///
    /// # Errors
    /// [`LifecycleError::Connect`] when the server is unreachable; a database error when the
    /// registry cannot be read.
    pub async fn connect(decl: TenancyDeclaration, options: MigrateOptions) -> Result<Self> {
        let pool = options.pool(2).await?;
        let registry = decl.registry();
        let table = format!("{}.{}", decl.schema(), registry.table);
        let has_name: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                             WHERE attrelid = to_regclass($1) AND attname = 'name'
                               AND attnum > 0 AND NOT attisdropped)",
        )
        .bind(&table)
        .fetch_one(&pool)
        .await?;
        let schema_column = match decl.strategy() {
            Strategy::Schema => registry.schema_column.to_string(),
            _ => "NULL::text".to_owned(),
        };
        let (server_column, database_column) = match decl.strategy() {
            Strategy::Database => (
                registry.server_column.to_string(),
                registry.database_column.to_string(),
            ),
            _ => ("NULL::text".to_owned(), "NULL::text".to_owned()),
        };
        let select = format!(
            "SELECT {id}::text, {slug}::text, {schema_column}::text, {server_column}::text,
                    {database_column}::text, {active} FROM {table}",
            id = registry.id_column,
            slug = registry.slug_column,
            active = registry.active_column,
        );
        let context = options.context(&decl);
        Ok(Self {
            pool,
            decl,
            options,
            context,
            tenant_migrator: None,
            databases: None,
            base_domain: None,
            has_name,
            select,
        })
    }

    /// The tenant migrations a new tenant schema gets (`migrations/tenant/`); needed by
    /// [`TenantLifecycle::create`] in the schema mode.
    pub fn tenant_migrations(mut self, migrator: Migrator) -> Self {
        self.tenant_migrator = Some(migrator);
        self
    }

    /// The base domain the servers route subdomains under (`rls-demo --base-domain`): a
    /// domain that subdomain routing gives to another tenant (`globex.<base>` for `acme`) is
    /// then refused by [`TenantLifecycle::add_domain`] and [`TenantLifecycle::create`].
    ///
    /// ```no_run
    /// # use rls_tenancy::{MigrateOptions, TenancyDeclaration, TenantLifecycle};
    /// # async fn demo(decl: TenancyDeclaration, options: MigrateOptions) -> Result<(), Box<dyn std::error::Error>> {
    /// let lifecycle = TenantLifecycle::connect(decl, options).await?.base_domain("example.com".parse()?);
    /// # Ok(()) }
    /// ```
    pub fn base_domain(mut self, base: BaseDomain) -> Self {
        self.base_domain = Some(base);
        self
    }

    /// Refuses `domain` for tenant `slug` when subdomain routing gives it to another tenant.
    fn refuse_other_subdomain(&self, slug: &TenantSlug, domain: &DomainName) -> Result<()> {
        if let Some(base) = &self.base_domain {
            domain.refuse_other_subdomain(slug, base)?;
        }
        Ok(())
    }

    /// The declaration the lifecycle works on.
    pub fn declaration(&self) -> &TenancyDeclaration {
        &self.decl
    }

    /// Every tenant, by slug.
    ///
    /// # Errors
    /// A database error, or a registry row whose slug or id is malformed.
    pub async fn list(&self) -> Result<Vec<TenantRecord>> {
        let sql = format!(
            "{} ORDER BY {}",
            self.select,
            self.decl.registry().slug_column
        );
        let rows: Vec<Row> = sqlx::query_as(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?;
        let mut domains = self.domains(None).await?;
        rows.into_iter()
            .map(|row| {
                let mut record = self.record(row)?;
                record.domains = domains.remove(&record.slug).unwrap_or_default();
                Ok(record)
            })
            .collect()
    }

    /// The tenant whose slug is `slug`.
    ///
    /// # Errors
    /// [`LifecycleError::TenantNotFound`], or a database error.
    pub async fn find(&self, slug: &TenantSlug) -> Result<TenantRecord> {
        let sql = format!(
            "{} WHERE {} = $1",
            self.select,
            self.decl.registry().slug_column
        );
        let row: Option<Row> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(slug.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let row = row.ok_or_else(|| LifecycleError::TenantNotFound {
            slug: slug.to_string(),
        })?;
        let mut record = self.record(row)?;
        record.domains = self
            .domains(Some(slug))
            .await?
            .remove(slug)
            .unwrap_or_default();
        Ok(record)
    }

    /// Gives the tenant `domain` (its primary when it is the first); running servers route
    /// it at once.
    ///
    /// # Errors
    /// [`LifecycleError::Domain`] for a domain another tenant has, a static tenant's,
    /// another tenant's subdomain under the [base domain](TenantLifecycle::base_domain), an
    /// unknown tenant, or a declaration without a domains table.
    pub async fn add_domain(&self, slug: &TenantSlug, domain: &DomainName) -> Result<TenantRecord> {
        self.refuse_other_subdomain(slug, domain)?;
        let mut conn = self.pool.acquire().await?;
        domain_table::add_domain(&mut conn, &self.decl, slug, domain).await?;
        self.find(slug).await
    }

    /// Takes `domain` from whichever tenant has it (another of its domains becomes the
    /// primary); returns that tenant.
    ///
    /// # Errors
    /// [`LifecycleError::Domain`] for a domain no tenant has, or a declaration without a
    /// domains table.
    pub async fn remove_domain(&self, domain: &DomainName) -> Result<TenantRecord> {
        let mut conn = self.pool.acquire().await?;
        let slug = domain_table::remove_domain(&mut conn, &self.decl, domain).await?;
        self.find(&slug).await
    }

    /// Each tenant's domains (of `only`, when given), primary first; none without a domains
    /// table.
    async fn domains(&self, only: Option<&TenantSlug>) -> Result<HashMap<TenantSlug, Vec<String>>> {
        let mut domains: HashMap<TenantSlug, Vec<String>> = HashMap::new();
        if self.decl.registry().domains.is_none() {
            return Ok(domains);
        }
        let mut conn = self.pool.acquire().await?;
        for (slug, domain) in domain_table::all_domains(&mut conn, &self.decl, only).await? {
            domains
                .entry(slug)
                .or_default()
                .push(domain.domain.to_string());
        }
        Ok(domains)
    }

    /// Stops serving the tenant: its requests get 404 in every running server at once (the
    /// registry's change notice empties their caches). Its data stays.
    ///
    /// # Errors
    /// [`LifecycleError::StaticTenant`] for a static tenant of the declaration,
    /// [`LifecycleError::TenantNotFound`], or a database error.
    pub async fn suspend(&self, slug: &TenantSlug) -> Result<TenantRecord> {
        self.refuse_static(slug, "suspend")?;
        self.set_active(slug, false).await
    }

    /// Serves a suspended tenant again.
    ///
    /// # Errors
    /// [`LifecycleError::TenantNotFound`], or a database error.
    pub async fn resume(&self, slug: &TenantSlug) -> Result<TenantRecord> {
        self.set_active(slug, true).await
    }

    async fn set_active(&self, slug: &TenantSlug, active: bool) -> Result<TenantRecord> {
        let registry = self.decl.registry();
        let sql = format!(
            "UPDATE {schema}.{table} SET {active_column} = $2 WHERE {slug_column} = $1",
            schema = self.decl.schema(),
            table = registry.table,
            active_column = registry.active_column,
            slug_column = registry.slug_column,
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(slug.as_str())
            .bind(active)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(LifecycleError::TenantNotFound {
                slug: slug.to_string(),
            });
        }
        self.find(slug).await
    }

    /// Gives the tenant a new slug; its id and schema stay, and running servers stop
    /// resolving the old slug at once.
    ///
    /// # Errors
    /// [`LifecycleError::StaticTenant`] for a static tenant of the declaration (or its name
    /// as the new slug), [`LifecycleError::TenantNotFound`], [`LifecycleError::SlugTaken`],
    /// or a database error.
    pub async fn rename(&self, slug: &TenantSlug, new: &TenantSlug) -> Result<TenantRecord> {
        self.refuse_static(slug, "rename")?;
        self.refuse_static(new, "rename another tenant to")?;
        let registry = self.decl.registry();
        let sql = format!(
            "UPDATE {schema}.{table} SET {slug_column} = $2 WHERE {slug_column} = $1",
            schema = self.decl.schema(),
            table = registry.table,
            slug_column = registry.slug_column,
        );
        let mut tx = self.pool.begin().await?;
        if self.slug_taken(&mut tx, new).await? {
            return Err(LifecycleError::SlugTaken {
                slug: new.to_string(),
            });
        }
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(slug.as_str())
            .bind(new.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| slug_conflict(e, new))?;
        if done.rows_affected() == 0 {
            return Err(LifecycleError::TenantNotFound {
                slug: slug.to_string(),
            });
        }
        tx.commit().await?;
        self.find(new).await
    }

    /// Refuses `action` on a static tenant: the declaration owns its name, schema and domains,
    /// and `rls-migrate` would put back what the command changed.
    fn refuse_static(&self, slug: &TenantSlug, action: &'static str) -> Result<()> {
        match self.decl.static_tenants().iter().any(|t| t.name == *slug) {
            true => Err(LifecycleError::StaticTenant {
                slug: slug.to_string(),
                action,
            }),
            false => Ok(()),
        }
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn slug_taken(&self, conn: &mut sqlx::PgConnection, slug: &TenantSlug) -> Result<bool> {
        let registry = self.decl.registry();
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM {schema}.{table} WHERE {slug_column} = $1)",
            schema = self.decl.schema(),
            table = registry.table,
            slug_column = registry.slug_column,
        );
        Ok(sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(slug.as_str())
            .fetch_one(conn)
            .await?)
    }

    fn record(&self, (id, slug, schema, server, database, active): Row) -> Result<TenantRecord> {
        Ok(TenantRecord {
            id: self.decl.key_type().parse_id(&id)?,
            slug: slug.parse()?,
            schema,
            server,
            database,
            domains: Vec::new(),
            active,
        })
    }
}

/// A registry row as [`TenantLifecycle`] reads it: id, slug, schema, server, database, active.
type Row = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
);

/// A unique violation on the slug (a concurrent create or rename) as
/// [`LifecycleError::SlugTaken`].
fn slug_conflict(err: sqlx::Error, slug: &TenantSlug) -> LifecycleError {
    match err.as_database_error() {
        Some(db) if db.is_unique_violation() => LifecycleError::SlugTaken {
            slug: slug.to_string(),
        },
        _ => err.into(),
    }
}

/// Binds a tenant id as its SQL type.
fn bind_id(
    query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    id: crate::TenantId,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    match id.as_i64() {
        Some(int) => query.bind(int),
        None => query.bind(id.as_uuid()),
    }
}

impl TenantLifecycle {
    /// The tenant's schema, checked to exist (schema mode).
    async fn existing_schema(&self, tenant: &TenantRecord) -> Result<SchemaName> {
        let name = tenant
            .schema
            .as_deref()
            .ok_or_else(|| LifecycleError::NoSchema {
                slug: tenant.slug.to_string(),
            })?;
        let schema = SchemaName::parse(name, self.decl.schema())?;
        let exists: bool = sqlx::query_scalar("SELECT to_regnamespace($1) IS NOT NULL")
            .bind(schema.to_string())
            .fetch_one(&self.pool)
            .await?;
        if !exists {
            return Err(LifecycleError::SchemaMissing {
                slug: tenant.slug.to_string(),
                schema: name.to_owned(),
            });
        }
        Ok(schema)
    }

    /// Tenant transactions as the deploy role (the policies vet every row it touches).
    async fn tenant_pool(&self) -> Result<TenantPool> {
        let mut options = TenantPoolOptions::new(self.decl.clone())
            .deploy_role_writer()
            .max_connections(1)
            .tenant_variable(self.options.variable.clone())
            .timeouts(TxTimeouts::default().statement(RUN_STATEMENT_TIMEOUT));
        if let Some(key) = &self.options.tenant_key {
            options = options.tenant_key(key.clone());
        }
        if self.decl.strategy() == Strategy::Database {
            // One tenant at a time: one connection in all, each database's pool evicted for
            // the next.
            let budget = PoolSetOptions::default()
                .max_connections(1)
                .max_per_database(1);
            let servers = &self.tenant_databases()?.servers;
            return Ok(TenantPool::connect_servers(
                &self.options.url,
                servers,
                options.pool_set(budget),
            )
            .await?);
        }
        Ok(TenantPool::connect(&self.options.url, options).await?)
    }
}

/// How long one statement of `rls-tenant run` may take in a tenant (data fixes can be slow).
const RUN_STATEMENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);
