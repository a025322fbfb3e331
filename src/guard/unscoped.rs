//! Tables outside row-level security that the role can reach, in any schema.
//!
//! Row-level security guards tenant tables only: any other table is wide open to every role
//! with a grant on it. Each table the role can reach gets one finding, the first that fits:
//!
//! - `unscoped-tenant-reference`: a table the role can read or write (directly, through a
//!   role it can become, or through PUBLIC) that references tenant rows: it has a foreign key
//!   into a tenant table or the registry, or into another such table, at any depth. Its rows
//!   belong to tenants, yet every tenant reads all of them, and writing one probes other
//!   tenants' keys (the foreign key check ignores row-level security). This holds whether or
//!   not the foreign key carries the tenant column: a table that pairs it under another name
//!   still has no policy, so it is refused too, and the fix is to declare it with that column.
//! - `foreign-table-readable`: a foreign table the role can read. The remote server answers as
//!   whatever user the mapping names (often one that owns the remote tables or bypasses
//!   row-level security there), and no policy of this database applies to it.
//! - `trigger-writes-unscoped-table`: a readable table that a trigger or rule on a tenant table
//!   writes into, found from the trigger function's text (`INSERT INTO`, `UPDATE`,
//!   `DELETE FROM`, `MERGE INTO` naming the table) or, for a rule, from the catalog's
//!   dependencies. Whatever the trigger copies there is open to every tenant, even when the
//!   table is declared global. Statements built at run time (`EXECUTE format(..)`) and writes
//!   made by functions the trigger function calls cannot be seen; the other rules still refuse
//!   the table unless it is declared global.
//! - `undeclared-table-readable`: any other readable table that is neither a tenant table, the
//!   registry, nor a declared global table (`[[global_table]]` in `policies/tenancy.toml`,
//!   tables of the guarded schema). The guard cannot tell global data from tenant data kept
//!   without a tenant column, so it asks to be told.
//!
//! Views are left to `view-not-security-invoker` (a `security_invoker` view reads its tables
//! with the role's rights, and those tables are checked here), materialized views to
//! `materialized-view-readable`, tables that are members of an extension to the extension
//! (PostGIS's `spatial_ref_sys`), and objects the role owns in the guarded schema to the
//! ownership rules. One catalog query finds them all: the tables that reference tenant rows are
//! a recursive closure over `pg_constraint`, and privileges are evaluated only for tables that
//! are not tenant tables.

use sqlx::PgConnection;

use super::Ctx;
use super::Result;
use super::catalog::{Membership, tenant_tables, with_closure};
use super::finding::{
    Finding, RuleId, one_line, quote_ident, quote_qualified, revoke_from, sql_comment,
    with_tenant_first,
};

