//! [`enum@Error`]: one type for every error of the toolkit, for callers who want one.
//!
//! Each step of the request path has its own error type, named for its concern
//! ([`crate::TenantError`], [`crate::DeclarationError`], [`crate::ConnectError`],
//! [`crate::ResolveError`], [`crate::guard::GuardError`], [`crate::DbError`],
//! [`crate::StatementError`]), and the optional parts have theirs. `Error` sits above them
//! all and converts from each, so `?` works in code that calls several; nothing in the
//! toolkit returns it, so no module depends on it.

use crate::connect::ConnectError;
use crate::db::{DbError, Retryable};
use crate::guard::GuardError;
use crate::placement::PlacementError;
use crate::policy::{DeclarationError, IdentError, TenantKeyError};
use crate::query::{QueryError, StatementError};
use crate::resolve::ResolveError;
use crate::route::RouteError;
use crate::tenant::TenantError;

/// A `Result` whose error defaults to [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error of rls-tenancy, by the concern it comes from. Messages never contain a
/// password: connection strings are shown through [`crate::RedactedUrl`].
///
/// ```
/// use rls_tenancy::{Error, TenantId, TenantError};
/// fn parse(input: &str) -> rls_tenancy::Result<TenantId> {
///     Ok(input.parse()?)
/// }
/// assert!(matches!(parse("0"), Err(Error::Tenant(TenantError::InvalidTenantId { .. }))));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tenant id or slug of the wrong shape.
    #[error(transparent)]
    Tenant(#[from] TenantError),
    /// A name that cannot enter SQL.
    #[error(transparent)]
    Ident(#[from] IdentError),
    /// A declaration that cannot be used.
    #[error(transparent)]
    Declaration(#[from] DeclarationError),
    /// A tenant key file that cannot be used.
    #[error(transparent)]
    TenantKey(#[from] TenantKeyError),
    /// A bad connection string, or a server that will not answer.
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// A request's tenant could not be resolved.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// A tenant's domain could not be added, removed or read.
    #[error(transparent)]
    Domain(#[from] crate::resolve::DomainError),
    /// The guard refused, or could not run.
    #[error(transparent)]
    Guard(#[from] GuardError),
    /// A tenant schema name that cannot be used, or a tenant without its place.
    #[error(transparent)]
    Placement(#[from] PlacementError),
    /// The tenant pool or a tenant transaction failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The routing pool could not open.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// The scoped builder refused a statement.
    #[error("refused statement: {0}")]
    Query(#[from] QueryError),
    /// A scoped statement was refused or failed.
    #[error(transparent)]
    Statement(#[from] StatementError),
    /// Migrating failed.
    #[cfg(feature = "migrate")]
    #[error(transparent)]
    Migrate(#[from] crate::migrate::MigrateError),
    /// A tenant lifecycle command's failure (feature `migrate`).
    #[cfg(feature = "migrate")]
    #[error(transparent)]
    Lifecycle(#[from] crate::lifecycle::LifecycleError),
    /// Seeding failed.
    #[cfg(feature = "seed")]
    #[error(transparent)]
    Seed(#[from] crate::seed::SeedError),
    /// The embedded PostgreSQL harness failed.
    #[cfg(feature = "testing")]
    #[error(transparent)]
    Harness(#[from] crate::embedded::HarnessError),
    /// Any other database error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// An I/O error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Lets [`crate::TenantPool::retry`] take closures that return `Error`: the database error
/// behind a statement, a transaction or a plain sqlx call decides whether to retry.
impl Retryable for Error {
    fn database_error(&self) -> Option<&sqlx::Error> {
        match self {
            Error::Database(e)
            | Error::Db(DbError::Database(e))
            | Error::Statement(StatementError::Database(e)) => Some(e),
            _ => None,
        }
    }
}
