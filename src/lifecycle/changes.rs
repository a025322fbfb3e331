//! The change log of a tenant database being moved, for
//! [`super::TenantLifecycle::move_tenant`]: which rows the tenant's writers touched while its
//! rows were copied from a snapshot, so that the final switch, under the write lock, copies
//! again only those.
//!
//! # What is installed, and who may touch it
//! The deploy role (the tables' owner) installs in the source database schema
//! `rls_tenancy_move`: table `changes (relid, key)`, trigger function `note()` and, on every
//! tenant table, an `AFTER INSERT OR UPDATE OR DELETE … FOR EACH ROW` trigger that passes it
//! the table's primary key columns. The function runs as the writer (the guard refuses a
//! `SECURITY DEFINER` trigger function, and one that notifies), so the runtime role gets
//! what the trigger needs and no more: `USAGE` on the schema and `INSERT` on the log, which
//! has row-level security enabled with one policy, `WITH CHECK (pg_trigger_depth() > 0)`:
//! a row goes in only from inside a trigger. It cannot read, change or delete the log, nor
//! call the function (no `EXECUTE`; a trigger needs none), nor skip the trigger
//! (`session_replication_role` is a superuser's setting; it owns no table).
//!
//! # Why the log holds keys, not rows
//! Each entry is the primary key of a row written (on an update, the old and the new key);
//! never its values. At the switch those rows are read again from the source table inside
//! the tenant's transaction (its row-level security applies), and written into the copy
//! inside the tenant's transaction there (the policy's `WITH CHECK` applies, `FORCE` stays
//! on). Even an entry made some other way could therefore only make the move read a row of
//! the tenant once more; it cannot put into the copy a value the tenant's own tables do not
//! hold, nor a row of another tenant id.
//!
//! # Replaying, in one transaction of the copy
//! 1. Per table, the touched keys and the source's current rows for them go into temporary
//!    tables of the copy's transaction (binary `COPY`).
//! 2. Children first: rows of the copy whose key was touched and that the source no longer
//!    holds are deleted (the reference schema's `ON DELETE CASCADE` then finds nothing the
//!    source still has: a child of a deleted parent was deleted, and logged, with it).
//! 3. Parents first: the source's rows are inserted, or update the copy's row of the same
//!    key (`ON CONFLICT … DO UPDATE`).
//!
//! A table without a primary key cannot be replayed: such a move is refused before anything
//! is installed. A replay that breaks another unique constraint (two rows that swapped an
//! email during the copy) fails the move, which then leaves everything as it was; moving
//! again succeeds.

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::copy::{self, column_list};
use super::{LifecycleError, Result};
use crate::policy::Ident;

/// The schema the change log lives in, in the source database, for the length of a move.
const SCHEMA: &str = "rls_tenancy_move";

/// The session advisory lock a move holds in the source database from before it installs
/// the log until it is done with it: the log is the database's one, and a second move of
/// the same tenant (to a third server) installing its own would drop the first's, whose
/// replay would then miss the writes made before that.
const MOVE_LOCK: i64 = 0x726c_736d_6f76;

/// The log, its trigger function and the schema that holds them (the triggers and the
/// runtime role's grants are made by [`install`]). An earlier move's leftovers (one cut off
/// before it cleaned up) go first.
const LOG: &str = "
DROP SCHEMA IF EXISTS rls_tenancy_move CASCADE;
CREATE SCHEMA rls_tenancy_move;
REVOKE ALL ON SCHEMA rls_tenancy_move FROM PUBLIC;
CREATE TABLE rls_tenancy_move.changes (relid oid NOT NULL, key jsonb NOT NULL);
REVOKE ALL ON rls_tenancy_move.changes FROM PUBLIC;
ALTER TABLE rls_tenancy_move.changes ENABLE ROW LEVEL SECURITY;
CREATE POLICY from_the_trigger ON rls_tenancy_move.changes FOR INSERT TO PUBLIC
    WITH CHECK (pg_trigger_depth() > 0);
CREATE FUNCTION rls_tenancy_move.note() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    old_key jsonb;
    new_key jsonb;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        SELECT jsonb_object_agg(c, to_jsonb(OLD) -> c) INTO old_key FROM unnest(TG_ARGV) c;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        SELECT jsonb_object_agg(c, to_jsonb(NEW) -> c) INTO new_key FROM unnest(TG_ARGV) c;
    END IF;
    INSERT INTO rls_tenancy_move.changes (relid, key)
        SELECT DISTINCT TG_RELID, k FROM unnest(ARRAY[old_key, new_key]) k WHERE k IS NOT NULL;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION rls_tenancy_move.note() FROM PUBLIC;";

