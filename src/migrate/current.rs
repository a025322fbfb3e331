//! Which tenant schemas are already current, read for all of them at once: a rerun of
//! `rls-migrate --strategy schema` with nothing to apply opens no transaction per schema.
//!
//! A schema is current when the shared schema's records ([`records`]) hold every tenant
//! migration for it with the same checksum, every declared tenant table has row-level
//! security enabled and forced with exactly the canonical policy, and the runtime role may
//! read, delete and insert into each declared table (INSERT and UPDATE by column, never
//! table-wide), may use the schema but not create in it, and holds nothing on any other table
//! of it. Not read here, to keep a rerun over thousands of schemas under a second: each
//! column's grant and the sequences' (a column UPDATE or a sequence USAGE revoked by hand is
//! only given back by a run that migrates the schema for another reason). Anything else (a new schema, a pending migration, a dropped policy,
//! a stray grant) goes the full way, in a batch (`batch`).

use std::collections::HashSet;

use sqlx::PgConnection;
use sqlx::migrate::Migrator;

use super::policies::{canonical_policy, policy_head_sql};
use super::{Result, records};
use crate::placement::SchemaName;
use crate::policy::{Ident, TenancyDeclaration, TenantContext};

/// The names among `schemas` that are current for `migrator`, `decl` and `runtime`.
pub(super) async fn current_schemas(
    conn: &mut PgConnection,
    migrator: &Migrator,
    decl: &TenancyDeclaration,
    schemas: &[&SchemaName],
    context: &TenantContext,
    runtime: &Ident,
) -> Result<HashSet<String>> {
    let names: Vec<&str> = schemas.iter().map(|s| s.as_str()).collect();
    let tables: Vec<&str> = decl
        .tenant_tables()
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    let migrated: HashSet<String> = records::migrated(conn, decl.schema(), migrator, &names)
        .await?
        .into_iter()
        .collect();
    // Only the schemas whose records are complete can be current: the catalog checks read
    // only those (a run that adds a migration reads no policy).
    let names: Vec<&str> = names
        .into_iter()
        .filter(|name| migrated.contains(*name))
        .collect();
    if names.is_empty() {
        return Ok(HashSet::new());
    }
    let policed = policed(conn, decl, &names, context).await?;
    let granted: Vec<String> = sqlx::query_scalar(
        "SELECT n.nspname::text
           FROM pg_catalog.pg_namespace n
           JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          WHERE n.nspname = ANY($1)
          GROUP BY n.nspname, n.oid
         HAVING has_schema_privilege($3, n.oid, 'USAGE')
            AND NOT has_schema_privilege($3, n.oid, 'CREATE')
            AND bool_and(CASE WHEN c.relname = ANY($2)
                              THEN has_table_privilege($3, c.oid, 'SELECT')
                                   AND has_table_privilege($3, c.oid, 'DELETE')
                                   AND has_any_column_privilege($3, c.oid, 'INSERT')
                                   -- INSERT and UPDATE are granted by column (the tenant
                                   -- column never updatable): table-wide, they are stray.
                                   AND NOT has_table_privilege($3, c.oid,
                                           'INSERT, UPDATE, TRUNCATE, REFERENCES, TRIGGER')
                              ELSE NOT has_table_privilege($3, c.oid,
                                       'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
                         END)",
    )
    .bind(&names)
    .bind(&tables)
    .bind(runtime.as_str())
    .fetch_all(&mut *conn)
    .await?;
    Ok(granted
        .into_iter()
        .filter(|name| policed.contains(name))
        .collect())
}

/// The schemas in which every declared tenant table carries exactly the canonical policy,
/// with row-level security enabled and forced.
///
/// A policy's expressions are decompiled (`pg_get_expr`, which opens the table: 2.2 s for
/// 8,000 tables) once per distinct shape, not once per table: two policies with equal stored
/// trees on tables with the same column names read back as the same text, and the trees of
/// policies made by the same statement differ only by the statement's length (9 shapes for
/// 8,000 tenant tables). The comparison with the canonical text is made in the statement,
/// which returns only the schemas that pass.
async fn policed(
    conn: &mut PgConnection,
    decl: &TenancyDeclaration,
    names: &[&str],
    context: &TenantContext,
) -> Result<HashSet<String>> {
    let (tables, expected): (Vec<&str>, Vec<String>) = decl
        .tenant_tables()
        .iter()
        .map(|t| (t.name.as_str(), canonical_policy(t, context)))
        .unzip();
    let policed: Vec<String> = sqlx::query_scalar(concat!(
        "WITH wanted AS (
             SELECT w.name, w.expected FROM unnest($2::text[], $3::text[]) AS w(name, expected)
         ), rels AS (
             SELECT s.name AS schema, w.expected, c.oid,
                    c.relrowsecurity AND c.relforcerowsecurity AS forced
               FROM unnest($1::text[]) AS s(name)
               JOIN pg_catalog.pg_namespace n ON n.nspname = s.name
               JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
               JOIN wanted w ON w.name = c.relname
         ), columns AS (
             SELECT a.attrelid AS oid, md5(string_agg(a.attname::text, ',' ORDER BY a.attnum)) AS names
               FROM pg_catalog.pg_attribute a
               JOIN rels r ON r.oid = a.attrelid
              WHERE a.attnum > 0
              GROUP BY a.attrelid
         ), pols AS (
             SELECT p.polrelid AS oid, p.polname,
                    ",
        policy_head_sql!(),
        " AS head,
                    concat_ws(' ', md5(p.polqual::text), md5(p.polwithcheck::text), c.names) AS shape
               FROM rels r
               JOIN pg_catalog.pg_policy p ON p.polrelid = r.oid
               JOIN columns c ON c.oid = r.oid
         ), shapes AS (
             SELECT s.shape,
                    concat_ws('|', pg_catalog.pg_get_expr(p.polqual, p.polrelid),
                                   pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)) AS exprs
               FROM (SELECT DISTINCT ON (shape) shape, oid, polname FROM pols) s
               JOIN pg_catalog.pg_policy p ON p.polrelid = s.oid AND p.polname = s.polname
         ), tables AS (
             SELECT r.schema, r.forced, count(p.oid) AS policies,
                    coalesce(bool_or(concat_ws('|', p.head, s.exprs) = r.expected), false) AS canonical
               FROM rels r
               LEFT JOIN pols p ON p.oid = r.oid
               LEFT JOIN shapes s ON s.shape = p.shape
              GROUP BY r.schema, r.oid, r.forced
         )
         -- A table passes with exactly one policy, spelled as the canonical one.
         SELECT schema
           FROM tables
          GROUP BY schema
         HAVING count(*) = cardinality($2::text[]) AND bool_and(forced AND policies = 1 AND canonical)"
    ))
    .bind(names)
    .bind(&tables)
    .bind(&expected)
    .fetch_all(&mut *conn)
    .await?;
    Ok(policed.into_iter().collect())
}
