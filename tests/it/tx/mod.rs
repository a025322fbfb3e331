//! Tenant transactions with options (read-only, isolation level) and the retry helper for
//! serialization failures and deadlocks.

mod options;
mod release;
mod retry;

use rls_tenancy::{Error, Retryable};

/// The SQLSTATE behind an error of the toolkit, if a database error is behind it.
pub(crate) fn code(error: &Error) -> Option<String> {
    match error.database_error()? {
        sqlx::Error::Database(e) => e.code().map(|c| c.into_owned()),
        _ => None,
    }
}
