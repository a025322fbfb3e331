//! Code that runs with someone else's rights or the planner's trust: views that are not
//! `security_invoker`, `SECURITY DEFINER` functions, and `LEAKPROOF` functions the role can
//! reach.
//!
//! A view reads its tables with its owner's rights unless it is `security_invoker`; when the
//! owner is a superuser or owns the tables without FORCE, no policy applies. Objects the role
//! owns itself run with its own rights and are left to the ownership rules.
//!
//! The toolkit's own signed tenant context (`rls_tenancy.enter` and `rls_tenancy.tenant`) is
//! `SECURITY DEFINER` by design: those two functions pass when the owner of the guarded schema
//! (the deploy role) owns them and their schema, their `search_path` is pinned and they are not
//! `LEAKPROOF`. A function of the same name anywhere else, or owned by anyone else, is refused.
//!
//! The planner may evaluate a `LEAKPROOF` function on rows *before* the policy filters them
//! (that is what the mark promises it may do safely). A function that raises an error with its
//! argument, or logs it, then hands other tenants' values to whoever reads the error. Only a
//! superuser can mark a function `LEAKPROOF`; those in `pg_catalog` are PostgreSQL's own and
//! reviewed, every other one is refused, in any schema, whoever owns it.

use sqlx::PgConnection;

use super::Ctx;
use super::Result;
use super::catalog::with_closure;
use super::finding::{Finding, RuleId, quote_qualified, revoke_from};

#[derive(sqlx::FromRow)]
struct Reachable {
    /// `view`, `security definer` or `leakproof`.
    kind: String,
    schema: String,
    name: String,
    /// Identity arguments, for functions.
    args: Option<String>,
    owner: String,
    /// The roles (`None` for PUBLIC) the inspected role reaches that hold the grant.
    grantees: Vec<Option<String>>,
}

pub(super) async fn check(conn: &mut PgConnection, ctx: &Ctx<'_>) -> Result<Vec<Finding>> {
    let rows: Vec<Reachable> = sqlx::query_as(with_closure!(
        "SELECT 'view' AS kind, s.nspname::text AS schema, c.relname::text AS name,
                NULL::text AS args, o.rolname::text AS owner,
                ARRAY(SELECT DISTINCT g.rolname::text
                        FROM aclexplode(c.relacl) a
                        LEFT JOIN pg_catalog.pg_roles g ON g.oid = a.grantee
                       WHERE a.grantee = 0 OR a.grantee IN (SELECT role FROM roles)) AS grantees
           FROM pg_catalog.pg_class c
           JOIN user_schemas s ON s.oid = c.relnamespace
           JOIN pg_catalog.pg_roles o ON o.oid = c.relowner
          WHERE c.relkind = 'v'
            AND c.relowner NOT IN (SELECT role FROM roles)
            AND NOT coalesce(
                    (SELECT option_value::boolean
                       FROM pg_catalog.pg_options_to_table(c.reloptions)
                      WHERE option_name = 'security_invoker'), false)
            AND EXISTS (SELECT 1 FROM roles r
                         WHERE has_any_column_privilege(r.role, c.oid, 'SELECT'))
         UNION ALL
         SELECT k.kind, s.nspname::text, p.proname::text,
                pg_catalog.pg_get_function_identity_arguments(p.oid), o.rolname::text,
                ARRAY(SELECT DISTINCT g.rolname::text
                        FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                        LEFT JOIN pg_catalog.pg_roles g ON g.oid = a.grantee
                       WHERE a.grantee = 0 OR a.grantee IN (SELECT role FROM roles))
           FROM pg_catalog.pg_proc p
           JOIN pg_catalog.pg_namespace s ON s.oid = p.pronamespace
           JOIN pg_catalog.pg_roles o ON o.oid = p.proowner
          CROSS JOIN LATERAL (
                VALUES ('security definer', p.prosecdef AND s.oid IN (SELECT oid FROM user_schemas)
                                            AND p.proowner NOT IN (SELECT role FROM roles)
                                            AND NOT coalesce(s.nspname = 'rls_tenancy'
                                                     AND p.oid::regprocedure::text IN (
                                                         'rls_tenancy.enter(text,text,text,bigint,bigint,text)',
                                                         'rls_tenancy.tenant(text)')
                                                     AND p.proowner = s.nspowner
                                                     AND s.nspowner = (SELECT d.nspowner
                                                                         FROM pg_catalog.pg_namespace d
                                                                        WHERE d.nspname = $2)
                                                     AND NOT p.proleakproof
                                                     AND p.proconfig = ARRAY['search_path=pg_catalog, pg_temp'], false)),
                       ('leakproof', p.proleakproof AND s.nspname <> 'pg_catalog')
          ) AS k(kind, hit)
          WHERE (p.prosecdef OR (p.proleakproof AND s.nspname <> 'pg_catalog'))
            AND k.hit
            AND EXISTS (SELECT 1 FROM roles r
                         WHERE has_function_privilege(r.role, p.oid, 'EXECUTE'))
          ORDER BY 1, 2, 3, 4"
    ))
    .bind(ctx.role_param())
    .bind(ctx.schema())
    .fetch_all(&mut *conn)
    .await?;
    let role = ctx.role();
    Ok(rows
        .iter()
        .filter(|row| {
            row.kind != "security definer"
                || !ctx.options.allows_security_definer(&row.schema, &row.name)
        })
        .map(|row| {
            let qualified = quote_qualified(&row.schema, &row.name);
            let name = format!("{}.{}", row.schema, row.name);
            let args = row.args.as_deref().unwrap_or_default();
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
                "leakproof" => Finding::new(
                    RuleId::LeakproofFunction,
                    format!("function {name}({args})"),
                    format!(
                        "role {role} can execute LEAKPROOF function {name}({args}): the planner may run it on every tenant's rows before the policy filters them, so an error or log line it raises with its argument shows other tenants' values"
                    ),
                    format!("ALTER FUNCTION {qualified}({args}) NOT LEAKPROOF;"),
                ),
                _ => Finding::new(
                    RuleId::SecurityDefinerFunction,
                    format!("function {name}({args})"),
                    format!(
                        "role {role} can execute SECURITY DEFINER function {name}({args}), which runs as {}: allow it explicitly (--allow-security-definer {name}) once it is reviewed",
                        row.owner
                    ),
                    format!(
                        "REVOKE EXECUTE ON FUNCTION {qualified}({args}) FROM {};",
                        revoke_from(&row.grantees, role)
                    ),
                ),
            }
        })
        .collect())
}
