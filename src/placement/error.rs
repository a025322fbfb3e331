//! [`PlacementError`]: why a tenant's place could not be found or named.

use crate::policy::IdentError;

/// A tenant schema name that cannot be used, or a tenant with no place to go.
///
/// ```
/// use rls_tenancy::{Ident, PlacementError, SchemaName};
/// let err = SchemaName::parse("public", &Ident::parse("schema", "app")?).unwrap_err();
/// assert!(matches!(err, PlacementError::ReservedSchemaName { .. }));
/// assert!(err.to_string().contains("\"public\""));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlacementError {
    /// Text that is not a plain identifier.
    #[error(transparent)]
    InvalidSchemaName(#[from] IdentError),

    /// `public`, `information_schema`, a `pg_*` schema, or the shared schema.
    #[error(
        "schema name {name:?} is reserved (public, information_schema, pg_* and the shared schema hold no tenant): choose another"
    )]
    ReservedSchemaName {
        /// The name refused.
        name: String,
    },

    /// The registry gives the tenant no schema (or no longer holds the tenant).
    #[error(
        "tenant {tenant} has no schema in the registry: create it with rls-tenant create, or check the registry's schema column"
    )]
    NoSchema {
        /// The tenant's id.
        tenant: String,
    },

    /// The pool's role may not read the registry's schema column: the database was not
    /// migrated for the schema strategy.
    #[error(
        "the database is not migrated for the schema strategy: this role may not read the registry's schema column {column}; run rls-migrate --strategy schema"
    )]
    NotMigrated {
        /// The registry's schema column, qualified.
        column: String,
    },

    /// The runtime role may not read a registry column the database strategy routes by.
    #[error(
        "the control database is not migrated for the database strategy: this role may not read the registry's column {column}; run rls-migrate --strategy database"
    )]
    NotMigratedForDatabases {
        /// The registry's server or database column, qualified.
        column: String,
    },

    /// The registry names no database for the tenant (or a server name that is not valid).
    #[error(
        "tenant {tenant} has no database in the registry: create it with rls-tenant create (--strategy database)"
    )]
    NoDatabase {
        /// The tenant's id.
        tenant: String,
    },

    /// [`crate::TenantPool::connect_servers`] with a declaration of another strategy.
    #[error(
        "a tenant pool over servers serves the database strategy only: give --strategy database (or strategy = \"database\" in the declaration), or open a pool over one database"
    )]
    NotDatabaseStrategy,

    /// A tenant database name that is not a safe identifier, or is reserved.
    #[error("database name {name:?} cannot be used: {reason}")]
    InvalidDatabaseName {
        /// The name refused.
        name: String,
        /// Why, and what to do.
        reason: &'static str,
    },

    /// A `--database-pattern` that cannot name tenant databases safely.
    #[error("database pattern {pattern:?} cannot be used: {reason}")]
    InvalidDatabasePattern {
        /// The pattern refused.
        pattern: String,
        /// Why, and what to do.
        reason: &'static str,
    },

    /// A pool over one database asked to serve the database strategy, where each tenant has
    /// a database of its own.
    #[error(
        "a tenant pool over one database cannot serve the database strategy: each tenant has a database of its own on one of the servers (--server NAME=URL)"
    )]
    OneDatabase,

    /// The registry could not be read.
    #[error("cannot read the tenant's schema from the registry: {0}")]
    Registry(#[from] sqlx::Error),
}
