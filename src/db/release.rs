//! The release check: what a tenant transaction may have left on its server connection.
//!
//! Every tenant transaction ends with one simple-query message:
//!
//! ```text
//! COMMIT; SELECT rls_tenancy.release_check(...); BEGIN
//! ```
//!
//! The check runs right after `COMMIT` (or `ROLLBACK`), in the same message, so it reaches
//! the same server connection even behind a transaction-mode pooler (a pooler forwards one
//! message to one server connection, and this message ends inside a transaction, so the
//! pooler keeps that server connection for this client until the trailing `BEGIN` is rolled
//! back). It cannot run *before* `COMMIT`: inside the transaction a `LISTEN` is still pending
//! (`pg_listening_channels()` shows it only once committed) and a session `SET` looks exactly
//! like a `SET LOCAL`; only once the transaction is over does what remains outlive it.
//!
//! It releases the session's advisory locks (`pg_advisory_unlock_all()`, session-level ones
//! only: a transaction's own ended with it), so a lock a tenant took for its session is held
//! no longer than its transaction, as if the connection had been closed, and is not reported:
//! the only witness of one, `pg_locks`, copies the whole server's lock table, every backend's,
//! and cost most of the check. It looks for everything else that outlives a transaction:
//! held cursors (`pg_cursors`), `LISTEN` channels, session-level settings, statements prepared
//! with SQL `PREPARE` (`pg_prepared_statements.from_sql`; the driver's own statements are
//! prepared through the protocol and are not counted), temporary tables and functions (only
//! looked for once the session has a temporary schema, `pg_my_temp_schema() <> 0`), and the
//! tenant variable.
//!
//! The check itself is `rls_tenancy.release_check`, a PL/pgSQL function rls-migrate installs
//! (`policies/release_check.sql`): PL/pgSQL keeps its plans for the session, so the check is
//! planned once per connection instead of in every `COMMIT` (as SQL text in the message it
//! cost about 0.5 ms of server CPU a transaction, most of it parsing and planning). The pool
//! refuses to open on a database without it, or with another version of it
//! ([`check_installed`]).
//!
//! Settings ([`WATCHED_SETTINGS`]: what changes which rows a later transaction reaches, what
//! it may write, how long it may run, how its text is parsed and printed) are read in one
//! expression, `rls_tenancy.release_settings(search_path, pooler)`, an SQL function rls-migrate
//! generates from that list ([`settings_functions`]) and PL/pgSQL inlines: the values as one
//! array text, compared with the same text read on a clean connection when the pool opens
//! ([`clean_settings`]) and passed in the check. `current_setting()` costs a microsecond,
//! where listing `pg_settings` builds every parameter's row (~1.5 ms); one text compared
//! costs less than a setting compared at a time. Only when the texts differ does the check
//! name the settings that do. Placeholder settings (`app.anything`) were never listed by
//! `pg_settings`; the tenant variable is checked by name.

use std::sync::Arc;

use sqlx::{AssertSqlSafe, FromRow, PgConnection, PgPool, Row};

use super::DbError;
use crate::policy::{TenantVariable, quote_literal};

/// Settings a transaction-mode pooler itself sets at session level on its server
/// connections, to match each client's startup parameters (pgbouncer's tracked
/// parameters): behind a pooler they are the pooler's, not a transaction's.
#[cfg(feature = "migrate")]
const POOLER_SETTINGS: [&str; 5] = [
    "application_name",
    "client_encoding",
    "DateStyle",
    "TimeZone",
    "standard_conforming_strings",
];

/// The settings the check compares with a clean connection's: which rows a later
/// transaction reaches (`search_path`, `role`, `row_security`), what and how it writes
/// (`default_transaction_*`, `synchronous_commit`, `session_replication_role`), how long it
/// may run (the timeouts), how its SQL is parsed and its values printed (quoting, encodings,
/// date and number formats, `transform_null_equals`), and the resources it may take. Planner
/// cost settings are left out: they change a plan, not a result. rls-migrate installs the
/// functions that read them ([`settings_functions`]).
#[cfg(feature = "migrate")]
const WATCHED_SETTINGS: [&str; 37] = [
    "search_path",
    "role",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "default_transaction_read_only",
    "default_transaction_isolation",
    "default_transaction_deferrable",
    "row_security",
    "session_replication_role",
    "synchronous_commit",
    "transform_null_equals",
    "standard_conforming_strings",
    "backslash_quote",
    "escape_string_warning",
    "bytea_output",
    "client_encoding",
    "DateStyle",
    "IntervalStyle",
    "TimeZone",
    "extra_float_digits",
    "xmloption",
    "array_nulls",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "default_text_search_config",
    "check_function_bodies",
    "default_tablespace",
    "temp_tablespaces",
    "temp_file_limit",
    "work_mem",
    "maintenance_work_mem",
    "client_min_messages",
    "application_name",
    "plan_cache_mode",
];

