//! [`LifecycleError`]: what `rls-tenant` refuses or fails on.

use crate::connect::ConnectError;
use crate::db::DbError;
use crate::migrate::MigrateError;
use crate::placement::PlacementError;
use crate::resolve::DomainError;
use crate::tenant::TenantError;

/// A tenant lifecycle command's failure. The variants for bad input (a taken slug or schema,
/// an unknown tenant, a missing schema, a malformed name) are refused before anything is
/// written; [`LifecycleError::is_usage`] tells them from failures of the work.
///
/// ```
/// use rls_tenancy::LifecycleError;
/// let err = LifecycleError::TenantNotFound { slug: "acme".into() };
/// assert_eq!(err.to_string(), "no tenant acme: `rls-tenant list` shows the tenants");
/// assert!(err.is_usage());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LifecycleError {
    /// No tenant has that slug.
    #[error("no tenant {slug}: `rls-tenant list` shows the tenants")]
    TenantNotFound {
        /// The slug asked for.
        slug: String,
    },

    /// Another tenant has that slug.
    #[error("tenant slug {slug} is taken: pick another slug")]
    SlugTaken {
        /// The slug asked for.
        slug: String,
    },

    /// A schema of that name exists already (another tenant's, or not a tenant's at all).
    #[error("schema {schema} exists already: pick another slug, or give --schema a free name")]
    SchemaTaken {
        /// The schema name.
        schema: String,
    },

    /// A tenant the registry names has no schema in the database.
    #[error(
        "tenant {slug} is registered with schema {schema}, which does not exist: run `rls-migrate --strategy schema` to create it"
    )]
    SchemaMissing {
        /// The tenant's slug.
        slug: String,
        /// The schema its registry row names.
        schema: String,
    },

    /// A tenant the registry holds without a schema name, in the schema mode.
    #[error(
        "tenant {slug} has no schema in the registry: set its schema column, or drop and create it again"
    )]
    NoSchema {
        /// The tenant's slug.
        slug: String,
    },

    /// A database of that name exists already on the server.
    #[error(
        "database {database} exists already on server {server}: pick another slug, or drop the database if nothing uses it"
    )]
    DatabaseTaken {
        /// The server.
        server: String,
        /// The database name.
        database: String,
    },

    /// The server asked for holds its `max_tenants` already.
    #[error(
        "server {server} is full ({max} tenants, its max_tenants): pick another server with --server, or raise its max_tenants"
    )]
    ServerFull {
        /// The server.
        server: String,
        /// Its limit.
        max: u32,
    },

    /// Every server holds its `max_tenants` already.
    #[error("every server is full (each holds its max_tenants): add a server, or raise a limit")]
    ServersFull,

    /// A tenant the registry holds without a server or database, in the database mode.
    #[error(
        "tenant {slug} has no server and database in the registry: set its server and database columns, or drop and create it again"
    )]
    NoDatabase {
        /// The tenant's slug.
        slug: String,
    },

    /// `move` outside the database mode: only tenant databases move between servers.
    #[error(
        "rls-tenant move moves a tenant's own database between servers: give --strategy database (or strategy = \"database\" in the declaration)"
    )]
    MoveNeedsDatabases,

    /// A move to the server the tenant is on.
    #[error("tenant {slug} is on server {server} already: name another server with --to")]
    SameServer {
        /// The tenant's slug.
        slug: String,
        /// The server.
        server: String,
    },

    /// The target's template has other columns than the tenant's database: the two are at
    /// different migrations.
    #[error(
        "table {table} has other columns on the target server than in the tenant's database: run rls-migrate --strategy database so both are at the same migrations, then move again"
    )]
    SchemasDiffer {
        /// The table, qualified.
        table: String,
    },

    /// A tenant table without a primary key: a move cannot tell which of its rows the
    /// tenant's writers changed during the copy.
    #[error(
        "table {table} has no primary key: rls-tenant move copies again, at the switch, the rows written during the copy by their key; add a primary key to the table, then move again"
    )]
    NoPrimaryKey {
        /// The table, qualified.
        table: String,
    },

    /// Another move of the tenant is under way (its change log is in the tenant's database).
    #[error(
        "tenant {slug} is being moved already: wait for that move to end (`rls-tenant list` shows where the tenant is), then move again"
    )]
    MoveUnderWay {
        /// The tenant's slug.
        slug: String,
    },

    /// The copy's row counts are not the source's: the move was abandoned.
    #[error(
        "the copy's row counts differ from the tenant's database in {tables}: the move was abandoned, the tenant stays where it was and the copy was dropped; look for triggers or rules on the target server's template"
    )]
    CountsDiffer {
        /// The tables whose counts differ, with both counts.
        tables: String,
    },

    /// The tenant's registry row changed during the move.
    #[error(
        "tenant {slug}'s registry row changed during the move: the move was abandoned and the copy dropped; check where it is with `rls-tenant list`"
    )]
    RegistryChanged {
        /// The tenant's slug.
        slug: String,
    },

    /// The tenant moved, but its old database could not be dropped.
    #[error(
        "the tenant moved, but its old database {database} on server {server} could not be dropped ({reason}): drop it with DROP DATABASE {database} WITH (FORCE) there"
    )]
    OldDatabaseKept {
        /// The old server.
        server: String,
        /// The database name.
        database: String,
        /// Why it was not dropped.
        reason: String,
    },

    /// The tenant was dropped from the registry, but its database could not be dropped.
    #[error(
        "tenant dropped from the registry, but its database {database} on server {server} could not be dropped ({reason}): drop it with DROP DATABASE {database} WITH (FORCE) there"
    )]
    DatabaseKept {
        /// The server.
        server: String,
        /// The database name.
        database: String,
        /// Why it was not dropped.
        reason: String,
    },

    /// The deploy role may not create databases on the server.
    #[error(
        "the deploy role may not create databases on server {server}: run ALTER ROLE ... CREATEDB there as a superuser"
    )]
    CannotCreateDatabase {
        /// The server.
        server: String,
    },

    /// A static tenant of the declaration: the declaration is where it is changed.
    #[error(
        "tenant {slug} is a static tenant of the declaration: rls-tenant does not {action} it; edit or remove its [[static_tenant]] entry instead"
    )]
    StaticTenant {
        /// The static tenant's name.
        slug: String,
        /// What was refused: `drop`, `rename` or `suspend`.
        action: &'static str,
    },

    /// The schema mode's create needs the tenant migrations.
    #[error("creating a tenant schema needs the tenant migrations: pass --tenant-migrations DIR")]
    NoTenantMigrations,

    /// The tenant selector names nothing usable.
    #[error("invalid tenant selector {selector:?}: {reason}")]
    InvalidSelector {
        /// The selector given.
        selector: String,
        /// Why it is refused.
        reason: String,
    },

    /// A domain refused (taken, malformed, a static tenant's) or unknown.
    #[error(transparent)]
    Domain(#[from] DomainError),

    /// A malformed slug or tenant id.
    #[error(transparent)]
    Tenant(#[from] TenantError),

    /// A malformed or reserved schema name.
    #[error(transparent)]
    Placement(#[from] PlacementError),

    /// The server could not be reached.
    #[error(transparent)]
    Connect(#[from] ConnectError),

    /// The tenant migrations could not be read or applied.
    #[error(transparent)]
    Migrate(#[from] MigrateError),

    /// A tenant transaction could not be opened.
    #[error(transparent)]
    Db(#[from] DbError),

    /// The database refused the work; the transaction was rolled back.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl LifecycleError {
    /// Whether the error is the caller's input or environment (exit code 2) rather than a
    /// failure of the work (exit code 1).
    ///
    /// ```
    /// use rls_tenancy::LifecycleError;
    /// assert!(LifecycleError::SlugTaken { slug: "acme".into() }.is_usage());
    /// assert!(!LifecycleError::Database(sqlx::Error::PoolClosed).is_usage());
    /// ```
    pub fn is_usage(&self) -> bool {
        match self {
            LifecycleError::Migrate(err) => err.is_usage(),
            LifecycleError::Domain(err) => err.is_usage(),
            LifecycleError::Placement(err) => !matches!(err, PlacementError::Registry(_)),
            LifecycleError::Db(err) => matches!(
                err,
                DbError::Connect(_)
                    | DbError::TenantKey(_)
                    | DbError::TenantContext { .. }
                    | DbError::ReleaseCheck { .. }
            ),
            LifecycleError::Database(_)
            | LifecycleError::CountsDiffer { .. }
            | LifecycleError::RegistryChanged { .. }
            | LifecycleError::MoveUnderWay { .. }
            | LifecycleError::OldDatabaseKept { .. }
            | LifecycleError::DatabaseKept { .. } => false,
            _ => true,
        }
    }
}
