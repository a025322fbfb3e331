//! Tables outside row-level security that the role can reach.
//!
//! Row-level security guards tenant tables only: a table that is not one (not declared, no
//! tenant column) is wide open to every role with a grant on it, and the default privileges
//! that `rls-migrate` sets up hand the runtime role SELECT, INSERT, UPDATE and DELETE on every
//! new table in the schema. Two rules look at such tables:
//!
//! - `unscoped-tenant-reference` (refuse): a table the role can read or write (directly,
//!   through a role it can become, or through PUBLIC) that references tenant rows: it has a
//!   foreign key into a tenant table or the registry, or into another such table, at any
//!   depth. Its rows belong to tenants, yet every tenant reads all of them, and writing one
//!   probes other tenants' keys (the foreign key check ignores row-level security). This
//!   holds whether or not the foreign key carries the tenant column: a table that pairs it
//!   under another name still has no policy, so it is refused too, and the fix is to declare
//!   it with that column. Such tables are found in every schema the role can use, since a
//!   table in `public` exposes tenant rows just as well.
//! - `undeclared-table-readable` (warn): any other table (or foreign table) in the guarded
//!   schema the role can `SELECT` that is neither a tenant table nor the registry. Global
//!   data every tenant may read (a `plans` lookup table) is legitimate, and the guard cannot
//!   tell it from tenant data kept without a tenant column, so it only warns. Views are left
//!   to `view-not-security-invoker` (a view with its owner's rights refuses; a
//!   `security_invoker` view reads its tables with the role's rights, and those tables are
//!   checked here) and materialized views to `materialized-view-readable`.
//!
//! Objects the role owns are left to the ownership rules. One catalog query finds both: the
//! tables that reference tenant rows are a recursive closure over `pg_constraint`, and
//! privileges are only evaluated for those tables and the schema's other non-tenant tables.

use sqlx::PgConnection;

use super::Ctx;
use super::Result;
use super::catalog::{tenant_tables, with_closure};
use super::finding::{
    Finding, RuleId, quote_ident, quote_qualified, sql_comment, with_tenant_first,
};

/// One reachable table, with one of its foreign keys into tenant rows (none for a readable
/// table that does not reference any).
#[derive(sqlx::FromRow)]
struct Row {
    schema: String,
    name: String,
    /// Whether it references tenant rows (else it is only readable).
    bound: bool,
    can_read: bool,
    can_write: bool,
    /// The roles (`None` for PUBLIC) the inspected role reaches that hold a grant on it.
    grantees: Vec<Option<String>>,
    constraint_name: Option<String>,
    parent_schema: Option<String>,
    parent_name: Option<String>,
    /// `tenant table`, `registry` or `table` (a table that itself references tenant rows).
    parent_kind: Option<String>,
    /// For a tenant table parent: its tenant column, the columns the foreign key references,
    /// and the column of this table paired with the tenant column (if any).
    parent_tenant_column: Option<String>,
    referenced: Vec<String>,
    carried: Option<String>,
}