/// The watched settings' values on a clean connection of `pool` (after `RESET ALL`, in a
/// transaction rolled back, so the connection is left as it was), as the one text
/// `rls_tenancy.release_settings` reads (the pooler's own settings left out behind a
/// pooler). What [`release_check`] compares with.
pub(crate) async fn clean_settings(pool: &PgPool, pooler: bool) -> sqlx::Result<String> {
    let mut tx = pool.begin().await?;
    let row = sqlx::raw_sql(AssertSqlSafe(format!(
        "RESET ALL; SELECT rls_tenancy.release_settings(pg_catalog.current_setting('search_path'), {pooler})"
    )))
    .fetch_one(&mut *tx)
    .await?;
    tx.rollback().await?;
    row.try_get(0)
}

/// The SQL of the two functions the release check reads the settings with, generated from
/// [`WATCHED_SETTINGS`]: `rls_tenancy.release_settings(session_search_path, pooler)`, their
/// values as the text of one array (`search_path` is the caller's, which the check's pinned
/// `search_path` hides; the pooler's own settings are `NULL` behind a pooler), one
/// expression that PL/pgSQL inlines; and `rls_tenancy.release_setting_names()`, their names
/// in the same order. `EXECUTE` for the deploy role only until rls-migrate grants it.
#[cfg(feature = "migrate")]
pub(crate) fn settings_functions() -> String {
    let values: Vec<String> = WATCHED_SETTINGS
        .iter()
        .map(|&name| {
            let read = format!("pg_catalog.current_setting({})", quote_literal(name));
            match name {
                "search_path" => "session_search_path".to_owned(),
                _ if POOLER_SETTINGS.contains(&name) => {
                    format!("CASE WHEN NOT pooler THEN {read} END")
                }
                _ => read,
            }
        })
        .collect();
    let names: Vec<String> = WATCHED_SETTINGS.iter().map(|n| quote_literal(n)).collect();
    format!(
        "CREATE OR REPLACE FUNCTION rls_tenancy.release_settings(session_search_path text, pooler boolean)
             RETURNS text LANGUAGE sql STABLE
             RETURN ARRAY[{}]::pg_catalog.text;
         REVOKE ALL ON FUNCTION rls_tenancy.release_settings(text, boolean) FROM PUBLIC;
         CREATE OR REPLACE FUNCTION rls_tenancy.release_setting_names()
             RETURNS text[] LANGUAGE sql IMMUTABLE
             RETURN ARRAY[{}]::pg_catalog.text[];
         REVOKE ALL ON FUNCTION rls_tenancy.release_setting_names() FROM PUBLIC;",
        values.join(", "),
        names.join(", ")
    )
}

/// The release check function with its version, compiled in from
/// `policies/release_check.sql`, which rls-migrate installs. Idempotent.
#[cfg(feature = "migrate")]
pub(crate) const RELEASE_CHECK_SQL: &str = include_str!("../../policies/release_check.sql");

/// The comment `policies/release_check.sql` puts on the function: the version this toolkit
/// calls.
const RELEASE_CHECK_VERSION: &str = "rls-tenancy release check 2";

/// What the pool's role finds of `rls_tenancy.release_check`.
#[derive(sqlx::FromRow)]
struct Installed {
    version: Option<String>,
    usable: bool,
}

