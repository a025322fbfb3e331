//! Where the schema mode records which tenant migrations each tenant schema has applied: one
//! table in the shared schema, `_rls_schema_migrations` (schema name, version, description,
//! checksum), so that "what is every schema behind on" is one read, not one per schema.
//!
//! A schema's records are written in the same transaction as the DDL they record, with the
//! schema's oid. A schema that does not exist has no records, and neither has a schema whose
//! oid is not the one recorded: a schema dropped and made again by hand, outside a run, starts
//! with no records and is migrated again (a schema created by a run first deletes whatever
//! rows a dropped schema of the same name left). Installs made before this table kept a
//! `_rls_migrations` table in each tenant schema; [`adopt_schema_tables`] moves those rows
//! here once and drops the old tables.

use std::collections::HashMap;

use sqlx::migrate::{Migration, Migrator};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::Result;
use crate::placement::SchemaName;
use crate::policy::{Ident, quote_literal};

/// The records table's name, in the shared schema.
pub(crate) const TABLE: &str = "_rls_schema_migrations";

/// How many old per-schema tables one transaction adopts (each drop holds a few locks).
const ADOPT_CHUNK: usize = 100;

/// What one tenant schema holds before a run: whether it exists, and the versions and
/// checksums recorded for it.
#[derive(Debug, Clone, Default)]
pub(super) struct SchemaRecords {
    pub(super) exists: bool,
    pub(super) recorded: Vec<(i64, Vec<u8>)>,
}

/// One row of [`read`]: a schema, whether it exists, and one of its records, if any.
type RecordRow = (String, bool, Option<i64>, Option<Vec<u8>>);

/// `CREATE TABLE IF NOT EXISTS` of the records table in `shared`; a table made before records
/// carried the schema's oid gets the column, filled with the oid each schema has now.
pub(super) fn create_sql(shared: &Ident) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {shared}.{TABLE} (
             schema_name  text NOT NULL,
             schema_oid   oid,
             version      bigint NOT NULL,
             description  text NOT NULL,
             checksum     bytea NOT NULL,
             installed_on timestamptz NOT NULL DEFAULT now(),
             PRIMARY KEY (schema_name, version)
         );
         ALTER TABLE {shared}.{TABLE} ADD COLUMN IF NOT EXISTS schema_oid oid;
         UPDATE {shared}.{TABLE} SET schema_oid = to_regnamespace(quote_ident(schema_name))
          WHERE schema_oid IS NULL"
    )
}

/// The condition that `r`, a row of the records table, records the schema of that name that
/// exists now (not a dropped one of the same name).
const SAME_SCHEMA: &str = "r.schema_oid = to_regnamespace(quote_ident(r.schema_name))";

/// The statements recording `migrations` as applied to `schema` (what a dropped schema of the
/// same name left deleted first); empty for none.
pub(super) fn insert_sql(shared: &Ident, schema: &SchemaName, migrations: &[&Migration]) -> String {
    if migrations.is_empty() {
        return String::new();
    }
    let name = quote_literal(schema.as_str());
    let oid = format!("to_regnamespace({})", quote_literal(&schema.to_string()));
    let rows: Vec<String> = migrations
        .iter()
        .map(|m| format!("({name}, {oid}, {})", values(m)))
        .collect();
    // What a schema of the same name dropped outside a run left is deleted first.
    format!(
        "DELETE FROM {shared}.{TABLE} WHERE schema_name = {name} AND schema_oid IS DISTINCT FROM {oid};
         INSERT INTO {shared}.{TABLE} (schema_name, schema_oid, version, description, checksum) VALUES {}",
        rows.join(", ")
    )
}

/// `migration`'s version, description and checksum as SQL literals, comma-separated.
pub(super) fn values(migration: &Migration) -> String {
    format!(
        "{}, {}, '\\x{}'::bytea",
        migration.version,
        quote_literal(&migration.description),
        hex::encode(&migration.checksum),
    )
}

/// The statements that create `schema` and forget any records a dropped schema of the same
/// name left behind.
pub(super) fn create_schema_sql(shared: &Ident, schema: &SchemaName) -> String {
    format!(
        "CREATE SCHEMA {schema};
         DELETE FROM {shared}.{TABLE} WHERE schema_name = {}",
        quote_literal(schema.as_str())
    )
}

