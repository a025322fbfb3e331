//! Installs the release check every tenant transaction's `COMMIT` calls
//! (`policies/release_check.sql`), whatever the tenant context, and lets the runtime role
//! call it.

use sqlx::{AssertSqlSafe, PgConnection};

use super::MigrateError;
use crate::db::RELEASE_CHECK_SQL;
use crate::policy::Ident;

/// Creates or replaces `rls_tenancy.release_check` (owned by the deploy role running this)
/// and grants `runtime` `USAGE` on its schema and `EXECUTE` on it. Idempotent; a database
/// migrated before the function existed gets it on its next run.
pub(super) async fn install(conn: &mut PgConnection, runtime: &Ident) -> Result<(), MigrateError> {
    sqlx::raw_sql(RELEASE_CHECK_SQL).execute(&mut *conn).await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "GRANT USAGE ON SCHEMA rls_tenancy TO {runtime};
         GRANT EXECUTE ON FUNCTION rls_tenancy.release_check(text, text, text[], text[]) TO {runtime}"
    )))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