pub(super) async fn check(conn: &mut PgConnection, ctx: &Ctx<'_>) -> Result<Vec<Finding>> {
    let (names, columns, tenant_columns, registry) = ctx.tenant_table_params();
    let rows: Vec<Row> = sqlx::query_as(with_closure!(
        tenant_tables!(),
        ",
        registry AS (
            SELECT c.oid FROM pg_catalog.pg_class c
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $2 AND c.relname::text = $6
        ),
        roots AS (SELECT oid FROM tenant_tables UNION ALL SELECT oid FROM registry),
        -- Foreign keys out of tables that are neither tenant tables nor the registry.
        refs AS (
            SELECT con.conrelid AS child, con.confrelid AS parent
              FROM pg_catalog.pg_constraint con
              JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
              JOIN user_schemas s ON s.oid = c.relnamespace
             WHERE con.contype = 'f' AND con.conrelid NOT IN (SELECT oid FROM roots)
        ),
        -- Tables whose rows reference tenant rows, at any depth.
        bound (oid) AS (
            SELECT r.child FROM refs r WHERE r.parent IN (SELECT oid FROM roots)
            UNION
            SELECT r.child FROM refs r JOIN bound b ON b.oid = r.parent
        ),
        candidates AS (
            SELECT c.oid, s.oid AS nsp, s.nspname, c.relname, c.relacl,
                   c.oid IN (SELECT oid FROM bound) AS bound
              FROM pg_catalog.pg_class c
              JOIN user_schemas s ON s.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'f')
               AND c.relowner NOT IN (SELECT role FROM roles)
               AND (c.oid IN (SELECT oid FROM bound)
                    OR (s.nspname = $2 AND c.oid NOT IN (SELECT oid FROM roots)))
        ),
        reachable AS (
            SELECT k.*,
                   EXISTS (SELECT 1 FROM roles r
                            WHERE has_any_column_privilege(r.role, k.oid, 'SELECT')) AS can_read,
                   EXISTS (SELECT 1 FROM roles r
                            WHERE has_any_column_privilege(r.role, k.oid, 'INSERT, UPDATE')
                               OR has_table_privilege(r.role, k.oid, 'DELETE')) AS can_write
              FROM candidates k
             WHERE EXISTS (SELECT 1 FROM roles r WHERE has_schema_privilege(r.role, k.nsp, 'USAGE'))
        )
        SELECT k.nspname::text AS schema, k.relname::text AS name, k.bound, k.can_read,
               k.can_write,
               ARRAY(SELECT DISTINCT g.rolname::text
                       FROM (SELECT a.grantee FROM aclexplode(k.relacl) a
                             UNION
                             SELECT a.grantee FROM pg_catalog.pg_attribute at,
                                    aclexplode(at.attacl) a
                              WHERE at.attrelid = k.oid AND at.attnum > 0
                                AND NOT at.attisdropped) e
                       LEFT JOIN pg_catalog.pg_roles g ON g.oid = e.grantee
                      WHERE e.grantee = 0 OR e.grantee IN (SELECT role FROM roles)) AS grantees,
               con.conname::text AS constraint_name, ps.nspname::text AS parent_schema,
               p.relname::text AS parent_name,
               CASE WHEN t.oid IS NOT NULL THEN 'tenant table'
                    WHEN p.oid IN (SELECT oid FROM registry) THEN 'registry'
                    WHEN p.oid IS NOT NULL THEN 'table' END AS parent_kind,
               t.column_name AS parent_tenant_column,
               ARRAY(SELECT a.attname::text
                       FROM unnest(con.confkey) WITH ORDINALITY AS u(attnum, n)
                       JOIN pg_catalog.pg_attribute a
                         ON a.attrelid = con.confrelid AND a.attnum = u.attnum
                      ORDER BY u.n) AS referenced,
               (SELECT a.attname::text
                  FROM unnest(con.conkey, con.confkey) AS u(child, parent)
                  JOIN pg_catalog.pg_attribute a ON a.attrelid = k.oid AND a.attnum = u.child
                 WHERE u.parent = t.attnum) AS carried
          FROM reachable k
          LEFT JOIN pg_catalog.pg_constraint con
                 ON k.bound AND con.conrelid = k.oid AND con.contype = 'f'
                AND (con.confrelid IN (SELECT oid FROM roots)
                     OR con.confrelid IN (SELECT oid FROM bound))
          LEFT JOIN pg_catalog.pg_class p ON p.oid = con.confrelid
          LEFT JOIN pg_catalog.pg_namespace ps ON ps.oid = p.relnamespace
          LEFT JOIN tenant_tables t ON t.oid = con.confrelid
         WHERE (k.bound AND (k.can_read OR k.can_write)) OR k.can_read
         ORDER BY 1, 2, 7"
    ))
    .bind(ctx.role_param())
    .bind(ctx.schema())
    .bind(&names)
    .bind(&columns)
    .bind(&tenant_columns)
    .bind(&registry)
    .fetch_all(&mut *conn)
    .await?;
    let mut findings = Vec::new();
    for table in rows.chunk_by(|a, b| a.schema == b.schema && a.name == b.name) {
        findings.push(if table[0].bound {
            unscoped(ctx, table)
        } else {
            undeclared(ctx, &table[0])
        });
    }
    Ok(findings)
}

