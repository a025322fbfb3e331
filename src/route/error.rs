//! [`RouteError`]: why a [`crate::RoutingPool`] could not open.

use crate::connect::RedactedUrl;
use crate::db::DbError;

/// What can go wrong opening a [`crate::RoutingPool`].
///
/// ```
/// use rls_tenancy::RouteError;
/// let err = RouteError::ReplicaMismatch {
///     replica: "postgres://other@127.0.0.1:5433/app".parse::<rls_tenancy::DatabaseUrl>()?.redacted(),
///     what: "role",
///     replica_value: "other".into(),
///     primary_value: "app_runtime".into(),
/// };
/// assert!(err.to_string().contains("same role"));
/// # Ok::<(), rls_tenancy::ConnectError>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// A replica URL logs in as another role, or to another database, than the primary's:
    /// its reads would not be the primary's rows seen by the primary's role.
    #[error(
        "the replica {replica} names {what} `{replica_value}` but the primary's is `{primary_value}`: a replica must use the same role and database as the primary (only host and port differ)"
    )]
    ReplicaMismatch {
        /// The replica's URL, without its password.
        replica: RedactedUrl,
        /// `role` or `database`.
        what: &'static str,
        /// What the replica URL says.
        replica_value: String,
        /// What the primary URL says.
        primary_value: String,
    },

    /// The guard refused the role on a replica (or could not run there): that server would
    /// serve reads to a role that can get around row-level security.
    #[error("the replica {replica} was refused: {source}")]
    ReplicaRefused {
        /// The replica's URL, without its password.
        replica: RedactedUrl,
        /// The guard's refusal.
        source: DbError,
    },

    /// The guard refused the role on a host of the primary (or could not run there).
    #[error("the host {host} of the primary was refused: {source}")]
    PrimaryRefused {
        /// The host's URL, without its password.
        host: RedactedUrl,
        /// The guard's refusal.
        source: DbError,
    },

    /// None of the primary's hosts is up and out of recovery (within the failover wait).
    #[error(
        "no host of the primary is up and out of recovery: {hosts}; check the servers, or wait for the HA manager to promote one"
    )]
    NoPrimary {
        /// Each host and how it stood (`down`, `in recovery`), without passwords.
        hosts: String,
    },

    /// The primary could not be opened.
    #[error(transparent)]
    Primary(#[from] DbError),
}
