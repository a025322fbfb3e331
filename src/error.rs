//! The library's one error type.
//!
//! Variants are named for what failed; every message says what to do about it. Messages
//! never contain a password: connection strings are shown through [`crate::RedactedUrl`].

/// A `Result` whose error defaults to [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in rls-tenancy.
///
/// The binaries map [`Error::is_usage`] errors to exit code 2 and the rest to exit code 1;
/// the HTTP layer maps them to status codes in one place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tenant id was not a positive decimal integer that fits in `i64`.
    #[error(
        "invalid tenant id {input:?}: use the decimal digits of a positive 64-bit integer, without sign or leading zeros"
    )]
    InvalidTenantId {
        /// What was given, truncated for display.
        input: String,
    },

    /// A tenant slug did not match the allowed shape.
    #[error(
        "invalid tenant slug {input:?}: use 1 to 63 lowercase ASCII letters, digits and inner hyphens"
    )]
    InvalidTenantSlug {
        /// What was given, truncated for display.
        input: String,
    },

    /// A request's host does not name a tenant in the accepted form (HTTP 400).
    #[error("invalid host: {0}")]
    InvalidHost(#[from] crate::HostError),

    /// The configured base domain is not a plain lowercase domain name.
    #[error(
        "invalid base domain {input:?}: {reason}; pass a domain name such as example.com or localhost"
    )]
    InvalidBaseDomain {
        /// What was given, truncated for display.
        input: String,
        /// The rule it breaks.
        reason: crate::HostError,
    },

    /// The configured tenant header name is not a valid HTTP header name.
    #[error(
        "invalid header name {input:?}: use ASCII letters, digits and hyphens, such as x-tenant"
    )]
    InvalidHeaderName {
        /// What was given, truncated for display.
        input: String,
    },

    /// The request lacks the header that names the tenant (HTTP 400).
    #[error("the {header} header is missing: send the tenant's slug in it")]
    MissingTenantHeader {
        /// The header's name.
        header: String,
    },

    /// The header that names the tenant was sent more than once (HTTP 400).
    #[error("the {header} header was sent more than once: send exactly one tenant")]
    DuplicateTenantHeader {
        /// The header's name.
        header: String,
    },

    /// The header that names the tenant holds no valid tenant name (HTTP 400).
    #[error("invalid {header} header: {reason}")]
    InvalidTenantHeader {
        /// The header's name.
        header: String,
        /// The rule its value breaks.
        reason: crate::LabelError,
    },

    /// The path does not start with the tenant prefix (HTTP 400, or route elsewhere).
    #[error("the path names no tenant: start it with /{prefix}/ and the tenant's slug")]
    MissingTenantPath {
        /// The configured prefix segment.
        prefix: String,
    },

    /// The path's tenant segment is not a valid tenant name (HTTP 400).
    #[error("invalid tenant in the path: {reason}")]
    InvalidTenantPath {
        /// The rule the segment breaks.
        reason: crate::LabelError,
    },

    /// No active tenant has this slug (HTTP 404). Unknown and inactive look the same on
    /// purpose: the answer must not tell an outsider which tenants exist.
    #[error("no active tenant {slug}: check the name, or activate the tenant in the registry")]
    TenantNotFound {
        /// The slug that was looked up.
        slug: crate::TenantSlug,
    },

    /// The scoped query builder refused a statement; nothing was sent.
    #[error("refused statement: {0}")]
    Query(#[from] crate::QueryError),

    /// A page number or page size out of bounds (HTTP 400).
    #[error(
        "invalid page {page} of {per_page} items: pages start at 1, hold 1 to 100 items and start no further than item 100000"
    )]
    InvalidPage {
        /// The page asked for.
        page: u32,
        /// The page size asked for.
        per_page: u32,
    },

    /// An SQL identifier (schema, table, column, role, setting name) was rejected.
    #[error(
        "invalid {what} {input:?}: use lowercase ASCII letters, digits and underscores, starting with a letter or underscore, at most 63 bytes"
    )]
    InvalidIdentifier {
        /// What kind of identifier it was meant to be.
        what: &'static str,
        /// What was given.
        input: String,
    },

    /// A connection string could not be parsed.
    #[error("invalid database URL: {reason}; expected postgres://USER:PASSWORD@HOST:PORT/DATABASE")]
    InvalidDatabaseUrl {
        /// Why it was rejected (never includes the password).
        reason: String,
    },

    /// No connection string was given at all.
    #[error("no database URL given: pass --database-url or set {env_var}")]
    MissingDatabaseUrl {
        /// The environment variable that would have supplied it.
        env_var: &'static str,
    },

    /// The server could not be reached or refused the login.
    #[error(
        "cannot connect to {url}: {source}; check that the server is running and the role may log in"
    )]
    Connect {
        /// The URL, with its password hidden.
        url: crate::RedactedUrl,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },

    /// A role named on the command line or in the configuration does not exist.
    #[error("role {role:?} does not exist: create it first (see the README's one-time setup SQL)")]
    MissingRole {
        /// The role's name.
        role: String,
    },

    /// The database has not been migrated (the schema or a tenant table is missing).
    #[error("the database is not migrated: {what} is missing; run rls-migrate first")]
    NotMigrated {
        /// The missing object.
        what: String,
    },

    /// The schema to guard does not exist in the database.
    #[error(
        "schema {schema:?} does not exist in database {database:?}: check --schema, or run rls-migrate first"
    )]
    MissingSchema {
        /// The schema that was asked for.
        schema: String,
        /// The database that was inspected.
        database: String,
    },

    /// A server version floor was not of the form `MAJOR.MINOR`.
    #[error(
        "invalid server version {input:?}: use MAJOR.MINOR of PostgreSQL 10 or later, for example 15.14"
    )]
    InvalidServerVersion {
        /// What was given, truncated for display.
        input: String,
    },

    /// The guard found a role or schema that can get around row-level security.
    #[error(
        "the guard refused to open the tenant pool: {}; run rls-check for the SQL that fixes each",
        crate::guard::refusal_list(findings)
    )]
    GuardRefused {
        /// Every `refuse` finding, in report order.
        findings: Vec<crate::guard::Finding>,
    },

    /// The policy declaration in policies/ is malformed.
    #[error("invalid policy declaration: {reason}; see policies/tenancy.toml")]
    InvalidDeclaration {
        /// What is wrong with it.
        reason: String,
    },

    /// A migration failed; it was rolled back and nothing of it was applied.
    #[error("migration failed and was rolled back: {source}")]
    Migration {
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// No Postgres could be found or started for tests or the demo.
    #[error(
        "no PostgreSQL available: {reason}; set RLS_TEST_ADMIN_URL to a superuser URL, run a server on 127.0.0.1:5432, or install the server binaries (apt-get install -y postgresql)"
    )]
    NoPostgres {
        /// What was tried and why it failed.
        reason: String,
    },

    /// An `rls-seed` option is out of range.
    #[error("invalid {option}: {reason}")]
    InvalidSeedOption {
        /// The flag (or profile field) at fault, for example `--accounts`.
        option: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },

    /// No seed profile of that name exists in seed/.
    #[error("unknown seed profile {name:?}: use one of {known}")]
    UnknownSeedProfile {
        /// The name given, truncated for display.
        name: String,
        /// The profiles that exist, comma-separated.
        known: String,
    },

    /// A seed profile in seed/ is malformed.
    #[error("invalid seed profile {name:?}: {reason}; fix seed/{name}.toml")]
    InvalidSeedProfile {
        /// The profile's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Some of the accounts to seed already exist and `--resume` was not given.
    #[error(
        "the database already holds {existing} of the {requested} accounts to seed ({first} .. {last}): pass --resume to add only the missing ones, or seed an empty database"
    )]
    SeedConflict {
        /// How many of the requested slugs exist.
        existing: u64,
        /// How many accounts were requested.
        requested: u64,
        /// The lowest existing seeded slug.
        first: String,
        /// The highest existing seeded slug.
        last: String,
    },

    /// `--resume` found accounts that another seed or profile made.
    #[error(
        "{slug} was seeded with other options ({reason}): resume with the --seed and profile of the first run"
    )]
    SeedMismatch {
        /// The account that does not match.
        slug: String,
        /// What differs.
        reason: String,
    },

    /// The role rls-seed connected as cannot seed through row-level security.
    #[error(
        "rls-seed cannot run as role {role:?}: {reason}; connect as the deploy role (DEPLOY_DATABASE_URL)"
    )]
    SeedRole {
        /// The role connected as.
        role: String,
        /// Why it is unfit.
        reason: String,
    },

    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// An I/O error (process spawning, files).
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Whether this error is the caller's input or environment (exit code 2) rather than a
    /// failure of the work itself (exit code 1).
    ///
    /// ```
    /// use rls_tenancy::{Error, TenantId};
    /// let err = "0".parse::<TenantId>().unwrap_err();
    /// assert!(err.is_usage());
    /// ```
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::InvalidTenantId { .. }
                | Error::InvalidTenantSlug { .. }
                | Error::InvalidHost(_)
                | Error::InvalidBaseDomain { .. }
                | Error::InvalidHeaderName { .. }
                | Error::MissingTenantHeader { .. }
                | Error::DuplicateTenantHeader { .. }
                | Error::InvalidTenantHeader { .. }
                | Error::MissingTenantPath { .. }
                | Error::InvalidTenantPath { .. }
                | Error::TenantNotFound { .. }
                | Error::InvalidPage { .. }
                | Error::InvalidIdentifier { .. }
                | Error::InvalidDatabaseUrl { .. }
                | Error::MissingDatabaseUrl { .. }
                | Error::Connect { .. }
                | Error::MissingRole { .. }
                | Error::MissingSchema { .. }
                | Error::InvalidServerVersion { .. }
                | Error::NotMigrated { .. }
                | Error::InvalidDeclaration { .. }
                | Error::NoPostgres { .. }
                | Error::InvalidSeedOption { .. }
                | Error::UnknownSeedProfile { .. }
                | Error::InvalidSeedProfile { .. }
                | Error::SeedConflict { .. }
                | Error::SeedMismatch { .. }
                | Error::SeedRole { .. }
        )
    }
}

/// Shortens untrusted input before it is echoed in an error message.
pub(crate) fn echo(input: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = input.chars().take(MAX).collect();
    if input.chars().count() > MAX {
        out.push('…');
    }
    out
}
