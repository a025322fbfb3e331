//! What a failed `BEGIN` on a server says about that server, so the route step knows
//! whether another server may be tried. Nothing of a transaction has run when its `BEGIN`
//! fails, so trying another server never runs a statement twice.

use crate::db::{DbError, TenantPool, is_connection_lost};

/// Why a `BEGIN` on a server failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failed {
    /// The server is gone or takes no new connections (refused, dropped, shutting down,
    /// draining, the login refused there): mark it down, try another.
    Server,
    /// A read-write `BEGIN` found the server in recovery: it is no primary (any more).
    NotPrimary,
    /// Every connection of its pool is in use: another server may have one free.
    Busy,
    /// The request itself (its tenant, its placement): no other server would do better.
    Request,
}

/// SQLSTATEs a server answers a new connection with while it takes none: the database does
/// not allow connections now (`55000`, `ALTER DATABASE ... ALLOW_CONNECTIONS false`), the
/// login is refused there (class `28`, a pg_hba.conf that drains a role), the database is
/// not there (`3D000`).
const REFUSING: [&str; 2] = ["55000", "3D000"];

/// What `err`, from `pool.begin_with`, says.
pub(crate) fn classify(err: &DbError, pool: &TenantPool) -> Failed {
    let sqlx_err = match err {
        DbError::Unavailable { .. } | DbError::Connect(_) => return Failed::Server,
        DbError::Database(sqlx::Error::PoolTimedOut) if pool.is_down() => return Failed::Server,
        DbError::Database(sqlx::Error::PoolTimedOut) => return Failed::Busy,
        DbError::Database(err) => err,
        _ => return Failed::Request,
    };
    if is_connection_lost(sqlx_err) {
        return Failed::Server;
    }
    let code = sqlx_err
        .as_database_error()
        .and_then(|db| db.code())
        .unwrap_or_default();
    match code.as_ref() {
        // "cannot set transaction read-write mode during recovery"; read_only_sql_transaction.
        "0A000" | "25006" => Failed::NotPrimary,
        code if code.starts_with("28") || REFUSING.contains(&code) => Failed::Server,
        _ => Failed::Request,
    }
}
