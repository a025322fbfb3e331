//! Installs the release check every tenant transaction's `COMMIT` calls
//! (`policies/release_check.sql`, and the settings functions generated from the watched
//! settings), whatever the tenant context, and lets the runtime role call it.

use sqlx::{AssertSqlSafe, PgConnection};

use super::MigrateError;
use crate::db::{RELEASE_CHECK_SQL, settings_functions};
use crate::policy::Ident;

/// Creates or replaces `rls_tenancy.release_check` and the two settings functions it calls
/// (owned by the deploy role running this) and grants `runtime` `USAGE` on their schema and
/// `EXECUTE` on them (the pool also reads a clean connection's settings with
/// `rls_tenancy.release_settings` when it opens). Idempotent; a database migrated before
/// the function existed, or with an earlier version of it, gets it on its next run.
pub(super) async fn install(conn: &mut PgConnection, runtime: &Ident) -> Result<(), MigrateError> {
    sqlx::raw_sql(AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS rls_tenancy; {}",
        settings_functions()
    )))
    .execute(&mut *conn)
    .await?;
    sqlx::raw_sql(RELEASE_CHECK_SQL).execute(&mut *conn).await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "GRANT USAGE ON SCHEMA rls_tenancy TO {runtime};
         GRANT EXECUTE ON FUNCTION rls_tenancy.release_check(text, text, boolean, text),
                                   rls_tenancy.release_settings(text, boolean),
                                   rls_tenancy.release_setting_names() TO {runtime}"
    )))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