/// What the role can do with the table, for messages.
fn access(row: &Row) -> &'static str {
    match (row.can_read, row.can_write) {
        (true, true) => "read and write",
        (true, false) => "read",
        _ => "write",
    }
}

/// `unscoped-tenant-reference` for one table, from its rows (one per foreign key).
fn unscoped(ctx: &Ctx<'_>, rows: &[Row]) -> Finding {
    let first = &rows[0];
    let name = format!("{}.{}", first.schema, first.name);
    let table_sql = quote_qualified(&first.schema, &first.name);
    // A foreign key into a partitioned table has a row per partition too: name it once.
    let mut seen = std::collections::HashSet::new();
    let references: Vec<String> = rows
        .iter()
        .filter(|row| seen.insert(row.constraint_name.as_deref()))
        .filter_map(|row| {
            let parent = format!(
                "{}.{}",
                row.parent_schema.as_deref()?,
                row.parent_name.as_deref()?
            );
            let what = match row.parent_kind.as_deref()? {
                "tenant table" => format!("tenant table {parent}"),
                "registry" => format!("the tenant registry {parent}"),
                _ => format!("{parent}, which itself references tenant rows"),
            };
            Some(format!(
                "{what} (foreign key {})",
                row.constraint_name.as_deref()?
            ))
        })
        .collect();
    let carried = rows.iter().find_map(|row| row.carried.as_deref());
    let message = format!(
        "role {} can {} table {name}, which references {} but is not a tenant table: row-level security does not guard it, so every tenant's rows in it are open to every tenant{}",
        ctx.role(),
        access(first),
        references.join(" and "),
        if first.can_write {
            ", and a write probes which keys other tenants have"
        } else {
            ""
        }
    );
    let grantees: Vec<String> = if first.grantees.is_empty() {
        vec!["PUBLIC".to_owned(), quote_ident(ctx.role())]
    } else {
        first
            .grantees
            .iter()
            .map(|g| {
                g.as_deref()
                    .map_or_else(|| "PUBLIC".to_owned(), quote_ident)
            })
            .collect()
    };
    let then = match (carried, rows.iter().find(|r| r.parent_tenant_column.is_some())) {
        (Some(column), _) => format!(
            "then declare it in policies/tenancy.toml with column = \"{column}\" and run rls-migrate"
        ),
        (None, Some(row)) => {
            let tenant = row.parent_tenant_column.as_deref().unwrap_or_default();
            let parent = quote_qualified(
                row.parent_schema.as_deref().unwrap_or_default(),
                row.parent_name.as_deref().unwrap_or_default(),
            );
            let referenced: Vec<&str> = row.referenced.iter().map(String::as_str).collect();
            format!(
                "then add the tenant column {}, reference {parent} by ({}), declare the table in policies/tenancy.toml and run rls-migrate",
                quote_ident(tenant),
                with_tenant_first(tenant, &referenced)
            )
        }
        (None, None) => "then add the tenant column, carry it through its foreign keys, declare the table in policies/tenancy.toml and run rls-migrate".to_owned(),
    };
    Finding::new(
        RuleId::UnscopedTenantReference,
        format!("table {name}"),
        message,
        format!(
            "REVOKE ALL ON TABLE {table_sql} FROM {}; {}",
            grantees.join(", "),
            sql_comment(&then)
        ),
    )
}

/// `undeclared-table-readable` for a readable table that references no tenant rows.
fn undeclared(ctx: &Ctx<'_>, row: &Row) -> Finding {
    let name = format!("{}.{}", row.schema, row.name);
    Finding::new(
        RuleId::UndeclaredTableReadable,
        format!("table {name}"),
        format!(
            "role {} can {} table {name}, which is neither a tenant table nor the registry: row-level security does not guard it, so every tenant reads all of its rows; that is right for global data (a lookup table), wrong for anything that belongs to a tenant",
            ctx.role(),
            access(row)
        ),
        sql_comment(
            "global data: nothing to do; tenant data: add the tenant column, declare the table in policies/tenancy.toml and run rls-migrate",
        ),
    )
}