/// One tenant table as the replay needs it.
#[derive(Debug, Clone)]
pub(super) struct Table {
    /// The table, qualified and quoted.
    pub(super) name: String,
    /// Its oid in the source database.
    oid: u32,
    /// The columns `COPY` carries, `(quoted name, type)`.
    pub(super) columns: Vec<(String, String)>,
    /// Its primary key's columns, quoted.
    key: Vec<String>,
    /// The same, as SQL string literals (the trigger's arguments).
    key_literals: String,
    /// The columns an upsert sets: neither key, nor generated, nor `GENERATED ALWAYS`.
    set: Vec<String>,
}

/// What the replay needs of each of `tables` (qualified, quoted; `columns` theirs, in the
/// same order), read on `conn` (the source database).
///
/// # Errors
/// [`LifecycleError::NoPrimaryKey`] for a table without one.
pub(super) async fn tables(
    conn: &mut PgConnection,
    tables: &[String],
    columns: &[Vec<(String, String)>],
) -> Result<Vec<Table>> {
    let mut found = Vec::with_capacity(tables.len());
    for (name, columns) in tables.iter().zip(columns) {
        let (oid, key, key_literals, set): (i64, Vec<String>, Option<String>, Vec<String>) =
            sqlx::query_as(
                "WITH t AS (SELECT to_regclass($1) AS relid),
                      k AS (SELECT a.attname, array_position(i.indkey::int2[], a.attnum) AS n
                              FROM t JOIN pg_catalog.pg_index i ON i.indrelid = t.relid AND i.indisprimary
                              JOIN pg_catalog.pg_attribute a
                                ON a.attrelid = t.relid AND a.attnum = ANY (i.indkey::int2[]))
                 SELECT t.relid::oid::bigint,
                        ARRAY(SELECT quote_ident(attname) FROM k ORDER BY n),
                        (SELECT string_agg(quote_literal(attname), ', ' ORDER BY n) FROM k),
                        ARRAY(SELECT quote_ident(a.attname) FROM pg_catalog.pg_attribute a
                               WHERE a.attrelid = t.relid AND a.attnum > 0 AND NOT a.attisdropped
                                 AND a.attgenerated = '' AND a.attidentity <> 'a'
                                 AND a.attname NOT IN (SELECT attname FROM k)
                               ORDER BY a.attnum)
                   FROM t",
            )
            .bind(name)
            .fetch_one(&mut *conn)
            .await?;
        let (Some(key_literals), false) = (key_literals, key.is_empty()) else {
            return Err(LifecycleError::NoPrimaryKey {
                table: name.clone(),
            });
        };
        found.push(Table {
            name: name.clone(),
            oid: u32::try_from(oid).map_err(|_| LifecycleError::NoPrimaryKey {
                table: name.clone(),
            })?,
            columns: columns.clone(),
            key,
            key_literals,
            set,
        });
    }
    Ok(found)
}

/// Takes the source database's move lock ([`MOVE_LOCK`]) on `conn` for its session, without
/// waiting.
///
/// # Errors
/// [`LifecycleError::MoveUnderWay`] when another session holds it.
pub(super) async fn lock(conn: &mut PgConnection, slug: &str) -> Result<()> {
    let taken: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(MOVE_LOCK)
        .fetch_one(&mut *conn)
        .await?;
    if !taken {
        return Err(LifecycleError::MoveUnderWay {
            slug: slug.to_owned(),
        });
    }
    Ok(())
}