/// One reachable table, with one of its foreign keys into tenant rows (none for a readable
/// table that does not reference any).
#[derive(sqlx::FromRow)]
struct Row {
    schema: String,
    name: String,
    /// Whether it references tenant rows (else it is only readable).
    bound: bool,
    /// Whether it is a declared global table.
    global: bool,
    /// For a foreign table, its server (else `None`).
    server: Option<String>,
    /// The triggers and rules on tenant tables that write into it.
    writers: Vec<String>,
    /// When a role the inspected role can become owns it: that owner, and the roles between.
    owner: Option<String>,
    owner_via: Option<Vec<String>>,
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
    let rows: Vec<Row> = ctx
        .tenant_tables_query(with_closure!(
            tenant_tables!(),
            ",
        registry AS (
            SELECT c.oid FROM pg_catalog.pg_class c
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $2 AND c.relname::text = ANY ($6::text[])
        ),
        roots AS (SELECT oid FROM tenant_tables UNION ALL SELECT oid FROM registry),
        globals AS (
            SELECT c.oid FROM pg_catalog.pg_class c
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $2 AND c.relname::text = ANY ($7::text[])
        ),
        -- Triggers and rules on tenant tables, with what they run.
        writers AS MATERIALIZED (
            SELECT format('trigger %s on tenant table %s.%s', tg.tgname, t.schema, t.name) AS label,
                   NULL::oid AS rule, p.prosrc
              FROM tenant_tables t
              JOIN pg_catalog.pg_trigger tg ON tg.tgrelid = t.oid
                   AND NOT tg.tgisinternal AND tg.tgenabled <> 'D'
              JOIN pg_catalog.pg_proc p ON p.oid = tg.tgfoid
            UNION ALL
            SELECT format('rule %s on tenant table %s.%s', w.rulename, t.schema, t.name),
                   w.oid, NULL
              FROM tenant_tables t
              JOIN pg_catalog.pg_rewrite w ON w.ev_class = t.oid AND w.ev_type <> '1'
        ),
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
            SELECT c.oid, s.nspname, c.relname, c.relacl, c.relowner,
                   c.oid IN (SELECT oid FROM bound) AS bound,
                   c.oid IN (SELECT oid FROM globals) AS global,
                   (SELECT fs.srvname::text FROM pg_catalog.pg_foreign_table ft
                      JOIN pg_catalog.pg_foreign_server fs ON fs.oid = ft.ftserver
                     WHERE ft.ftrelid = c.oid) AS server
              FROM pg_catalog.pg_class c
              JOIN user_schemas s ON s.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'f')
               AND c.oid NOT IN (SELECT oid FROM roots)
               AND NOT (s.nspname = $2 AND c.relowner IN (SELECT role FROM roles))
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                                WHERE e.classid = 'pg_catalog.pg_class'::regclass
                                  AND e.objid = c.oid AND e.deptype = 'e')
        ),
        reachable AS (
            SELECT k.*,
                   EXISTS (SELECT 1 FROM roles r
                            WHERE has_any_column_privilege(r.role, k.oid, 'SELECT')) AS can_read,
                   EXISTS (SELECT 1 FROM roles r
                            WHERE has_any_column_privilege(r.role, k.oid, 'INSERT, UPDATE')
                               OR has_table_privilege(r.role, k.oid, 'DELETE')) AS can_write
              FROM candidates k
             -- No USAGE on the schema needed: a security_invoker view elsewhere reads it.
             WHERE NOT (SELECT yes FROM sees_all)
        )
        SELECT k.nspname::text AS schema, k.relname::text AS name, k.bound, k.global, k.server,
               o.rolname::text AS owner, owner_reach.via AS owner_via,
               ARRAY(SELECT w.label FROM writers w
                      WHERE w.prosrc ~* (",
            r#"'(insert\s+into|update|delete\s+from|merge\s+into)\s+(only\s+)?("?'
                             || regexp_replace(k.nspname, '(\W)', '\\\1', 'g')
                             || '"?\s*\.\s*)?"?' || regexp_replace(k.relname, '(\W)', '\\\1', 'g')
                             || '"?(\W|$)')"#,
            "
                      -- Rules: from their dependencies. A UNION, not an OR with the text
                      -- match: an OR EXISTS here makes the planner far slower.
                      UNION
                      SELECT w.label FROM writers w
                        JOIN pg_catalog.pg_depend d
                          ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = w.rule
                         AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = k.oid
                      ORDER BY 1) AS writers,
               k.can_read, k.can_write,
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
          LEFT JOIN reach owner_reach ON owner_reach.role = k.relowner AND NOT owner_reach.is_target
          LEFT JOIN pg_catalog.pg_roles o ON o.oid = owner_reach.role
          LEFT JOIN pg_catalog.pg_constraint con
                 ON k.bound AND con.conrelid = k.oid AND con.contype = 'f'
                AND (con.confrelid IN (SELECT oid FROM roots)
                     OR con.confrelid IN (SELECT oid FROM bound))
          LEFT JOIN pg_catalog.pg_class p ON p.oid = con.confrelid
          LEFT JOIN pg_catalog.pg_namespace ps ON ps.oid = p.relnamespace
          LEFT JOIN tenant_tables t ON t.oid = con.confrelid
         WHERE (k.bound AND (k.can_read OR k.can_write)) OR k.can_read
         ORDER BY 1, 2, 12"
        ))
        .bind(ctx.global_table_names())
        .fetch_all(&mut *conn)
        .await?;
    let mut findings = Vec::new();
    for table in rows.chunk_by(|a, b| a.schema == b.schema && a.name == b.name) {
        let first = &table[0];
        let finding = if first.bound {
            unscoped(ctx, table)
        } else if let Some(server) = &first.server {
            foreign(ctx, first, server)
        } else if !first.writers.is_empty() {
            written_by_trigger(ctx, first)
        } else if !first.global {
            undeclared(ctx, first)
        } else {
            continue;
        };
        findings.push(through_owner(ctx, first, finding));
    }
    Ok(findings)
}

