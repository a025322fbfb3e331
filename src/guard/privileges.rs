//! Privileges that get around row-level security or let the role build its way around it:
//! CREATE on a schema, TEMP or CREATE on the database, TRUNCATE, REFERENCES, TRIGGER,
//! UPDATE on a sequence, and anything held WITH GRANT OPTION.
//!
//! Read from the access control lists (`aclexplode`), so a grant is found whether it was made
//! to the role, to a role it can become, or to PUBLIC. An owner's own entries are left to
//! the ownership rules, and the registry's reads and writes to the registry rule.

use sqlx::PgConnection;

use super::Ctx;
use super::Result;
use super::catalog::{Membership, with_closure};
use super::finding::{Finding, RuleId, quote_ident, quote_qualified};

#[derive(sqlx::FromRow)]
struct Grant {
    /// `database`, `schema`, `table`, `view`, `materialized view`, `sequence`,
    /// `foreign table` or `function`.
    kind: String,
    schema: Option<String>,
    name: String,
    column_name: Option<String>,
    /// Identity arguments, for functions.
    args: Option<String>,
    /// `None` for PUBLIC.
    grantee: Option<String>,
    via: Vec<String>,
    privilege: String,
    grantable: bool,
}

pub(super) async fn check(conn: &mut PgConnection, ctx: &Ctx<'_>) -> Result<Vec<Finding>> {
    let rows: Vec<Grant> = sqlx::query_as(with_closure!(
        ",
        acl (kind, schema, name, column_name, args, owner, grantee, privilege, grantable) AS (
            SELECT 'database', NULL::name, d.datname, NULL::name, NULL::text, d.datdba,
                   a.grantee, a.privilege_type, a.is_grantable
              FROM pg_catalog.pg_database d,
                   aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
             WHERE d.datname = current_database()
            UNION ALL
            SELECT 'schema', NULL, s.nspname, NULL, NULL, s.nspowner,
                   a.grantee, a.privilege_type, a.is_grantable
              FROM user_schemas s, aclexplode(coalesce(s.nspacl, acldefault('n', s.nspowner))) a
            UNION ALL
            SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                                  WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence'
                                  ELSE 'foreign table' END,
                   s.nspname, c.relname, NULL, NULL, c.relowner,
                   a.grantee, a.privilege_type, a.is_grantable
              FROM pg_catalog.pg_class c JOIN user_schemas s ON s.oid = c.relnamespace,
                   aclexplode(c.relacl) a
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
            UNION ALL
            SELECT 'table', s.nspname, c.relname, at.attname, NULL, c.relowner,
                   a.grantee, a.privilege_type, a.is_grantable
              FROM pg_catalog.pg_attribute at
              JOIN pg_catalog.pg_class c ON c.oid = at.attrelid
              JOIN user_schemas s ON s.oid = c.relnamespace,
                   aclexplode(at.attacl) a
             WHERE at.attacl IS NOT NULL AND at.attnum > 0 AND NOT at.attisdropped
            UNION ALL
            SELECT 'function', s.nspname, p.proname, NULL,
                   pg_catalog.pg_get_function_identity_arguments(p.oid), p.proowner,
                   a.grantee, a.privilege_type, a.is_grantable
              FROM pg_catalog.pg_proc p JOIN user_schemas s ON s.oid = p.pronamespace,
                   aclexplode(p.proacl) a
        )
        SELECT acl.kind, acl.schema::text, acl.name::text, acl.column_name::text, acl.args,
               g.rolname::text AS grantee, coalesce(reach.via, '{}') AS via,
               acl.privilege, acl.grantable
          FROM acl
          LEFT JOIN reach ON reach.role = acl.grantee
          LEFT JOIN pg_catalog.pg_roles g ON g.oid = acl.grantee
         WHERE (acl.grantee = 0 OR reach.role IS NOT NULL)
           AND acl.grantee <> acl.owner
           AND (acl.grantable
                OR (acl.kind = 'database' AND acl.privilege IN ('TEMPORARY', 'CREATE'))
                OR (acl.kind = 'schema' AND acl.privilege = 'CREATE')
                OR (acl.kind = 'sequence' AND acl.privilege = 'UPDATE')
                OR (acl.kind IN ('table', 'view', 'materialized view', 'foreign table')
                    AND acl.privilege IN ('TRUNCATE', 'REFERENCES', 'TRIGGER')))
         ORDER BY acl.kind, acl.schema, acl.name, acl.column_name, acl.privilege"
    ))
    .bind(ctx.role_param())
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .flat_map(|row| findings(ctx.role(), row))
        .collect())
}

