//! [`DbError`]: why a tenant pool could not open or a tenant transaction could not run.

use crate::connect::ConnectError;
use crate::guard::GuardError;
use crate::placement::PlacementError;
use crate::policy::TenantKeyError;

/// What can go wrong opening a [`crate::TenantPool`] or running a [`crate::TenantTx`].
///
/// ```
/// use rls_tenancy::DbError;
/// let err = DbError::from(sqlx::Error::PoolTimedOut);
/// assert!(err.to_string().contains("pool timed out"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The server could not be reached, or the URL is wrong.
    #[error(transparent)]
    Connect(#[from] ConnectError),

    /// The guard refused the pool's role, or could not run.
    #[error(transparent)]
    Guard(#[from] GuardError),

    /// The tenant's place (its schema, in the schema mode) could not be found.
    #[error(transparent)]
    Placement(#[from] PlacementError),

    /// The pool's tenant key file cannot be used.
    #[error(transparent)]
    TenantKey(#[from] TenantKeyError),

    /// The pool cannot enter its transactions' tenant as the database requires: no key for
    /// a signed database, a key for a plain one, or a key the database refuses.
    #[error("the tenant pool cannot open: {reason}")]
    TenantContext {
        /// What is wrong and what to do.
        reason: String,
    },

    /// The database lacks what every tenant transaction's `COMMIT` calls: the release check
    /// (`rls_tenancy.release_check`) of this toolkit's version, callable by the pool's role.
    #[error("the tenant pool cannot open: {reason}")]
    ReleaseCheck {
        /// What is missing and what to do (run rls-migrate).
        reason: String,
    },

    /// The database's error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// The database cannot be had right now: it refused or dropped connections moments ago
    /// and has not taken one since, so the request is refused at once instead of waiting
    /// for the acquire timeout. Temporary: retry later (HTTP 503 with `Retry-After`).
    #[error("the database is unavailable: {reason}; retry later")]
    Unavailable {
        /// Why, in words for the log.
        reason: &'static str,
    },

    /// The connection was lost while a write transaction's `COMMIT` was under way
    /// ([`crate::RoutedTx::commit`]): the server may have committed it or not. The library
    /// never sends it again; check whether the write took effect before repeating it.
    #[error(
        "the connection was lost during COMMIT, so the write may or may not have been committed: check before repeating it ({source})"
    )]
    CommitOutcomeUnknown {
        /// The driver's error.
        source: sqlx::Error,
    },

    /// A tenant's database is on a server this process was not given.
    #[error(
        "the server {server:?} is not configured: give it with --server {server}=URL (or RLS_SERVERS, or a [[server]] entry in the config file)"
    )]
    UnknownServer {
        /// The server's name, as the registry has it.
        server: String,
    },

    /// `TenantPool::begin_current` in a task that has no current tenant.
    #[error(
        "no current tenant: run this inside TenantScope::scope(...) (or a task started with rls_tenancy::spawn), or begin with an explicit scope"
    )]
    NoCurrentTenant,

    /// A tenant transaction ended while a savepoint begun inside it
    /// (`sqlx::Connection::begin(&mut *tx)`) was still open, because its `Transaction` was
    /// leaked (`std::mem::forget`): nothing was committed and the connection is closed.
    #[error(
        "the tenant transaction ended with a savepoint still open, so it was rolled back: commit or roll back (or drop) every transaction begun inside it first"
    )]
    SavepointOpen,
}
