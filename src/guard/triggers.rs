//! Triggers on tenant tables: what they run fires on every tenant's writes.
//!
//! - `trigger-notifies`: the trigger function sends notifications. `LISTEN` needs no
//!   privilege at all, so any session of any role on the database hears every `NOTIFY` and
//!   `pg_notify` payload, and a trigger that sends row data broadcasts each tenant's writes to
//!   every other tenant. Found from the function's text (a trigger function is never
//!   `LANGUAGE sql`, so its text is all there is); a notification sent by a function it calls,
//!   or by a statement built at run time, is not seen.
//! - `security-definer-function`: the trigger function is `SECURITY DEFINER`, so it runs as
//!   its owner (often the tables' owner, past every policy) on each tenant's writes. PostgreSQL
//!   does not check `EXECUTE` when a trigger fires, so revoking it does not help; the views and
//!   functions family reports the ones the role can also call directly, this one the others.
//!   Allowlisting the function (`--allow-security-definer`) accepts it here too.
//!
//! Disabled triggers are left alone: they do not fire.

use sqlx::PgConnection;

use super::Ctx;
use super::Result;
use super::catalog::{tenant_tables, with_closure};
use super::finding::{Finding, RuleId, quote_ident, quote_qualified, sql_comment};

#[derive(sqlx::FromRow)]
struct Trigger {
    /// `notify` or `security definer`.
    kind: String,
    schema: String,
    table_name: String,
    trigger: String,
    function_schema: String,
    function_name: String,
    owner: String,
}

pub(super) async fn check(conn: &mut PgConnection, ctx: &Ctx<'_>) -> Result<Vec<Finding>> {
    let rows: Vec<Trigger> = ctx
        .tenant_tables_query(with_closure!(
            tenant_tables!(),
            r"SELECT k.kind, t.schema, t.name AS table_name, tg.tgname::text AS trigger,
                 n.nspname::text AS function_schema, p.proname::text AS function_name,
                 o.rolname::text AS owner
            FROM tenant_tables t
            JOIN pg_catalog.pg_trigger tg ON tg.tgrelid = t.oid
                 AND NOT tg.tgisinternal AND tg.tgenabled <> 'D'
            JOIN pg_catalog.pg_proc p ON p.oid = tg.tgfoid
            JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
            JOIN pg_catalog.pg_roles o ON o.oid = p.proowner
           CROSS JOIN LATERAL (
                 VALUES ('notify', p.prosrc ~* '\m(pg_notify|notify)\M'),
                        ('security definer',
                         p.prosecdef AND p.proowner NOT IN (SELECT role FROM roles)
                         AND NOT EXISTS (SELECT 1 FROM roles r
                                          WHERE has_function_privilege(r.role, p.oid, 'EXECUTE')))
           ) AS k(kind, hit)
           WHERE k.hit
           ORDER BY 1, 2, 3, 4"
        ))
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .iter()
        .filter(|row| {
            row.kind == "notify"
                || !ctx
                    .options
                    .allows_security_definer(&row.function_schema, &row.function_name)
        })
        .map(|row| {
            let table = format!("{}.{}", row.schema, row.table_name);
            let function = format!("{}.{}", row.function_schema, row.function_name);
            let drop_trigger = format!(
                "DROP TRIGGER {} ON {};",
                quote_ident(&row.trigger),
                quote_qualified(&row.schema, &row.table_name)
            );
            if row.kind == "notify" {
                Finding::new(
                    RuleId::TriggerNotifies,
                    format!("trigger {} on table {table}", row.trigger),
                    format!(
                        "trigger {} on tenant table {table} runs {function}, which sends notifications: any session may LISTEN without a privilege, so every tenant hears what it sends about another tenant's rows",
                        row.trigger
                    ),
                    format!(
                        "{drop_trigger} {}",
                        sql_comment("have the application notify after COMMIT, through a channel only it listens on")
                    ),
                )
            } else {
                Finding::new(
                    RuleId::SecurityDefinerFunction,
                    format!("trigger {} on table {table}", row.trigger),
                    format!(
                        "trigger {} on tenant table {table} runs SECURITY DEFINER function {function} as {} on every tenant's writes (a trigger needs no EXECUTE): allow it explicitly (--allow-security-definer {function}) once it is reviewed",
                        row.trigger, row.owner
                    ),
                    format!(
                        "ALTER FUNCTION {}() SECURITY INVOKER;",
                        quote_qualified(&row.function_schema, &row.function_name)
                    ),
                )
            }
        })
        .collect())
}
