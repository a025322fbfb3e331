//! Which tenant schemas are already current, read for all of them at once: a rerun of
//! `rls-migrate --strategy schema` with nothing to apply opens no transaction per schema.
//!
//! A schema is current when its `_rls_migrations` records every tenant migration with the
//! same checksum, every declared tenant table has row-level security enabled and forced with
//! exactly the canonical policy, and the runtime role may read, delete and insert into each
//! declared table, may use the schema, and holds nothing on any other table of it. Anything
//! else (a new schema, a pending migration, a dropped policy, a stray grant) goes the full
//! way, in the schema's own transaction.

use std::collections::{HashMap, HashSet};

use sqlx::migrate::Migrator;
use sqlx::{AssertSqlSafe, PgConnection};

use super::Result;
use super::policies::{is_canonical, table_states};
use crate::placement::SchemaName;
use crate::policy::{Ident, TenancyDeclaration, TenantContext};

/// How many schemas one statement reads the migration records of.
const CHUNK: usize = 500;

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
    let migrated = migrated(conn, migrator, &names).await?;
    let policed = policed(conn, decl, &names, &tables, context).await?;
    let granted: Vec<String> = sqlx::query_scalar(
        "SELECT n.nspname::text
           FROM pg_catalog.pg_namespace n
           JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          WHERE n.nspname = ANY($1)
          GROUP BY n.nspname, n.oid
         HAVING has_schema_privilege($3, n.oid, 'USAGE')
            AND bool_and(CASE WHEN c.relname = ANY($2)
                              THEN has_table_privilege($3, c.oid, 'SELECT')
                                   AND has_table_privilege($3, c.oid, 'DELETE')
                                   AND has_any_column_privilege($3, c.oid, 'INSERT')
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
        .filter(|name| migrated.contains(name) && policed.contains(name))
        .collect())
}

/// The schemas whose `_rls_migrations` records every up-migration of `migrator`, unchanged.
async fn migrated(
    conn: &mut PgConnection,
    migrator: &Migrator,
    names: &[&str],
) -> Result<HashSet<String>> {
    let with_table: Vec<String> = sqlx::query_scalar(
        "SELECT n.nspname::text
           FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relname = '_rls_migrations' AND c.relkind = 'r' AND n.nspname = ANY($1)",
    )
    .bind(names)
    .fetch_all(&mut *conn)
    .await?;
    let mut recorded: HashMap<String, HashSet<(i64, Vec<u8>)>> = HashMap::new();
    for chunk in with_table.chunks(CHUNK) {
        // The names come from the catalog and were validated as the caller's SchemaNames;
        // quote_ident quotes them again where they enter the statement.
        let union: String = sqlx::query_scalar(
            "SELECT string_agg(format('SELECT %L::text, version, checksum FROM %I._rls_migrations', s, s), ' UNION ALL ')
               FROM unnest($1::text[]) AS s",
        )
        .bind(chunk)
        .fetch_one(&mut *conn)
        .await?;
        let rows: Vec<(String, i64, Vec<u8>)> = sqlx::query_as(AssertSqlSafe(union))
            .fetch_all(&mut *conn)
            .await?;
        for (schema, version, checksum) in rows {
            recorded
                .entry(schema)
                .or_default()
                .insert((version, checksum));
        }
    }
    let wanted: Vec<(i64, Vec<u8>)> = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, m.checksum.to_vec()))
        .collect();
    Ok(recorded
        .into_iter()
        .filter(|(_, done)| wanted.iter().all(|m| done.contains(m)))
        .map(|(schema, _)| schema)
        .collect())
}

/// The schemas in which every declared tenant table carries exactly the canonical policy,
/// with row-level security enabled and forced.
async fn policed(
    conn: &mut PgConnection,
    decl: &TenancyDeclaration,
    names: &[&str],
    tables: &[&str],
    context: &TenantContext,
) -> Result<HashSet<String>> {
    let mut canonical: HashMap<String, usize> = HashMap::new();
    for (schema, table, state) in table_states(conn, names, tables).await? {
        let declared = decl
            .tenant_tables()
            .iter()
            .find(|t| t.name.as_str() == table);
        if declared.is_some_and(|t| is_canonical(&state, t, context)) {
            *canonical.entry(schema).or_default() += 1;
        }
    }
    Ok(canonical
        .into_iter()
        .filter(|(_, n)| *n == tables.len())
        .map(|(schema, _)| schema)
        .collect())
}
