//! Ownership: an owner can disable row-level security, drop policies and grant itself
//! anything, so the role must own nothing, directly or through a role it can become.

use sqlx::PgConnection;

use super::Ctx;
use super::Result;
use super::catalog::{Membership, with_closure};
use super::finding::{Finding, RuleId, quote_ident, quote_qualified};

#[derive(sqlx::FromRow)]
struct Owned {
    /// `database`, `schema`, `table`, `view`, `materialized view`, `sequence`,
    /// `foreign table`, `function`, `procedure`, `aggregate` or `type`.
    kind: String,
    schema: Option<String>,
    name: String,
    /// Identity arguments, for routines.
    args: Option<String>,
    owner: String,
    via: Vec<String>,
    /// An owner to hand the object to: the schema's (or database's) owner when the role
    /// cannot become it.
    successor: Option<String>,
}

pub(super) async fn check(conn: &mut PgConnection, ctx: &Ctx<'_>) -> Result<Vec<Finding>> {
    let rows: Vec<Owned> = sqlx::query_as(with_closure!(
        ",
        db AS (
            SELECT d.datname, d.datdba FROM pg_catalog.pg_database d
             WHERE d.datname = current_database()
        ),
        owned (kind, schema, name, args, owner, successor) AS (
            SELECT 'database', NULL::name, db.datname, NULL::text, db.datdba, NULL::oid FROM db
            UNION ALL
            SELECT 'schema', NULL, s.nspname, NULL, s.nspowner, db.datdba FROM user_schemas s, db
            UNION ALL
            SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                                  WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                                  ELSE 'foreign table' END,
                   n.nspname, c.relname, NULL, c.relowner, n.nspowner
              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
            UNION ALL
            SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate'
                                  ELSE 'function' END,
                   n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid),
                   p.proowner, n.nspowner
              FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = $2
            UNION ALL
            SELECT 'type', n.nspname, t.typname, NULL, t.typowner, n.nspowner
              FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname = $2
               AND (t.typrelid = 0
                    OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
        )
        SELECT o.kind, o.schema::text, o.name::text, o.args, r.rolname::text AS owner,
               reach.via, s.rolname::text AS successor
          FROM owned o
          JOIN reach ON reach.role = o.owner
          JOIN pg_catalog.pg_roles r ON r.oid = o.owner
          LEFT JOIN pg_catalog.pg_roles s ON s.oid = o.successor
                                         AND s.oid NOT IN (SELECT role FROM roles)
         ORDER BY o.kind, o.schema, o.name"
    ))
    .bind(ctx.role_param())
    .bind(ctx.schema())
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.iter().map(|row| finding(ctx.role(), row)).collect())
}

fn finding(target: &str, row: &Owned) -> Finding {
    let (rule, object, sql_name) = match (row.kind.as_str(), &row.schema) {
        ("database", _) => (
            RuleId::OwnsDatabase,
            format!("database {}", row.name),
            quote_ident(&row.name),
        ),
        ("schema", _) => (
            RuleId::OwnsSchema,
            format!("schema {}", row.name),
            quote_ident(&row.name),
        ),
        (kind, schema) => {
            let schema = schema.as_deref().unwrap_or_default();
            let args = row
                .args
                .as_ref()
                .map(|a| format!("({a})"))
                .unwrap_or_default();
            (
                RuleId::OwnsObject,
                format!("{kind} {schema}.{}{args}", row.name),
                format!("{}{args}", quote_qualified(schema, &row.name)),
            )
        }
    };
    let membership = Membership {
        target,
        role: Some(&row.owner),
        via: &row.via,
    };
    let who = if row.owner == target {
        format!("role {target} owns {object}")
    } else {
        format!("{} owns {object}", membership.holder())
    };
    let fix = membership.cut_membership_sql().unwrap_or_else(|| {
        let successor = row
            .successor
            .as_deref()
            .map_or_else(|| "<deploy role>".to_owned(), quote_ident);
        let keyword = match row.kind.as_str() {
            "foreign table" => "FOREIGN TABLE".to_owned(),
            "materialized view" => "MATERIALIZED VIEW".to_owned(),
            kind => kind.to_uppercase(),
        };
        format!("ALTER {keyword} {sql_name} OWNER TO {successor};")
    });
    Finding::new(
        rule,
        object,
        format!(
            "{who}: an owner can switch row-level security off, drop policies and grant itself any privilege"
        ),
        fix,
    )
}
