//! The fast bulk path: ids reserved in blocks up front, then one statement per account,
//! inside that account's tenant transaction.
//!
//! COPY cannot write to a table with row-level security, so each account's rows travel as
//! arrays (binary, one bind parameter per column) and are inserted with `unnest` by one
//! statement of data-modifying CTEs: the account row, its users, projects, tasks and
//! subtasks. (COPY into temporary staging tables and `INSERT ... SELECT` from them was
//! measured too: four COPY exchanges per account made it latency-bound and ten times
//! slower, and it writes every row twice.) That statement runs in a [`TenantTx`] for the account, so every tenant row passes
//! the policy's `WITH CHECK`, and the account row commits with its rows or not at all.
//!
//! Ids are not left to the identity defaults: [`reserve_ids`] takes a block of each
//! sequence for the whole run (under a short lock, so no other insert interleaves), and rows
//! carry explicit ids (`OVERRIDING SYSTEM VALUE`). Children then reference their parents
//! without a round trip, accounts can be loaded in parallel in any order, and the same seed
//! on a fresh database gives the same ids.

use std::sync::LazyLock;

use sqlx::{AssertSqlSafe, PgConnection};

use super::Result;
use super::generate::{AccountCounts, AccountRows, IdBases};
use super::preflight::{REGISTRY, TENANT_TABLES};
use crate::db::TenantTx;
use crate::placement::SchemaName;

/// Where an account's rows go.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target<'a> {
    /// The shared tables (RLS strategy), with the account's registry row.
    Shared,
    /// The account's own schema (schema strategy), which the transaction's `search_path`
    /// names, with the account's registry row naming it.
    Schema(&'a SchemaName),
    /// The account's own database (database strategy): its tenant rows only; its registry
    /// row is in the control database, written by the lifecycle that created the database.
    Database,
}

/// One account, all tables, one round trip, under the RLS strategy. `$1` is the account id.
static INSERT_ACCOUNT: LazyLock<String> = LazyLock::new(|| insert_account_sql(Layout::Shared));

/// The same under the schema strategy: the tenant tables unqualified (the transaction's
/// `search_path` names the account's schema), the registry row naming the schema (`$25`),
/// and each table's identity moved past the ids used, which count from 1 in each schema.
static INSERT_ACCOUNT_IN_SCHEMA: LazyLock<String> =
    LazyLock::new(|| insert_account_sql(Layout::Schema));

/// The same under the database strategy: the tenant tables of the account's own database,
/// no registry row (`$2` .. `$4` unused), each table's identity moved past the ids used.
static INSERT_ACCOUNT_IN_DATABASE: LazyLock<String> =
    LazyLock::new(|| insert_account_sql(Layout::Database));

/// [`Target`] without its schema, for rendering the statement once.
#[derive(Clone, Copy, PartialEq)]
enum Layout {
    Shared,
    Schema,
    Database,
}

fn insert_account_sql(layout: Layout) -> String {
    let tables = match layout {
        Layout::Schema => "",
        Layout::Shared | Layout::Database => "app.",
    };
    let mut steps = Vec::new();
    let registry = match layout {
        Layout::Shared => Some(("", "")),
        Layout::Schema => Some((", schema_name", ", $25")),
        Layout::Database => None,
    };
    if let Some((schema_column, schema_value)) = registry {
        steps.push(format!(
            "account AS (
    INSERT INTO app.accounts (id, slug, name, created_at{schema_column}) OVERRIDING SYSTEM VALUE
    VALUES ($1, $2, $3, $4{schema_value})
)"
        ));
    }
    steps.push(format!(
        "users AS (
    INSERT INTO {tables}users (account_id, id, email, first_name, last_name, password, is_active, date_joined)
    OVERRIDING SYSTEM VALUE
    SELECT $1, u.* FROM unnest($5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::boolean[], $11::timestamptz[]) AS u
)"
    ));
    steps.push(format!(
        "projects AS (
    INSERT INTO {tables}projects (account_id, id, name, details) OVERRIDING SYSTEM VALUE
    SELECT $1, p.* FROM unnest($12::bigint[], $13::text[], $14::text[]) AS p
)"
    ));
    steps.push(format!(
        "tasks AS (
    INSERT INTO {tables}tasks (account_id, id, project_id, name, is_complete, details) OVERRIDING SYSTEM VALUE
    SELECT $1, t.* FROM unnest($15::bigint[], $16::bigint[], $17::text[], $18::boolean[], $19::text[]) AS t
)"
    ));
    let subtasks = format!(
        "INSERT INTO {tables}subtasks (account_id, id, task_id, name, is_complete, details) OVERRIDING SYSTEM VALUE
SELECT $1, s.* FROM unnest($20::bigint[], $21::bigint[], $22::text[], $23::boolean[], $24::text[]) AS s"
    );
    let last = match layout {
        Layout::Shared => subtasks,
        Layout::Schema | Layout::Database => {
            steps.push(format!(
                "subtasks AS (
    {subtasks}
)"
            ));
            format!(
                "SELECT {}",
                [("users", 5), ("projects", 12), ("tasks", 15), ("subtasks", 20)]
                    .map(|(table, ids)| format!(
                        "setval(pg_get_serial_sequence('{tables}{table}', 'id'), greatest(cardinality(${ids}::bigint[]), 1), cardinality(${ids}::bigint[]) > 0)"
                    ))
                    .join(", ")
            )
        }
    };
    format!("\nWITH {}\n{last}", steps.join(", "))
}

