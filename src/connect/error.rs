//! [`ConnectError`]: a connection string that is wrong, or a server that will not answer.

use super::RedactedUrl;

/// Why a connection could not be made. Both are the caller's configuration or environment
/// (exit code 2); neither message ever contains a password.
///
/// ```
/// use rls_tenancy::{ConnectError, DatabaseUrl};
/// let err = "mysql://x@y/z".parse::<DatabaseUrl>().unwrap_err();
/// assert!(matches!(err, ConnectError::InvalidUrl { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// A connection string could not be parsed.
    #[error("invalid database URL: {reason}; expected postgres://USER:PASSWORD@HOST:PORT/DATABASE")]
    InvalidUrl {
        /// Why it was rejected (never includes the password).
        reason: String,
    },

    /// A URL lists several hosts (`postgres://u@h1,h2/db`) where one server is meant: only
    /// the primary's URL of a [`crate::RoutingPool`] ([`crate::DatabaseHosts`]) takes a
    /// host list.
    #[error(
        "the database URL lists {count} hosts; give one host here (a host list is only taken by the primary's URL of the routing pool, e.g. rls-demo's --database-url)"
    )]
    SeveralHosts {
        /// How many hosts it lists.
        count: usize,
    },

    /// The server could not be reached or refused the login.
    #[error(
        "cannot connect to {url}: {source}; check that the server is running and the role may log in"
    )]
    Unreachable {
        /// The URL, with its password hidden.
        url: RedactedUrl,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
}
