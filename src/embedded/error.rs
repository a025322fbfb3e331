//! [`HarnessError`]: why no PostgreSQL could be had for the tests, benchmarks or the demo.

use crate::connect::ConnectError;
use crate::migrate::MigrateError;
use crate::policy::IdentError;

/// Why the embedded harness failed.
///
/// ```
/// use rls_tenancy::HarnessError;
/// let err = HarnessError::NoPostgres { reason: "nothing on 127.0.0.1:5432".into() };
/// assert!(err.to_string().contains("RLS_TEST_ADMIN_URL"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// No Postgres could be found or started.
    #[error(
        "no PostgreSQL available: {reason}; set RLS_TEST_ADMIN_URL to a superuser URL, run a server on 127.0.0.1:5432, or install the server binaries (apt-get install -y postgresql)"
    )]
    NoPostgres {
        /// What was tried and why it failed.
        reason: String,
    },

    /// A standby did not replay the primary's WAL in time.
    #[error(
        "the standby on port {port} did not replay the primary's writes within {waited_ms} ms; read its server.log in the cluster directory"
    )]
    Replication {
        /// The standby's port.
        port: u16,
        /// How long it was waited for.
        waited_ms: u128,
    },

    /// A server was found but could not be connected to.
    #[error(transparent)]
    Connect(#[from] ConnectError),

    /// A generated name was refused (a bug).
    #[error(transparent)]
    Ident(#[from] IdentError),

    /// Migrating the scratch database failed.
    #[error(transparent)]
    Migrate(#[from] MigrateError),

    /// The database's error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// Starting or stopping a cluster failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// The harness's `Result`.
pub(crate) type Result<T, E = HarnessError> = std::result::Result<T, E>;
