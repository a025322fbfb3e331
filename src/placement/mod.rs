//! The placement step: where a resolved tenant's rows live, by [`Strategy`].
//!
//! Under [`Strategy::Rls`] every tenant lives in the declaration's schema and placement adds
//! nothing to the transaction. Under [`Strategy::Schema`] each tenant has a schema of its own,
//! named in the registry's schema column; placement looks it up (cached) and adds
//! `search_path = "tenant_schema", "shared_schema"` to the transaction's `BEGIN` round trip,
//! transaction-locally, so unqualified names resolve to the tenant's tables and a pooled
//! connection carries nothing to the next transaction.
//!
//! # The database wall in this mode
//!
//! `search_path` only chooses where unqualified names point; it is not a wall. The wall is
//! the same as in the RLS mode: every tenant table in every tenant schema carries the tenant
//! column and the same forced row-level security policy. Inside tenant A's transaction a
//! hand-written `tenant_b.subtasks` shows no row and accepts no write, however it is reached
//! (a forgotten qualification, raw SQL, a reused connection), and outside any tenant
//! transaction nothing is visible at all.

mod database;
mod database_name;
mod error;
mod placed;
mod schema_name;

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::{AssertSqlSafe, PgPool, Postgres};

pub(crate) use database::DatabaseDirectory;
pub use database_name::{DatabaseName, DatabasePattern};
pub use error::PlacementError;
pub use placed::{PlacedDatabase, placed_databases};
pub use schema_name::SchemaName;

use crate::policy::{Ident, Strategy, TenancyDeclaration, quote_literal};
use crate::resolve::fetch_routing;
use crate::tenant::{TenantId, TenantScope};

/// How long a tenant's schema is remembered: a tenant's schema never changes while it
/// exists, and a dropped tenant is no longer resolved.
const SCHEMA_TTL: Duration = Duration::from_secs(300);

/// The most tenants whose schema is remembered.
const SCHEMA_CACHE_ENTRIES: u64 = 100_000;

/// Where a pool's tenants live: what [`crate::TenantPool`] asks before each `BEGIN`.
#[derive(Debug, Clone)]
pub(crate) enum Placement {
    /// Every tenant in the declaration's schema: nothing to set.
    Shared,
    /// A schema per tenant, looked up in the registry.
    Schema(Arc<SchemaDirectory>),
    /// A database per tenant: a pool over one database cannot serve it, and refuses to open.
    Database,
    /// A database per tenant, looked up in the registry: the pool routes each transaction
    /// to its tenant's database ([`crate::TenantPool::connect_servers`]).
    Databases(Arc<DatabaseDirectory>),
}

impl Placement {
    /// The placement `decl`'s strategy asks for, reading the registry through `pool`.
    pub(crate) fn new(pool: PgPool, decl: &TenancyDeclaration, pooler: bool) -> Self {
        match decl.strategy() {
            Strategy::Rls => Placement::Shared,
            Strategy::Schema => {
                Placement::Schema(Arc::new(SchemaDirectory::new(pool, decl, pooler)))
            }
            Strategy::Database => Placement::Database,
        }
    }

    /// Checks, when a pool opens, that its role can find tenants' places: in the schema
    /// mode, that it may read the registry's schema column; in the database mode, nothing
    /// a pool over one database can do.
    pub(crate) async fn check(&self) -> Result<(), PlacementError> {
        match self {
            Placement::Shared => Ok(()),
            Placement::Schema(directory) => directory.check().await,
            Placement::Database => Err(PlacementError::OneDatabase),
            Placement::Databases(directory) => directory.check().await,
        }
    }

    /// The transaction-local settings that put `scope` in its place: none in the RLS mode,
    /// `search_path` in the schema mode, none in the database mode (the place is the
    /// connection itself).
    pub(crate) async fn settings(
        &self,
        scope: &TenantScope,
    ) -> Result<Vec<(String, String)>, PlacementError> {
        match self {
            Placement::Shared => Ok(Vec::new()),
            Placement::Database => Err(PlacementError::OneDatabase),
            Placement::Databases(_) => Ok(Vec::new()),
            Placement::Schema(directory) => {
                let schema = directory.schema_of(scope.id()).await?;
                Ok(vec![search_path(&schema, &directory.shared)])
            }
        }
    }
}

/// `('search_path', '"tenant", "shared"')`, as SQL string literals for `set_config`.
pub(crate) fn search_path(schema: &SchemaName, shared: &Ident) -> (String, String) {
    (
        quote_literal("search_path"),
        quote_literal(&format!("{schema}, {shared}")),
    )
}

/// Tenant id to schema, from the registry's schema column, cached.
#[derive(Debug)]
pub(crate) struct SchemaDirectory {
    pool: PgPool,
    pooler: bool,
    shared: Ident,
    /// The registry table, qualified and quoted, and its schema column.
    registry: String,
    column: Ident,
    lookup: String,
    cache: Cache<TenantId, SchemaName>,
}

impl SchemaDirectory {
    fn new(pool: PgPool, decl: &TenancyDeclaration, pooler: bool) -> Self {
        let registry = decl.registry();
        let lookup = format!(
            "SELECT {column} FROM {schema}.{table} WHERE {id} = $1",
            column = registry.schema_column,
            schema = decl.schema(),
            table = registry.table,
            id = registry.id_column,
        );
        Self {
            pool,
            pooler,
            shared: decl.schema().clone(),
            registry: format!("{}.{}", decl.schema(), registry.table),
            column: registry.schema_column.clone(),
            lookup,
            cache: Cache::builder()
                .max_capacity(SCHEMA_CACHE_ENTRIES)
                .time_to_live(SCHEMA_TTL)
                .build(),
        }
    }

    /// Refuses a role that may not read the registry's schema column (a database migrated
    /// for the RLS strategy only): every request would fail on it.
    async fn check(&self) -> Result<(), PlacementError> {
        let query = || column_readable(&self.registry, self.column.as_str());
        match fetch_routing(&self.pool, self.pooler, query).await? {
            Some(true) => Ok(()),
            _ => Err(PlacementError::NotMigrated {
                column: format!("{}.{}", self.registry, self.column),
            }),
        }
    }

    /// The schema of tenant `id`, re-validated as it comes out of the registry.
    async fn schema_of(&self, id: TenantId) -> Result<SchemaName, PlacementError> {
        if let Some(schema) = self.cache.get(&id) {
            return Ok(schema);
        }
        let query = || {
            let query = sqlx::query_scalar(AssertSqlSafe(self.lookup.as_str()));
            match id.as_i64() {
                Some(int) => query.bind(int),
                None => query.bind(id.as_uuid()),
            }
        };
        let found: Option<Option<String>> = fetch_routing(&self.pool, self.pooler, query).await?;
        let name = found.flatten().ok_or_else(|| PlacementError::NoSchema {
            tenant: id.to_string(),
        })?;
        let schema = SchemaName::parse(&name, &self.shared)?;
        self.cache.insert(id, schema.clone());
        Ok(schema)
    }
}

/// Whether the connected role may read column `column` of the registry table `registry`
/// (schema-qualified): the start-up check of a placement that reads it.
fn column_readable<'q>(
    registry: &'q str,
    column: &'q str,
) -> QueryScalar<'q, Postgres, bool, PgArguments> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                         WHERE a.attrelid = to_regclass($1) AND a.attname = $2
                           AND NOT a.attisdropped
                           AND has_column_privilege(a.attrelid, a.attnum, 'SELECT'))",
    )
    .bind(registry)
    .bind(column)
}
