//! The release check: what a tenant transaction may have left on its server connection.
//!
//! Every tenant transaction ends with one simple-query message:
//!
//! ```text
//! COMMIT; SELECT <what is left, '' when nothing>; BEGIN
//! ```
//!
//! The check runs right after `COMMIT` (or `ROLLBACK`), in the same message, so it reaches
//! the same server connection even behind a transaction-mode pooler (a pooler forwards one
//! message to one server connection, and this message ends inside a transaction, so the
//! pooler keeps that server connection for this client until the trailing `BEGIN` is rolled
//! back). It cannot run *before* `COMMIT`: inside the transaction a `LISTEN` is still pending
//! (`pg_listening_channels()` shows it only once committed), a session `SET` looks exactly
//! like a `SET LOCAL` in `pg_settings`, and a session advisory lock like a transaction one in
//! `pg_locks`; only once the transaction is over does what remains outlive it.
//!
//! It looks for everything that outlives a transaction on a connection:
//! held cursors (`pg_cursors`), `LISTEN` channels, session advisory locks (`pg_locks`),
//! session-level settings, statements prepared with SQL `PREPARE`
//! (`pg_prepared_statements.from_sql`; the driver's own statements are prepared through the
//! protocol and are not counted), temporary tables and functions (only looked for once the
//! session has a temporary schema, `pg_my_temp_schema() <> 0`), and the tenant variable.
//!
//! Settings are compared one by one ([`WATCHED_SETTINGS`]: what changes which rows a later
//! transaction reaches, what it may write, how long it may run, how its text is parsed and
//! printed) with their values on a clean connection, read once when the pool opens
//! ([`clean_settings`]): `current_setting()` costs a microsecond, where listing `pg_settings`
//! builds every parameter's row (~1.5 ms, most of what the check cost). Placeholder settings
//! (`app.anything`) were never listed by `pg_settings`; the tenant variable is checked
//! by name.

use std::sync::Arc;

use sqlx::{AssertSqlSafe, PgPool, Row};

use crate::policy::{TenantVariable, quote_literal};

/// Settings a transaction-mode pooler itself sets at session level on its server
/// connections, to match each client's startup parameters (pgbouncer's tracked
/// parameters): behind a pooler they are the pooler's, not a transaction's.
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
/// cost settings are left out: they change a plan, not a result.
pub(crate) const WATCHED_SETTINGS: [&str; 37] = [
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
/// transaction rolled back, so the connection is left as it was), leaving out the pooler's
/// own behind a pooler. What [`release_check`] compares with.
pub(crate) async fn clean_settings(
    pool: &PgPool,
    pooler: bool,
) -> sqlx::Result<Vec<(String, String)>> {
    let names: Vec<String> = WATCHED_SETTINGS
        .iter()
        .filter(|name| !(pooler && POOLER_SETTINGS.contains(name)))
        .map(|name| quote_literal(name))
        .collect();
    let mut tx = pool.begin().await?;
    let rows = sqlx::raw_sql(AssertSqlSafe(format!(
        "RESET ALL; SELECT name, current_setting(name) FROM unnest(ARRAY[{}]::text[]) AS name",
        names.join(", ")
    )))
    .fetch_all(&mut *tx)
    .await?;
    tx.rollback().await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// The release check's `SELECT`: one text naming what the connection still carries after
/// its transaction ended, `''` when it is clean. Names only, never values (a setting may
/// hold a secret). The variable's name is a validated setting name, and every name and
/// value is quoted as a literal.
pub(crate) fn release_check(variable: &TenantVariable, clean: &[(String, String)]) -> Arc<str> {
    let settings: Vec<String> = clean
        .iter()
        .map(|(name, value)| {
            let name = quote_literal(name);
            format!(
                "CASE WHEN current_setting({name}) IS DISTINCT FROM {} THEN {name} END",
                quote_literal(value)
            )
        })
        .collect();
    format!(
        "SELECT concat_ws('; ', \
(SELECT 'held cursors: ' || string_agg(quote_ident(name), ', ') FROM pg_cursors WHERE is_holdable), \
(SELECT 'LISTEN channels: ' || string_agg(quote_ident(c), ', ') FROM pg_listening_channels() AS c), \
(SELECT 'advisory locks: ' || count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' HAVING count(*) > 0), \
'session settings: ' || nullif(concat_ws(', ', {settings}), ''), \
(SELECT 'prepared statements: ' || string_agg(quote_ident(name), ', ') FROM pg_prepared_statements WHERE from_sql), \
CASE WHEN pg_my_temp_schema() <> 0 THEN concat_ws('; ', \
(SELECT 'temporary tables: ' || string_agg(quote_ident(relname), ', ') FROM pg_class WHERE relnamespace = pg_my_temp_schema()), \
(SELECT 'temporary functions: ' || string_agg(quote_ident(proname), ', ') FROM pg_proc WHERE pronamespace = pg_my_temp_schema())) END, \
CASE WHEN coalesce(current_setting({variable}, true), '') <> '' THEN 'the tenant variable' END)",
        settings = settings.join(", "),
        variable = quote_literal(variable.as_str()),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_names_the_variable_and_compares_each_setting_with_its_clean_value() {
        let variable = TenantVariable::default();
        let clean = [
            ("search_path".to_owned(), "\"$user\", public".to_owned()),
            ("lc_time".to_owned(), "it's".to_owned()),
        ];
        let check = release_check(&variable, &clean);
        assert!(check.contains("current_setting('app.tenant_id', true)"));
        assert!(check.contains(
            "CASE WHEN current_setting('search_path') IS DISTINCT FROM '\"$user\", public' THEN 'search_path' END"
        ));
        assert!(check.contains("IS DISTINCT FROM 'it''s' THEN 'lc_time' END"));
        assert!(!check.contains("pg_settings"));
    }
}
