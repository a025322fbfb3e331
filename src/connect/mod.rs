//! Connection strings that never print their password ([`DatabaseUrl`], [`RedactedUrl`]),
//! the named servers of the database strategy ([`ServerSet`]), and opening a single
//! connection with an error that says where it failed.

mod error;
mod hosts;
mod servers;
mod url;

use sqlx::{Connection, PgConnection};

pub use error::ConnectError;
pub use hosts::DatabaseHosts;
pub use servers::{Server, ServerName, ServerSet};
pub use url::{DatabaseUrl, RedactedUrl};

/// Opens one connection to `url`.
///
/// # Errors
/// [`ConnectError::InvalidUrl`] when sqlx rejects an option in the URL,
/// [`ConnectError::Unreachable`] when the server cannot be reached or refuses the login.
///
/// ```no_run
/// # async fn demo() -> Result<(), rls_tenancy::ConnectError> {
/// let conn = rls_tenancy::connect(&"postgres://app_deploy@127.0.0.1/app".parse()?).await?;
/// # Ok(()) }
/// ```
pub async fn connect(url: &DatabaseUrl) -> Result<PgConnection, ConnectError> {
    PgConnection::connect_with(&url.connect_options()?)
        .await
        .map_err(|source| ConnectError::Unreachable {
            url: url.redacted(),
            source,
        })
}