/// A table a role the inspected role can become owns is reachable through that membership
/// whatever its grants say: the membership is the cause, and cutting it the fix.
fn through_owner(ctx: &Ctx<'_>, row: &Row, mut finding: Finding) -> Finding {
    let (Some(owner), Some(via)) = (&row.owner, &row.owner_via) else {
        return finding;
    };
    let membership = Membership {
        target: ctx.role(),
        role: Some(owner),
        via,
    };
    let (Some(fix), Some(cause)) = (membership.cut_membership_sql(), membership.cause()) else {
        return finding;
    };
    finding.message = format!(
        "{} (it is owned by {})",
        finding.message,
        membership.holder().trim_end_matches(',')
    );
    finding.fix_sql = fix;
    finding.caused_by(cause)
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
            revoke_from(&first.grantees, ctx.role()),
            sql_comment(&then)
        ),
    )
}

/// `REVOKE ALL` on the table from whoever grants the role its access, then `advice` (a comment).
fn revoke_all(ctx: &Ctx<'_>, row: &Row, advice: &str) -> String {
    format!(
        "REVOKE ALL ON TABLE {} FROM {}; {advice}",
        quote_qualified(&row.schema, &row.name),
        revoke_from(&row.grantees, ctx.role()),
    )
}

/// `foreign-table-readable` for a foreign table the role can read.
fn foreign(ctx: &Ctx<'_>, row: &Row, server: &str) -> Finding {
    let name = format!("{}.{}", row.schema, row.name);
    Finding::new(
        RuleId::ForeignTableReadable,
        format!("foreign table {name}"),
        format!(
            "role {} can {} foreign table {name} on server {server}: the remote server answers as the user its mapping names, and no policy of this database applies, so whatever tenant rows it returns are open to every tenant",
            ctx.role(),
            access(row)
        ),
        revoke_all(
            ctx,
            row,
            &sql_comment(
                "read remote data through a tenant table the application fills per tenant",
            ),
        ),
    )
}

/// `trigger-writes-unscoped-table` for a readable table that triggers or rules on tenant tables
/// write into.
fn written_by_trigger(ctx: &Ctx<'_>, row: &Row) -> Finding {
    let name = format!("{}.{}", row.schema, row.name);
    let declared = if row.global {
        ", declared global though tenant rows land in it,"
    } else {
        ""
    };
    Finding::new(
        RuleId::TriggerWritesUnscopedTable,
        format!("table {name}"),
        format!(
            "{} {} into table {name}, which role {} can {}{declared} and which is not a tenant table: row-level security does not guard it, so the tenant rows copied there are open to every tenant",
            row.writers.join(" and "),
            if row.writers.len() == 1 {
                "writes"
            } else {
                "write"
            },
            ctx.role(),
            access(row)
        ),
        revoke_all(
            ctx,
            row,
            &sql_comment(
                "or have the trigger copy the tenant column too, declare the table as a tenant table in policies/tenancy.toml and run rls-migrate",
            ),
        ),
    )
}

/// `undeclared-table-readable` for a readable table that is none of the others.
fn undeclared(ctx: &Ctx<'_>, row: &Row) -> Finding {
    let name = format!("{}.{}", row.schema, row.name);
    let global = if row.schema == ctx.schema() {
        format!(
            "or, if it is global data, keep the grant and declare it in policies/tenancy.toml with [[global_table]] name = \"{}\"",
            one_line(&row.name)
        )
    } else {
        format!(
            "or, if it is global data, move it into schema {} and declare it there with [[global_table]]",
            ctx.schema()
        )
    };
    Finding::new(
        RuleId::UndeclaredTableReadable,
        format!("table {name}"),
        format!(
            "role {} can {} table {name}, which is neither a tenant table, the registry, nor a declared global table: row-level security does not guard it, so every tenant reads all of its rows",
            ctx.role(),
            access(row)
        ),
        revoke_all(
            ctx,
            row,
            &sql_comment(&format!(
                "{global}; if it is tenant data, add the tenant column, declare it with [[tenant_table]] and run rls-migrate"
            )),
        ),
    )
}
