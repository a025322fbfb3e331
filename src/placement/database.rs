//! Placement under [`Strategy::Database`](crate::Strategy::Database): tenant id -> the
//! server and database of the tenant's own database, from the registry's server and
//! database columns in the control database, cached, and invalidated by the registry's
//! `NOTIFY` (a moved tenant is routed to its new place in every process at once; the TTL is
//! the fallback while the listener is down).

use std::time::Duration;

use moka::sync::Cache;
use sqlx::{AssertSqlSafe, PgPool};

use super::{DatabaseName, PlacementError};
use crate::connect::ServerName;
use crate::policy::{Ident, TenancyDeclaration};
use crate::resolve::{Invalidate, Listener, fetch_routing};
use crate::tenant::TenantId;

/// How long a tenant's place is remembered without a notice: a move notifies, so this only
/// bounds how stale a place can be while the listener is down.
const PLACE_TTL: Duration = Duration::from_secs(60);

/// The most tenants whose place is remembered.
const PLACE_CACHE_ENTRIES: u64 = 100_000;

/// Where one tenant's database is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DatabasePlace {
    /// The server, as configured (`--server NAME=URL`).
    pub(crate) server: ServerName,
    /// The tenant's database on it.
    pub(crate) database: DatabaseName,
}

/// The cache a registry notice empties: any change may be a move, and notices carry a slug,
/// not an id.
#[derive(Debug, Clone)]
struct Places(Cache<TenantId, DatabasePlace>);

impl Invalidate for Places {
    fn heard(&self, _payload: &str) {
        self.0.invalidate_all();
    }

    fn invalidate_all(&self) {
        self.0.invalidate_all();
    }
}

/// Tenant id to (server, database), from the registry, cached.
#[derive(Debug)]
pub(crate) struct DatabaseDirectory {
    pool: PgPool,
    pooler: bool,
    /// The registry table, qualified and quoted, and its two columns.
    registry: String,
    columns: [Ident; 2],
    lookup: String,
    places: Places,
    /// Empties the cache on every registry notice; `None` outside a Tokio runtime.
    _listener: Option<Listener>,
}

impl DatabaseDirectory {
    /// Reads the registry of `decl` through `pool` (the control database).
    pub(crate) fn new(pool: PgPool, decl: &TenancyDeclaration, pooler: bool) -> Self {
        let registry = decl.registry();
        let lookup = format!(
            "SELECT ARRAY[{server}::text, {database}::text] FROM {schema}.{table} WHERE {id} = $1",
            server = registry.server_column,
            database = registry.database_column,
            schema = decl.schema(),
            table = registry.table,
            id = registry.id_column,
        );
        let places = Places(
            Cache::builder()
                .max_capacity(PLACE_CACHE_ENTRIES)
                .time_to_live(PLACE_TTL)
                .build(),
        );
        // Behind a transaction-mode pooler LISTEN does not work: the TTL is all there is.
        let listener = (!pooler)
            .then(|| Listener::spawn(&pool, places.clone()))
            .flatten();
        Self {
            pool,
            pooler,
            registry: format!("{}.{}", decl.schema(), registry.table),
            columns: [
                registry.server_column.clone(),
                registry.database_column.clone(),
            ],
            lookup,
            places,
            _listener: listener,
        }
    }

    /// Refuses a role that may not read the registry's server and database columns (a
    /// control database migrated for another strategy): every request would fail on it.
    pub(crate) async fn check(&self) -> Result<(), PlacementError> {
        for column in &self.columns {
            let query = || super::column_readable(&self.registry, column.as_str());
            if fetch_routing(&self.pool, self.pooler, query).await? != Some(true) {
                return Err(PlacementError::NotMigratedForDatabases {
                    column: format!("{}.{}", self.registry, column),
                });
            }
        }
        Ok(())
    }

    /// The place of tenant `id`, re-validated as it comes out of the registry.
    pub(crate) async fn place_of(&self, id: TenantId) -> Result<DatabasePlace, PlacementError> {
        if let Some(place) = self.places.0.get(&id) {
            return Ok(place);
        }
        let query = || {
            let query = sqlx::query_scalar(AssertSqlSafe(self.lookup.as_str()));
            match id.as_i64() {
                Some(int) => query.bind(int),
                None => query.bind(id.as_uuid()),
            }
        };
        let found: Option<Vec<Option<String>>> =
            fetch_routing(&self.pool, self.pooler, query).await?;
        let no_database = || PlacementError::NoDatabase {
            tenant: id.to_string(),
        };
        let [Some(server), Some(database)] =
            <[Option<String>; 2]>::try_from(found.ok_or_else(no_database)?)
                .map_err(|_| no_database())?
        else {
            return Err(no_database());
        };
        let place = DatabasePlace {
            server: server.parse().map_err(|_| no_database())?,
            database: database.parse()?,
        };
        self.places.0.insert(id, place.clone());
        Ok(place)
    }
}
