//! Triggers on tenant tables that send notifications: `LISTEN` needs no privilege at all, so
//! any session of any role on the database hears every `NOTIFY` and `pg_notify` payload, and a
//! trigger that sends row data broadcasts each tenant's writes to every other tenant.
//!
//! Found from the trigger function's text (`NOTIFY`, `pg_notify`; a trigger function is never
//! `LANGUAGE sql`, so its text is all there is). A notification sent by a function the trigger
//! function calls, or by a statement built at run time, is not seen. Disabled triggers are
//! left alone: they do not fire.

use sqlx::PgConnection;

use super::Ctx;
use super::catalog::{tenant_tables, with_closure};
use super::finding::{Finding, RuleId, quote_ident, quote_qualified, sql_comment};
use crate::error::Result;

#[derive(sqlx::FromRow)]
struct Notifying {
    schema: String,
    table_name: String,
    trigger: String,
    /// The trigger function, `schema.name`.
    function: String,
}

pub(super) async fn check(conn: &mut PgConnection, ctx: &Ctx<'_>) -> Result<Vec<Finding>> {
    let (names, columns, tenant_columns, registry) = ctx.tenant_table_params();
    let rows: Vec<Notifying> = sqlx::query_as(with_closure!(
        tenant_tables!(),
        r"SELECT t.schema, t.name AS table_name, tg.tgname::text AS trigger,
                 n.nspname || '.' || p.proname AS function
            FROM tenant_tables t
            JOIN pg_catalog.pg_trigger tg ON tg.tgrelid = t.oid
                 AND NOT tg.tgisinternal AND tg.tgenabled <> 'D'
            JOIN pg_catalog.pg_proc p ON p.oid = tg.tgfoid
            JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
           WHERE p.prosrc ~* '\m(pg_notify|notify)\M'
           ORDER BY 1, 2, 3"
    ))
    .bind(ctx.role_param())
    .bind(ctx.schema())
    .bind(&names)
    .bind(&columns)
    .bind(&tenant_columns)
    .bind(&registry)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let table = format!("{}.{}", row.schema, row.table_name);
            Finding::new(
                RuleId::TriggerNotifies,
                format!("trigger {} on table {table}", row.trigger),
                format!(
                    "trigger {} on tenant table {table} runs {}, which sends notifications: any session may LISTEN without a privilege, so every tenant hears what it sends about another tenant's rows",
                    row.trigger, row.function
                ),
                format!(
                    "DROP TRIGGER {} ON {}; {}",
                    quote_ident(&row.trigger),
                    quote_qualified(&row.schema, &row.table_name),
                    sql_comment("have the application notify after COMMIT, through a channel only it listens on"),
                ),
            )
        })
        .collect())
}
