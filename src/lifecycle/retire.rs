//! [`retire`]: a tenant database that no registry row names any more (a moved tenant's old
//! copy, a dropped tenant's database) closed to the runtime role and dropped, waiting a
//! bounded time for the sessions the deploy role may not end.

use std::time::{Duration, Instant};

use sqlx::AssertSqlSafe;

use super::{LifecycleError, Result, drop_tenant_database};
use crate::connect::{self, Server};
use crate::placement::DatabaseName;
use crate::policy::Ident;

/// How long processes get to hear the registry's notice before the database is dropped.
const NOTICE_GRACE: Duration = Duration::from_secs(1);

/// How long the database's remaining sessions get to close (a tenant pool closes idle
/// connections after its idle timeout, 60 s by default) when the deploy role may not end them.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(120);

/// How often a drop refused for the database's sessions is tried again.
const DRAIN_POLL: Duration = Duration::from_millis(500);

/// After [`NOTICE_GRACE`] (processes hear the registry's notice and stop routing to
/// `database`; one that has not yet still reads it, and may open a connection for that),
/// revokes `runtime_role`'s `CONNECT` on `database` on `server` and drops it, ending the
/// sessions still on it. A deploy role that may not end other roles'
/// sessions (it needs `pg_signal_backend`, or membership in the runtime role) is refused
/// while any is left (`42501`): the drop is tried again until the processes' pools have
/// closed their idle connections (no new ones can open), for at most [`DRAIN_TIMEOUT`].
/// Call it once the registry no longer names the database, so that processes stop using it.
///
/// # Errors
/// The connection's, the `REVOKE`'s or the last `DROP DATABASE`'s error.
pub(super) async fn retire(
    server: &Server,
    database: &DatabaseName,
    runtime_role: &Ident,
) -> Result<()> {
    tokio::time::sleep(NOTICE_GRACE).await;
    let mut admin = connect::connect(&server.url().with_database("postgres")).await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "REVOKE CONNECT ON DATABASE {database} FROM {runtime_role}"
    )))
    .execute(&mut admin)
    .await?;
    sqlx::Connection::close(admin).await?;
    let deadline = Instant::now() + DRAIN_TIMEOUT;
    loop {
        match drop_tenant_database(server, database).await {
            Ok(()) => break,
            Err(LifecycleError::Database(err))
                if Instant::now() < deadline
                    && err.as_database_error().and_then(|e| e.code()).as_deref()
                        == Some("42501") =>
            {
                tracing::debug!(
                    "sessions of other roles remain on the database; waiting for them to close"
                );
                tokio::time::sleep(DRAIN_POLL).await;
            }
            Err(err) => return Err(err),
        }
    }
    tracing::info!(
        server = server.name().as_str(),
        database = database.as_str(),
        "dropped the tenant database"
    );
    Ok(())
}