/// The `DELETE` of `schema`'s records (the schema is dropped in the same transaction).
pub(crate) fn forget_sql(shared: &Ident, schema: &SchemaName) -> String {
    format!(
        "DELETE FROM {shared}.{TABLE} WHERE schema_name = {}",
        quote_literal(schema.as_str())
    )
}

/// Whether each of `schemas` exists and what is recorded for it (nothing for a schema that
/// does not exist), in one statement.
pub(super) async fn read(
    conn: &mut PgConnection,
    shared: &Ident,
    schemas: &[&str],
) -> Result<HashMap<String, SchemaRecords>> {
    let rows: Vec<RecordRow> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT s.name, to_regnamespace(quote_ident(s.name)) IS NOT NULL, r.version, r.checksum
               FROM unnest($1::text[]) AS s(name)
               LEFT JOIN {shared}.{TABLE} r ON r.schema_name = s.name AND {SAME_SCHEMA}
              ORDER BY s.name, r.version"
    )))
    .bind(schemas)
    .fetch_all(&mut *conn)
    .await?;
    let mut records: HashMap<String, SchemaRecords> = HashMap::new();
    for (schema, exists, version, checksum) in rows {
        let entry = records.entry(schema).or_default();
        entry.exists = exists;
        // What a dropped schema of the same name left is no record of this one.
        if let (true, Some(version), Some(checksum)) = (exists, version, checksum) {
            entry.recorded.push((version, checksum));
        }
    }
    Ok(records)
}

/// The names among `schemas` whose records hold every up-migration of `migrator`, with the
/// same checksum, in one statement.
pub(super) async fn migrated(
    conn: &mut PgConnection,
    shared: &Ident,
    migrator: &Migrator,
    schemas: &[&str],
) -> Result<Vec<String>> {
    let (versions, checksums): (Vec<i64>, Vec<Vec<u8>>) = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| (m.version, m.checksum.to_vec()))
        .unzip();
    if versions.is_empty() {
        return Ok(schemas.iter().map(|s| (*s).to_owned()).collect());
    }
    Ok(sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT r.schema_name
           FROM {shared}.{TABLE} r
           JOIN unnest($2::bigint[], $3::bytea[]) AS w(version, checksum)
             ON w.version = r.version AND w.checksum = r.checksum
          WHERE r.schema_name = ANY($1) AND {SAME_SCHEMA}
          GROUP BY r.schema_name
         HAVING count(*) = cardinality($2::bigint[])"
    )))
    .bind(schemas)
    .bind(&versions)
    .bind(&checksums)
    .fetch_all(&mut *conn)
    .await?)
}

/// Moves the rows of the per-schema `_rls_migrations` tables an older install made in any of
/// `schemas` into the shared records table and drops those tables, a chunk of schemas per
/// transaction; returns how many schemas it adopted. Run before anything reads the records.
pub(super) async fn adopt_schema_tables(
    conn: &mut PgConnection,
    shared: &Ident,
    schemas: &[&str],
) -> Result<usize> {
    let old: Vec<String> = sqlx::query_scalar(
        "SELECT n.nspname::text
           FROM pg_catalog.pg_class c
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relname = '_rls_migrations' AND c.relkind = 'r' AND n.nspname = ANY($1)",
    )
    .bind(schemas)
    .fetch_all(&mut *conn)
    .await?;
    for chunk in old.chunks(ADOPT_CHUNK) {
        // The names come from the catalog; format's %I and %L quote them where they enter.
        let script: String = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT format('INSERT INTO {shared}.{TABLE} (schema_name, schema_oid, version, description, checksum, installed_on) %s ON CONFLICT DO NOTHING; DROP TABLE %s',
                           string_agg(format('SELECT %L, %L::regnamespace, version, description, checksum, installed_on FROM %I._rls_migrations', s, quote_ident(s), s), ' UNION ALL '),
                           string_agg(format('%I._rls_migrations', s), ', '))
               FROM unnest($1::text[]) AS s"
        )))
        .bind(chunk)
        .fetch_one(&mut *conn)
        .await?;
        let mut tx = conn.begin().await?;
        sqlx::raw_sql(AssertSqlSafe(script))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(
            schemas = chunk.len(),
            "moved per-schema migration records into the shared table"
        );
    }
    Ok(old.len())
}
