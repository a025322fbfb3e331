//! [`GuardError`]: why the guard refused, or could not run.

use super::Finding;
use crate::connect::ConnectError;
use crate::policy::{DeclarationError, IdentError};

/// What can go wrong when the guard runs. [`GuardError::Refused`] is the guard doing its job
/// (exit code 1); the rest mean it could not look (exit code 2, or a database error).
///
/// ```
/// use rls_tenancy::guard::{GuardError, ServerVersion};
/// let err = "fifteen".parse::<ServerVersion>().unwrap_err();
/// assert!(matches!(err, GuardError::InvalidServerVersion { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardError {
    /// The guard found a role or schema that can get around row-level security.
    #[error(
        "the guard refused to open the tenant pool: {}; run rls-check for the SQL that fixes each",
        refusal_list(findings)
    )]
    Refused {
        /// Every `refuse` finding, in report order.
        findings: Vec<Finding>,
    },

    /// The role to inspect does not exist.
    #[error("role {role:?} does not exist: create it first (see the README's one-time setup SQL)")]
    MissingRole {
        /// The role's name.
        role: String,
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

    /// A declared tenant table is missing.
    #[error("the database is not migrated: {what} is missing; run rls-migrate first")]
    NotMigrated {
        /// The missing object.
        what: String,
    },

    /// The declaration names a table or column the database does not have, or has with
    /// another type.
    #[error(transparent)]
    Declaration(#[from] DeclarationError),

    /// A server version floor was not of the form `MAJOR.MINOR`.
    #[error(
        "invalid server version {input:?}: use MAJOR.MINOR of PostgreSQL 10 or later, for example 15.14"
    )]
    InvalidServerVersion {
        /// What was given, truncated for display.
        input: String,
    },

    /// A name read from the catalogs or given as an option cannot be used.
    #[error(transparent)]
    Ident(#[from] IdentError),

    /// The server could not be reached (`check_url`).
    #[error(transparent)]
    Connect(#[from] ConnectError),

    /// A catalog query failed.
    #[error("the guard's catalog query failed: {0}")]
    Database(#[from] sqlx::Error),

    /// The registry's placement of tenant databases could not be read
    /// ([`super::check_databases`]).
    #[error("cannot read where the tenant databases are: {0}")]
    Placement(#[from] crate::placement::PlacementError),
}

/// `[rule] message; [rule] message`.
fn refusal_list(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The guard's `Result`.
pub(crate) type Result<T, E = GuardError> = std::result::Result<T, E>;
