//! Materialized views the role can read: row-level security never applies to one, so it hands
//! every reader whatever rows its owner saw at the last `REFRESH`, every tenant's included.
//!
//! A materialized view is refused when it reads, directly or through views, any table that is
//! not a declared global table (`[[global_table]]`): a tenant table, the registry, or a table
//! the guard cannot vouch for. One over declared global tables only (or over no table at all)
//! passes. Dependencies come from the catalog (`pg_depend` of each view's rewrite rule), in one
//! recursive query over every materialized view the role can read.

use sqlx::PgConnection;

use super::Ctx;
use super::Result;
use super::catalog::with_closure;
use super::finding::{Finding, RuleId, quote_qualified, revoke_from, sql_comment};

#[derive(sqlx::FromRow)]
struct Readable {
    schema: String,
    name: String,
    owner: String,
    /// The roles (`None` for PUBLIC) the inspected role reaches that hold a grant on it.
    grantees: Vec<Option<String>>,
    /// The tables it reads that are not declared global tables, `schema.name`.
    sources: Vec<String>,
}

pub(super) async fn check(conn: &mut PgConnection, ctx: &Ctx<'_>) -> Result<Vec<Finding>> {
    let rows: Vec<Readable> = sqlx::query_as(with_closure!(
        ",
        globals AS (
            SELECT c.oid FROM pg_catalog.pg_class c
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $2 AND c.relname::text = ANY ($3::text[])
        ),
        matviews AS (
            SELECT c.oid, s.nspname, c.relname, c.relowner, c.relacl
              FROM pg_catalog.pg_class c
              JOIN user_schemas s ON s.oid = c.relnamespace
             WHERE c.relkind = 'm' AND NOT (SELECT yes FROM sees_all)
               AND c.relowner NOT IN (SELECT role FROM roles)
               AND EXISTS (SELECT 1 FROM roles r
                            WHERE has_any_column_privilege(r.role, c.oid, 'SELECT'))
        ),
        -- What each one reads, through views at any depth.
        reads (matview, rel) AS (
            SELECT m.oid, d.refobjid
              FROM matviews m
              JOIN pg_catalog.pg_rewrite w ON w.ev_class = m.oid
              JOIN pg_catalog.pg_depend d
                ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = w.oid
               AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> m.oid
            UNION
            SELECT r.matview, d.refobjid
              FROM reads r
              JOIN pg_catalog.pg_class v ON v.oid = r.rel AND v.relkind = 'v'
              JOIN pg_catalog.pg_rewrite w ON w.ev_class = v.oid
              JOIN pg_catalog.pg_depend d
                ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = w.oid
               AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid <> v.oid
        )
        SELECT m.nspname::text AS schema, m.relname::text AS name, o.rolname::text AS owner,
               ARRAY(SELECT DISTINCT g.rolname::text
                       FROM aclexplode(m.relacl) a
                       LEFT JOIN pg_catalog.pg_roles g ON g.oid = a.grantee
                      WHERE a.grantee = 0 OR a.grantee IN (SELECT role FROM roles)) AS grantees,
               ARRAY(SELECT DISTINCT n.nspname || '.' || c.relname
                       FROM reads r
                       JOIN pg_catalog.pg_class c ON c.oid = r.rel
                       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                      WHERE r.matview = m.oid AND c.relkind IN ('r', 'p', 'f', 'm')
                        AND c.oid NOT IN (SELECT oid FROM globals)
                      ORDER BY 1) AS sources
          FROM matviews m
          JOIN pg_catalog.pg_roles o ON o.oid = m.relowner
         ORDER BY 1, 2"
    ))
    .bind(ctx.role_param())
    .bind(ctx.schema())
    .bind(ctx.global_table_names())
    .fetch_all(&mut *conn)
    .await?;
    let role = ctx.role();
    Ok(rows
        .iter()
        .filter(|row| !row.sources.is_empty())
        .map(|row| {
            let name = format!("{}.{}", row.schema, row.name);
            Finding::new(
                RuleId::MaterializedViewReadable,
                format!("materialized view {name}"),
                format!(
                    "role {role} can read materialized view {name}, which reads {}: row-level security does not apply to a materialized view, so it shows every reader the rows its owner {} saw at the last refresh, every tenant's included",
                    row.sources.join(", "),
                    row.owner
                ),
                format!(
                    "REVOKE SELECT ON TABLE {} FROM {}; {}",
                    quote_qualified(&row.schema, &row.name),
                    revoke_from(&row.grantees, role),
                    sql_comment("serve the data through a security_invoker view, or a tenant table the application refreshes per tenant"),
                ),
            )
        })
        .collect())
}