fn findings(target: &str, row: &Grant) -> Vec<Finding> {
    let membership = Membership {
        target,
        role: row.grantee.as_deref(),
        via: &row.via,
    };
    let holder = membership.holder();
    let grantee = membership.grantee_sql();
    let args = row
        .args
        .as_ref()
        .map(|a| format!("({a})"))
        .unwrap_or_default();
    let (object, on_sql) = match (row.kind.as_str(), &row.schema) {
        ("database", _) => (
            format!("database {}", row.name),
            format!("DATABASE {}", quote_ident(&row.name)),
        ),
        ("schema", _) => (
            format!("schema {}", row.name),
            format!("SCHEMA {}", quote_ident(&row.name)),
        ),
        (kind, schema) => {
            let schema = schema.as_deref().unwrap_or_default();
            let keyword = match kind {
                "sequence" => "SEQUENCE",
                "function" => "FUNCTION",
                _ => "TABLE",
            };
            (
                format!("{kind} {schema}.{}{args}", row.name),
                format!("{keyword} {}{args}", quote_qualified(schema, &row.name)),
            )
        }
    };
    let (privilege_sql, on_what) = match &row.column_name {
        Some(column) => (
            format!("{} ({})", row.privilege, quote_ident(column)),
            format!("column {column} of {object}"),
        ),
        None => (row.privilege.clone(), object.clone()),
    };
    let mut out = Vec::new();
    if let Some((rule, why)) = rule_for(&row.kind, &row.privilege) {
        out.push(Finding::new(
            rule,
            &object,
            format!("{holder} has {} on {on_what}: {why}", row.privilege),
            format!("REVOKE {privilege_sql} ON {on_sql} FROM {grantee};"),
        ));
    }
    if row.grantable {
        out.push(Finding::new(
            RuleId::GrantOption,
            &object,
            format!(
                "{holder} holds {} on {on_what} WITH GRANT OPTION: it can hand that privilege to any role",
                row.privilege
            ),
            format!("REVOKE GRANT OPTION FOR {privilege_sql} ON {on_sql} FROM {grantee};"),
        ));
    }
    out
}

/// The rule and the reason for a privilege on a kind of object, if the privilege is refused.
fn rule_for(kind: &str, privilege: &str) -> Option<(RuleId, &'static str)> {
    Some(match (kind, privilege) {
        ("database", "TEMPORARY") => (
            RuleId::DatabaseTemp,
            "temporary tables come first in the search path and can stand in for tenant tables",
        ),
        ("database", "CREATE") => (
            RuleId::DatabaseCreate,
            "it can create schemas of its own and put objects ahead of the application's",
        ),
        ("schema", "CREATE") => (
            RuleId::SchemaCreate,
            "it can create tables, views and functions it owns, beyond every policy",
        ),
        ("sequence", "UPDATE") => (
            RuleId::SequenceUpdate,
            "setval() rewinds the sequence that numbers every tenant's rows",
        ),
        ("sequence", _) | ("database", _) | ("schema", _) | ("function", _) => return None,
        (_, "TRUNCATE") => (
            RuleId::TableTruncate,
            "TRUNCATE empties the table for every tenant and ignores row-level security",
        ),
        (_, "REFERENCES") => (
            RuleId::TableReferences,
            "a foreign key of its own probes which values exist in other tenants' rows",
        ),
        (_, "TRIGGER") => (
            RuleId::TableTrigger,
            "a trigger of its own runs on every tenant's writes",
        ),
        _ => return None,
    })
}
