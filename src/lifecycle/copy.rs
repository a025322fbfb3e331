//! The rows of one tenant database streamed into another, for [`super::TenantLifecycle::move_tenant`]:
//! each tenant table's rows with `COPY … TO STDOUT (FORMAT binary)` from the source straight
//! into `COPY … FROM STDIN (FORMAT binary)` on the target, the sequences' positions after
//! them, and the row counts both sides see in the tenant's own context.
//!
//! The source is read inside the tenant's transaction (the deploy role owns the tables and
//! `FORCE ROW LEVEL SECURITY` applies to it: it sees the tenant's rows only). The target is
//! a fresh clone of its server's template, which nothing reads yet: `COPY FROM` is refused
//! on a table whose row-level security applies to the writer, so the target transaction
//! lifts `FORCE` for the owner, copies, and puts `FORCE` back before it commits; no other
//! session ever sees the table without it.

use futures_util::TryStreamExt;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::{LifecycleError, Result};
use crate::db::{BeginPlan, TxOptions};
use crate::policy::{
    TenancyDeclaration, TenantContext, owner_signed_entry, signed_context_installed,
};
use crate::tenant::TenantId;

/// One tenant table's rows as the tenant's transaction sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TableCount {
    /// The table, qualified.
    pub(super) table: String,
    /// Its rows.
    pub(super) rows: i64,
}

/// The tenant tables of `decl`, qualified and quoted, parents first.
pub(super) fn tenant_tables(decl: &TenancyDeclaration) -> Vec<String> {
    decl.tenant_tables()
        .iter()
        .map(|t| format!("{}.{}", decl.schema(), t.name))
        .collect()
}

/// Begins, on `conn` (the deploy role, the tables' owner), a transaction with `options` in
/// tenant `id`'s context: signed in the database by the owner when the database has the
/// signed context, else the plain setting.
pub(super) async fn begin_tenant<'c>(
    conn: &'c mut PgConnection,
    context: &TenantContext,
    id: TenantId,
    options: TxOptions,
) -> Result<sqlx::Transaction<'c, sqlx::Postgres>> {
    let mut plan = BeginPlan::new(options);
    if signed_context_installed(conn).await? {
        plan.call(owner_signed_entry(context, id));
    } else {
        plan.set(context.settings(id));
    }
    Ok(conn.begin_with(AssertSqlSafe(plan.sql())).await?)
}

/// Each of `tables`' rows as the current transaction sees them.
pub(super) async fn count_rows(
    conn: &mut PgConnection,
    tables: &[String],
) -> Result<Vec<TableCount>> {
    let mut counts = Vec::with_capacity(tables.len());
    for table in tables {
        let rows: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&mut *conn)
            .await?;
        counts.push(TableCount {
            table: table.clone(),
            rows,
        });
    }
    Ok(counts)
}

/// The columns `COPY` carries for `table` (every stored, non-generated column), as
/// `(name quoted by the server, type)` in column order.
pub(super) async fn columns(conn: &mut PgConnection, table: &str) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT quote_ident(a.attname), format_type(a.atttypid, a.atttypmod)
           FROM pg_catalog.pg_attribute a
          WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
            AND a.attgenerated = ''
          ORDER BY a.attnum",
    )
    .bind(table)
    .fetch_all(conn)
    .await?)
}

/// Refuses a target whose `table` has other columns (names or types) than the source's:
/// the two databases are at different migrations.
pub(super) fn same_columns(
    table: &str,
    source: &[(String, String)],
    target: &[(String, String)],
) -> Result<()> {
    let sorted = |columns: &[(String, String)]| {
        let mut columns = columns.to_vec();
        columns.sort();
        columns
    };
    if source.is_empty() || sorted(source) != sorted(target) {
        return Err(LifecycleError::SchemasDiffer {
            table: table.to_owned(),
        });
    }
    Ok(())
}

/// Streams `table`'s rows (the `columns` named) from `source`'s transaction into `target`'s,
/// in PostgreSQL's binary `COPY` format; returns the rows the target took.
pub(super) async fn copy_table(
    source: &mut PgConnection,
    target: &mut PgConnection,
    table: &str,
    columns: &[(String, String)],
) -> Result<u64> {
    let list = column_list(columns);
    stream(
        source,
        target,
        &format!("SELECT {list} FROM {table}"),
        &format!("{table} ({list})"),
    )
    .await
}

/// `columns`' names, comma-separated.
pub(super) fn column_list(columns: &[(String, String)]) -> String {
    columns
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Streams the rows of `query` on `source` into `into` (a table with its column list) on
/// `target`, in PostgreSQL's binary `COPY` format; returns the rows the target took. Both
/// are the toolkit's own SQL, made of quoted identifiers.
pub(super) async fn stream(
    source: &mut PgConnection,
    target: &mut PgConnection,
    query: &str,
    into: &str,
) -> Result<u64> {
    let mut sink = target
        .copy_in_raw(&format!("COPY {into} FROM STDIN (FORMAT binary)"))
        .await?;
    let mut rows = source
        .copy_out_raw(&format!("COPY ({query}) TO STDOUT (FORMAT binary)"))
        .await?;
    loop {
        match rows.try_next().await {
            Ok(Some(chunk)) => {
                if let Err(err) = sink.send(chunk).await {
                    drop(rows);
                    sink.abort("the source failed").await?;
                    return Err(err.into());
                }
            }
            Ok(None) => break,
            Err(err) => {
                drop(rows);
                sink.abort("the source failed").await?;
                return Err(err.into());
            }
        }
    }
    Ok(sink.finish().await?)
}

/// The positions of the sequences in the declaration's schema (identity columns among them),
/// as `(qualified name, last value)`, for those that have handed out a value.
pub(super) async fn sequences(
    conn: &mut PgConnection,
    decl: &TenancyDeclaration,
) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT format('%I.%I', schemaname, sequencename), last_value
           FROM pg_catalog.pg_sequences
          WHERE schemaname = $1 AND last_value IS NOT NULL
          ORDER BY 1",
    )
    .bind(decl.schema().as_str())
    .fetch_all(conn)
    .await?)
}

/// Sets each sequence of `positions` where the source's was, so new rows do not collide.
pub(super) async fn set_sequences(
    conn: &mut PgConnection,
    positions: &[(String, i64)],
) -> Result<()> {
    for (sequence, last) in positions {
        sqlx::query("SELECT setval(to_regclass($1), $2, true)")
            .bind(sequence)
            .bind(last)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// `ALTER TABLE … FORCE` (or `NO FORCE`) `ROW LEVEL SECURITY` on every table of `tables`.
pub(super) async fn force_row_security(
    conn: &mut PgConnection,
    tables: &[String],
    force: bool,
) -> Result<()> {
    let verb = if force { "FORCE" } else { "NO FORCE" };
    let sql: String = tables
        .iter()
        .map(|table| format!("ALTER TABLE {table} {verb} ROW LEVEL SECURITY;"))
        .collect();
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await?;
    Ok(())
}
