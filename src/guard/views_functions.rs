//! Code that runs with someone else's rights: views that are not `security_invoker` and
//! `SECURITY DEFINER` functions the role can reach, and materialized views it can read.
//!
//! A view reads its tables with its owner's rights unless it is `security_invoker`; when the
//! owner is a superuser or owns the tables without FORCE, no policy applies. Objects the role
//! owns itself run with its own rights and are left to the ownership rules.

use sqlx::PgConnection;

use super::Ctx;
use super::Result;
use super::catalog::with_closure;
use super::finding::{Finding, RuleId, quote_qualified};

#[derive(sqlx::FromRow)]
struct Reachable {
    /// `view`, `materialized view` or `function`.
    kind: String,
    schema: String,
    name: String,
    /// Identity arguments, for functions.
    args: Option<String>,
    owner: String,
}

pub(super) async fn check(conn: &mut PgConnection, ctx: &Ctx<'_>) -> Result<Vec<Finding>> {
    let rows: Vec<Reachable> = sqlx::query_as(with_closure!(
        "SELECT CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END AS kind,
                s.nspname::text AS schema, c.relname::text AS name, NULL::text AS args,
                o.rolname::text AS owner
           FROM pg_catalog.pg_class c
           JOIN user_schemas s ON s.oid = c.relnamespace
           JOIN pg_catalog.pg_roles o ON o.oid = c.relowner
          WHERE c.relkind IN ('v', 'm')
            AND c.relowner NOT IN (SELECT role FROM roles)
            AND NOT (c.relkind = 'v' AND coalesce(
                    (SELECT option_value::boolean
                       FROM pg_catalog.pg_options_to_table(c.reloptions)
                      WHERE option_name = 'security_invoker'), false))
            AND EXISTS (SELECT 1 FROM roles r
                         WHERE has_any_column_privilege(r.role, c.oid, 'SELECT'))
         UNION ALL
         SELECT 'function', s.nspname::text, p.proname::text,
                pg_catalog.pg_get_function_identity_arguments(p.oid), o.rolname::text
           FROM pg_catalog.pg_proc p
           JOIN user_schemas s ON s.oid = p.pronamespace
           JOIN pg_catalog.pg_roles o ON o.oid = p.proowner
          WHERE p.prosecdef
            AND p.proowner NOT IN (SELECT role FROM roles)
            AND EXISTS (SELECT 1 FROM roles r
                         WHERE has_function_privilege(r.role, p.oid, 'EXECUTE'))
          ORDER BY 1, 2, 3, 4"
    ))
    .bind(ctx.role_param())
    .fetch_all(&mut *conn)
    .await?;
    let role = ctx.role();
    Ok(rows
        .iter()
        .filter(|row| row.kind != "function" || !ctx.options.allows_security_definer(&row.schema, &row.name))
        .map(|row| {
            let qualified = quote_qualified(&row.schema, &row.name);
            let name = format!("{}.{}", row.schema, row.name);
            match row.kind.as_str() {
                "view" => Finding::new(
                    RuleId::ViewNotSecurityInvoker,
                    format!("view {name}"),
                    format!(
                        "role {role} can read view {name}, which is not security_invoker: it reads its tables with the rights of its owner {}, past policies that do not apply to that owner",
                        row.owner
                    ),
                    format!("ALTER VIEW {qualified} SET (security_invoker = true);"),
                ),
                "materialized view" => Finding::new(
                    RuleId::MaterializedViewReadable,
                    format!("materialized view {name}"),
                    format!(
                        "role {role} can read materialized view {name}: it holds whatever rows its owner {} saw when it was refreshed, with no row-level security",
                        row.owner
                    ),
                    format!("REVOKE SELECT ON {qualified} FROM PUBLIC, {};", super::finding::quote_ident(role)),
                ),
                _ => {
                    let args = row.args.as_deref().unwrap_or_default();
                    Finding::new(
                        RuleId::SecurityDefinerFunction,
                        format!("function {name}({args})"),
                        format!(
                            "role {role} can execute SECURITY DEFINER function {name}({args}), which runs as {}: allow it explicitly (--allow-security-definer {name}) once it is reviewed",
                            row.owner
                        ),
                        format!(
                            "REVOKE EXECUTE ON FUNCTION {qualified}({args}) FROM PUBLIC, {};",
                            super::finding::quote_ident(role)
                        ),
                    )
                }
            }
        })
        .collect())
}
