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
//! session-level settings (`pg_settings` with source `session`: `search_path`, `role`,
//! timeouts, the tenant variable set with `is_local => false` ...), statements prepared with
//! SQL `PREPARE` (`pg_prepared_statements.from_sql`; the driver's own statements are
//! prepared through the protocol and are not counted), temporary tables and functions
//! (`pg_my_temp_schema()`), and the tenant variable itself.

use std::sync::Arc;

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

/// The release check's `SELECT`: one text naming what the connection still carries after
/// its transaction ended, `''` when it is clean. Names only, never values (a setting may
/// hold a secret). The variable's name is a validated setting name, quoted as a literal.
pub(crate) fn release_check(variable: &TenantVariable, pooler: bool) -> Arc<str> {
    let pooler_settings = if pooler {
        let names: Vec<String> = POOLER_SETTINGS.iter().map(|n| quote_literal(n)).collect();
        format!(" AND name NOT IN ({})", names.join(", "))
    } else {
        String::new()
    };
    format!(
        "SELECT concat_ws('; ', \
(SELECT 'held cursors: ' || string_agg(quote_ident(name), ', ') FROM pg_cursors WHERE is_holdable), \
(SELECT 'LISTEN channels: ' || string_agg(quote_ident(c), ', ') FROM pg_listening_channels() AS c), \
(SELECT 'advisory locks: ' || count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' HAVING count(*) > 0), \
(SELECT 'session settings: ' || string_agg(name, ', ') FROM pg_settings WHERE source = 'session'{pooler_settings}), \
(SELECT 'prepared statements: ' || string_agg(quote_ident(name), ', ') FROM pg_prepared_statements WHERE from_sql), \
(SELECT 'temporary tables: ' || string_agg(quote_ident(relname), ', ') FROM pg_class WHERE relnamespace = pg_my_temp_schema()), \
(SELECT 'temporary functions: ' || string_agg(quote_ident(proname), ', ') FROM pg_proc WHERE pronamespace = pg_my_temp_schema()), \
CASE WHEN coalesce(current_setting({variable}, true), '') <> '' THEN 'the tenant variable' END)",
        variable = quote_literal(variable.as_str()),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_names_the_variable_and_leaves_pooler_settings_to_the_pooler() {
        let variable = TenantVariable::default();
        let direct = release_check(&variable, false);
        assert!(direct.contains("current_setting('app.tenant_id', true)"));
        assert!(!direct.contains("NOT IN"));
        let pooled = release_check(&variable, true);
        assert!(pooled.contains("name NOT IN ('application_name', 'client_encoding'"));
    }
}