/// Checks that the database has the release check of this toolkit's version and that the
/// connection's role may call it, before a pool hands out a transaction whose `COMMIT` would
/// fail on it. Read from the catalogs, which every role may read, in one simple-query
/// message: safe behind a transaction-mode pooler outside a transaction (an extended-protocol
/// statement's parse and execution are two messages, which such a pooler may send to two
/// server connections: `unnamed prepared statement does not exist`).
///
/// # Errors
/// [`DbError::ReleaseCheck`] naming what is missing and telling to run rls-migrate; the
/// database's error.
pub(crate) async fn check_installed(conn: &mut PgConnection) -> Result<(), DbError> {
    let installed = sqlx::raw_sql(
        "SELECT pg_catalog.obj_description(p.oid, 'pg_proc') AS version,
                pg_catalog.has_schema_privilege(n.oid, 'USAGE')
                AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE')
                AND coalesce(pg_catalog.has_function_privilege(
                    pg_catalog.to_regprocedure('rls_tenancy.release_settings(text,boolean)'), 'EXECUTE'), false)
                AND coalesce(pg_catalog.has_function_privilege(
                    pg_catalog.to_regprocedure('rls_tenancy.release_setting_names()'), 'EXECUTE'), false) AS usable
           FROM pg_catalog.pg_proc p
           JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = 'rls_tenancy' AND p.proname = 'release_check'
            AND p.oid::pg_catalog.regprocedure::pg_catalog.text
                = 'rls_tenancy.release_check(text,text,boolean,text)'",
    )
    .fetch_optional(conn)
    .await?
    .map(|row| Installed::from_row(&row))
    .transpose()?;
    let reason = match installed {
        None => "the database has no release check (rls_tenancy.release_check, installed by rls-migrate since the release check became a function): run rls-migrate".to_owned(),
        Some(Installed { version, .. }) if version.as_deref() != Some(RELEASE_CHECK_VERSION) => format!(
            "the database's release check is {}, this toolkit needs {RELEASE_CHECK_VERSION:?}: run rls-migrate of the same version as the application",
            version.map_or_else(|| "of an unknown version".to_owned(), |v| format!("{v:?}"))
        ),
        Some(Installed { usable: false, .. }) => "the pool's role may not call rls_tenancy.release_check or the settings functions it calls: run rls-migrate with --runtime-role naming this role".to_owned(),
        Some(_) => return Ok(()),
    };
    Err(DbError::ReleaseCheck { reason })
}

/// The release check's `SELECT`: one text naming what the connection still carries after
/// its transaction ended, `''` when it is clean. Names only, never values (a setting may
/// hold a secret). The variable's name is a validated setting name, and the clean values'
/// text is quoted as a literal; every name in the statement is schema-qualified, so a
/// `search_path` a transaction left behind cannot redirect it.
pub(crate) fn release_check(variable: &TenantVariable, pooler: bool, clean: &str) -> Arc<str> {
    format!(
        "SELECT rls_tenancy.release_check({}, pg_catalog.current_setting('search_path'), {pooler}, {})",
        quote_literal(variable.as_str()),
        quote_literal(clean),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_names_the_variable_and_passes_the_clean_values_as_one_literal() {
        let variable = TenantVariable::default();
        assert_eq!(
            &*release_check(&variable, true, r#"{"\"$user\", public",it's}"#),
            r#"SELECT rls_tenancy.release_check('app.tenant_id', pg_catalog.current_setting('search_path'), true, '{"\"$user\", public",it''s}')"#
        );
    }

    #[cfg(feature = "migrate")]
    #[test]
    fn the_settings_functions_read_and_name_every_watched_setting_in_order() {
        let sql = settings_functions();
        assert!(sql.contains(
            "RETURN ARRAY[session_search_path, pg_catalog.current_setting('role'), pg_catalog.current_setting('statement_timeout'), "
        ));
        assert!(sql.contains(
            "CASE WHEN NOT pooler THEN pg_catalog.current_setting('application_name') END, pg_catalog.current_setting('plan_cache_mode')]"
        ));
        assert!(sql.contains("RETURN ARRAY['search_path', 'role', 'statement_timeout', "));
        assert_eq!(
            sql.matches("pg_catalog.current_setting(").count(),
            WATCHED_SETTINGS.len() - 1
        );
    }

    #[cfg(feature = "migrate")]
    #[test]
    fn the_installed_function_carries_the_version_the_pool_asks_for() {
        assert!(RELEASE_CHECK_SQL.contains(&format!(
            "COMMENT ON FUNCTION rls_tenancy.release_check(text, text, boolean, text) IS '{RELEASE_CHECK_VERSION}';"
        )));
    }
}
