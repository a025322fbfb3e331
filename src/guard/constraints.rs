//! Constraints that reach across tenants: a unique index without the tenant column turns a
//! duplicate-key error into an oracle on other tenants' values, and a foreign key between
//! tenant tables that does not pair their tenant columns lets a row point into another
//! tenant.

use sqlx::PgConnection;

use super::Ctx;
use super::Result;
use super::catalog::{tenant_tables, with_closure};
use super::finding::{
    Finding, RuleId, quote_ident, quote_qualified, sql_comment, with_tenant_first,
};

#[derive(sqlx::FromRow)]
struct Fault {
    /// `unique` or `foreign key`.
    kind: String,
    table_name: String,
    tenant_column: String,
    /// The index or constraint.
    name: String,
    /// The constraint an index backs (`p` primary key, `u` unique), if any.
    constraint_type: Option<String>,
    /// Key columns (`NULL` elements for expressions) of the index, or of the foreign key.
    columns: Vec<Option<String>>,
    /// For a unique index: its definition. For a foreign key: the referenced table.
    detail: String,
    /// For a foreign key: the referenced columns and the referenced table's tenant column.
    referenced: Vec<String>,
    referenced_tenant_column: Option<String>,
}

pub(super) async fn check(conn: &mut PgConnection, ctx: &Ctx<'_>) -> Result<Vec<Finding>> {
    let (names, columns, tenant_columns, registry) = ctx.tenant_table_params();
    let rows: Vec<Fault> = sqlx::query_as(with_closure!(
        tenant_tables!(),
        "SELECT 'unique' AS kind, t.name AS table_name, t.column_name AS tenant_column,
                i.relname::text AS name, con.contype::text AS constraint_type,
                ARRAY(SELECT a.attname::text
                        FROM unnest((x.indkey::int2[])[0:x.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, n)
                        LEFT JOIN pg_catalog.pg_attribute a
                               ON a.attrelid = t.oid AND a.attnum = k.attnum
                       ORDER BY k.n) AS columns,
                pg_catalog.pg_get_indexdef(x.indexrelid) AS detail,
                '{}'::text[] AS referenced, NULL::text AS referenced_tenant_column
           FROM tenant_tables t
           JOIN pg_catalog.pg_index x ON x.indrelid = t.oid
           JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
           LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = x.indexrelid
                                                 AND con.conrelid = t.oid
                                                 AND con.contype IN ('p', 'u')
          WHERE x.indisunique
            AND t.attnum IS NOT NULL
            AND t.attnum <> ALL ((x.indkey::int2[])[0:x.indnkeyatts - 1])
            AND EXISTS (
                SELECT 1 FROM roles r, pg_catalog.pg_attribute a
                 WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
                   AND (a.attnum = ANY (x.indkey::int2[]) OR x.indexprs IS NOT NULL)
                   AND (has_column_privilege(r.role, t.oid, a.attnum, 'INSERT')
                        OR has_column_privilege(r.role, t.oid, a.attnum, 'UPDATE')))
         UNION ALL
         SELECT 'foreign key', t.name, t.column_name, con.conname::text, NULL,
                ARRAY(SELECT a.attname::text
                        FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, n)
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
                       ORDER BY k.n),
                p.name,
                ARRAY(SELECT a.attname::text
                        FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, n)
                        JOIN pg_catalog.pg_attribute a ON a.attrelid = p.oid AND a.attnum = k.attnum
                       ORDER BY k.n),
                p.column_name
           FROM tenant_tables t
           JOIN pg_catalog.pg_constraint con ON con.conrelid = t.oid AND con.contype = 'f'
           JOIN tenant_tables p ON p.oid = con.confrelid
          WHERE NOT EXISTS (
                SELECT 1 FROM unnest(con.conkey, con.confkey) AS k(child, parent)
                 WHERE k.child = t.attnum AND k.parent = p.attnum)
          ORDER BY 1, 2, 4"
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
        .map(|row| match row.kind.as_str() {
            "unique" => unique(ctx, row),
            _ => foreign_key(ctx, row),
        })
        .collect())
}

fn unique(ctx: &Ctx<'_>, row: &Fault) -> Finding {
    let schema = ctx.schema();
    let table = format!("{schema}.{}", row.table_name);
    let table_sql = quote_qualified(schema, &row.table_name);
    let tenant = &row.tenant_column;
    let plain: Option<Vec<&str>> = row.columns.iter().map(Option::as_deref).collect();
    let fix = match (&plain, row.constraint_type.as_deref()) {
        (Some(columns), Some(contype)) => {
            let keyword = if contype == "p" {
                "PRIMARY KEY"
            } else {
                "UNIQUE"
            };
            format!(
                "ALTER TABLE {table_sql} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} {keyword} ({});",
                with_tenant_first(tenant, columns),
                name = quote_ident(&row.name)
            )
        }
        (Some(columns), None) => format!(
            "DROP INDEX {}; CREATE UNIQUE INDEX {} ON {table_sql} ({});",
            quote_qualified(schema, &row.name),
            quote_ident(&row.name),
            with_tenant_first(tenant, columns)
        ),
        (None, _) => format!(
            "DROP INDEX {}; {}",
            quote_qualified(schema, &row.name),
            sql_comment(&format!(
                "then recreate it with {} as its first key column: {};",
                quote_ident(tenant),
                row.detail
            ))
        ),
    };
    Finding::new(
        RuleId::UniqueWithoutTenant,
        format!("index {schema}.{}", row.name),
        format!(
            "unique index {} on tenant table {table} does not include {tenant}, and role {} can write its columns: a duplicate-key error tells one tenant what another tenant has",
            row.name,
            ctx.role()
        ),
        fix,
    )
}

fn foreign_key(ctx: &Ctx<'_>, row: &Fault) -> Finding {
    let schema = ctx.schema();
    let table = format!("{schema}.{}", row.table_name);
    let parent = format!("{schema}.{}", row.detail);
    let child_columns: Vec<&str> = row.columns.iter().filter_map(Option::as_deref).collect();
    let parent_tenant = row
        .referenced_tenant_column
        .as_deref()
        .unwrap_or(&row.tenant_column);
    let parent_columns: Vec<&str> = row.referenced.iter().map(String::as_str).collect();
    Finding::new(
        RuleId::ForeignKeyWithoutTenant,
        format!("constraint {} on table {table}", row.name),
        format!(
            "foreign key {} from tenant table {table} to tenant table {parent} does not pair {} with {parent_tenant}: a row can point into another tenant's rows",
            row.name, row.tenant_column
        ),
        format!(
            "ALTER TABLE {} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} FOREIGN KEY ({}) REFERENCES {} ({});",
            quote_qualified(schema, &row.table_name),
            with_tenant_first(&row.tenant_column, &child_columns),
            quote_qualified(schema, &row.detail),
            with_tenant_first(parent_tenant, &parent_columns),
            name = quote_ident(&row.name)
        ),
    )
}