/// Writes one account inside its tenant transaction (the caller commits or rolls back), to
/// `target`.
pub(super) async fn insert_account(
    tx: &mut TenantTx,
    rows: &AccountRows,
    target: Target<'_>,
) -> Result<()> {
    let (u, p, t, s) = (&rows.users, &rows.projects, &rows.tasks, &rows.subtasks);
    let statement = match target {
        Target::Shared => INSERT_ACCOUNT.as_str(),
        Target::Schema(_) => INSERT_ACCOUNT_IN_SCHEMA.as_str(),
        Target::Database => INSERT_ACCOUNT_IN_DATABASE.as_str(),
    };
    let query = sqlx::query(AssertSqlSafe(statement))
        .bind(rows.id)
        .bind(&rows.slug)
        .bind(&rows.name)
        .bind(rows.created_at)
        .bind(&u.ids)
        .bind(&u.emails)
        .bind(&u.first_names)
        .bind(&u.last_names)
        .bind(&u.passwords)
        .bind(&u.is_active)
        .bind(&u.date_joined)
        .bind(&p.ids)
        .bind(&p.names)
        .bind(&p.details)
        .bind(&t.ids)
        .bind(&t.parent_ids)
        .bind(&t.names)
        .bind(&t.is_complete)
        .bind(&t.details)
        .bind(&s.ids)
        .bind(&s.parent_ids)
        .bind(&s.names)
        .bind(&s.is_complete)
        .bind(&s.details);
    match target {
        Target::Schema(schema) => query.bind(schema.as_str()).execute(&mut **tx).await?,
        Target::Shared | Target::Database => query.execute(&mut **tx).await?,
    };
    Ok(())
}

/// Takes a block of `total` ids from each table's identity sequence and returns the first id
/// of each block. The tables are locked `EXCLUSIVE` for the moment it takes, so no concurrent
/// insert draws from the sequences in between; the blocks are consumed even if the run fails
/// (sequences are not transactional), which only leaves gaps.
pub(super) async fn reserve_ids(
    conn: &mut PgConnection,
    accounts: u64,
    total: &AccountCounts,
) -> Result<IdBases> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    sqlx::query("SET LOCAL lock_timeout = '10s'")
        .execute(&mut *tx)
        .await?;
    sqlx::query("LOCK TABLE app.accounts, app.users, app.projects, app.tasks, app.subtasks IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let sizes = [
        accounts,
        total.users,
        total.projects,
        total.tasks,
        total.subtasks,
    ];
    let mut bases = [0_i64; 5];
    for ((table, size), base) in std::iter::once(REGISTRY)
        .chain(TENANT_TABLES)
        .zip(sizes)
        .zip(&mut bases)
    {
        if size == 0 {
            continue;
        }
        *base = sqlx::query_scalar(
            "SELECT setval(s, nextval(s) + $2 - 1) - $2 + 1
               FROM (SELECT pg_get_serial_sequence($1, 'id')::regclass AS s) AS seq",
        )
        .bind(table)
        .bind(i64::try_from(size).unwrap_or(i64::MAX))
        .fetch_one(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    let [account, user, project, task, subtask] = bases;
    Ok(IdBases {
        account,
        user,
        project,
        task,
        subtask,
    })
}
