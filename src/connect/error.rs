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

    /// A server name that is not `[a-z0-9][a-z0-9_-]{0,62}`.
    #[error(
        "invalid server name {name:?}: use 1 to 63 lowercase letters, digits, '-' or '_', starting with a letter or digit"
    )]
    InvalidServerName {
        /// The name given.
        name: String,
    },

    /// A server entry without its name (not shown: it may hold a password).
    #[error(
        "a server entry is not NAME=URL: write each server as NAME=URL, e.g. eu1=postgres://USER:PASSWORD@HOST:PORT/postgres"
    )]
    ServerEntry,

    /// Two servers with one name.
    #[error("server {name} is given twice: give each server one NAME=URL")]
    DuplicateServer {
        /// The name given twice.
        name: String,
    },

    /// A server name no configured server has.
    #[error("unknown server {name}: the configured servers are {known}")]
    UnknownServer {
        /// The name asked for.
        name: String,
        /// The configured names, comma-separated.
        known: String,
    },

    /// The database strategy with no server configured.
    #[error(
        "the database strategy needs at least one server: pass --server NAME=URL (repeatable), set RLS_SERVERS, or list [[server]] entries in the --config file"
    )]
    NoServers,

    /// A configuration file that cannot be read or is malformed.
    #[error("cannot read the servers from {path}: {reason}")]
    Config {
        /// The file.
        path: String,
        /// Why (a line number, never the line: it may hold a password).
        reason: String,
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