/// Lets go of the move lock [`lock`] took on `conn`.
pub(super) async fn unlock(conn: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MOVE_LOCK)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Installs the log, `runtime_role`'s rights on it and a trigger on each of `tables`, in one
/// transaction on `conn` (the source, as the deploy role), waiting at most `lock_timeout` for
/// the tables' writers: once it commits, every write to a tenant table is logged.
pub(super) async fn install(
    conn: &mut PgConnection,
    tables: &[Table],
    runtime_role: &Ident,
    lock_timeout: &str,
) -> Result<()> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT set_config('lock_timeout', $1, true)")
        .bind(lock_timeout)
        .execute(&mut *tx)
        .await?;
    let mut sql = LOG.to_owned();
    sql.push_str(&format!(
        "\nGRANT USAGE ON SCHEMA {SCHEMA} TO {runtime_role};
         GRANT INSERT ON {SCHEMA}.changes TO {runtime_role};"
    ));
    for table in tables {
        sql.push_str(&format!(
            "\nCREATE TRIGGER rls_tenancy_move AFTER INSERT OR UPDATE OR DELETE ON {}
                 FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.note({});",
            table.name, table.key_literals
        ));
    }
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes the log, its function and the triggers from the source on `conn`, waiting at
/// most `lock_timeout` for the tables.
pub(super) async fn remove(conn: &mut PgConnection, lock_timeout: &str) -> Result<()> {
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT set_config('lock_timeout', $1, true)")
        .bind(lock_timeout)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"
    )))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Brings the copy up to the source for the rows the log names (see the [module
/// documentation](self)): `source` is the tenant's transaction in the source database
/// (holding the tables' write lock), `target` the tenant's transaction in the copy. Returns
/// how many rows were written again, and how many deleted.
pub(super) async fn replay(
    source: &mut PgConnection,
    target: &mut PgConnection,
    tables: &[Table],
) -> Result<(u64, u64)> {
    // Only the tables the log names: most have nothing to replay, and each costs round trips.
    let named: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT DISTINCT relid::bigint FROM {SCHEMA}.changes"
    )))
    .fetch_all(&mut *source)
    .await?;
    let tables: Vec<(usize, &Table)> = tables
        .iter()
        .enumerate()
        .filter(|(_, table)| named.contains(&i64::from(table.oid)))
        .collect();
    for &(n, table) in &tables {
        let keys = table.key.join(", ");
        let list = column_list(&table.columns);
        let touched = format!(
            "SELECT DISTINCT {} FROM {SCHEMA}.changes c, jsonb_populate_record(NULL::{}, c.key) k
              WHERE c.relid = {}",
            prefixed("k", &table.key),
            table.name,
            table.oid
        );
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE TEMP TABLE rls_move_keys_{n} ON COMMIT DROP AS SELECT {keys} FROM {name} WITH NO DATA;
             CREATE TEMP TABLE rls_move_rows_{n} ON COMMIT DROP AS SELECT {list} FROM {name} WITH NO DATA;",
            name = table.name
        )))
        .execute(&mut *target)
        .await?;
        copy::stream(
            source,
            target,
            &touched,
            &format!("pg_temp.rls_move_keys_{n} ({keys})"),
        )
        .await?;
        copy::stream(
            source,
            target,
            &format!(
                "SELECT {list} FROM {} WHERE ({keys}) IN ({touched})",
                table.name
            ),
            &format!("pg_temp.rls_move_rows_{n} ({list})"),
        )
        .await?;
    }
    let mut deleted = 0;
    for &(n, table) in tables.iter().rev() {
        let (t, k, r) = (
            prefixed("t", &table.key),
            prefixed("k", &table.key),
            prefixed("r", &table.key),
        );
        deleted += sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM {} t USING pg_temp.rls_move_keys_{n} k
              WHERE ({t}) = ({k})
                AND NOT EXISTS (SELECT 1 FROM pg_temp.rls_move_rows_{n} r WHERE ({r}) = ({t}))",
            table.name
        )))
        .execute(&mut *target)
        .await?
        .rows_affected();
    }
    let mut written = 0;
    for &(n, table) in &tables {
        let list = column_list(&table.columns);
        let action = if table.set.is_empty() {
            "NOTHING".to_owned()
        } else {
            let set: Vec<String> = table
                .set
                .iter()
                .map(|c| format!("{c} = EXCLUDED.{c}"))
                .collect();
            format!("UPDATE SET {}", set.join(", "))
        };
        written += sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {} ({list}) OVERRIDING SYSTEM VALUE
             SELECT {list} FROM pg_temp.rls_move_rows_{n}
             ON CONFLICT ({}) DO {action}",
            table.name,
            table.key.join(", ")
        )))
        .execute(&mut *target)
        .await?
        .rows_affected();
    }
    Ok((written, deleted))
}

/// `columns`, each prefixed with `alias.`, comma-separated.
fn prefixed(alias: &str, columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}
