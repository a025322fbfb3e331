//! `rls-seed` against a real PostgreSQL: the data's shape, determinism, isolation, whole
//! accounts under interruption, and the command line.

mod cli;
mod data;
mod interruption;
mod isolation;
mod schemas;

use rls_tenancy::{ScratchDatabase, SeedOptions, SeedReport, seed};
use sqlx::PgPool;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Seeds `db` as its deploy role.
async fn seed_db(
    db: &ScratchDatabase,
    options: &SeedOptions,
) -> Result<SeedReport, rls_tenancy::SeedError> {
    seed(db.deploy_url(), options).await
}

/// Per-account row counts `(slug, users, projects, tasks, subtasks)`, read as the superuser,
/// ordered by slug.
async fn counts_by_account(admin: &PgPool) -> TestResult<Vec<(String, i64, i64, i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT a.slug,
                (SELECT count(*) FROM app.users x WHERE x.account_id = a.id),
                (SELECT count(*) FROM app.projects x WHERE x.account_id = a.id),
                (SELECT count(*) FROM app.tasks x WHERE x.account_id = a.id),
                (SELECT count(*) FROM app.subtasks x WHERE x.account_id = a.id)
           FROM app.accounts a
          ORDER BY a.slug",
    )
    .fetch_all(admin)
    .await?)
}

async fn account_count(admin: &PgPool) -> TestResult<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM app.accounts")
        .fetch_one(admin)
        .await?)
}

/// An md5 over every row of every table, ids included, read as the superuser.
async fn exact_checksum(admin: &PgPool) -> TestResult<String> {
    Ok(sqlx::query_scalar(
        "SELECT md5(string_agg(r, E'\\n' ORDER BY r)) FROM (
            SELECT 'a' || x::text AS r FROM app.accounts x
            UNION ALL SELECT 'u' || x::text FROM app.users x
            UNION ALL SELECT 'p' || x::text FROM app.projects x
            UNION ALL SELECT 't' || x::text FROM app.tasks x
            UNION ALL SELECT 's' || x::text FROM app.subtasks x
         ) AS rows",
    )
    .fetch_one(admin)
    .await?)
}

/// An md5 over every row of every table by natural keys: ids replaced by the account's slug
/// and the row's rank within its account, parents by their rank. Equal for the same data
/// loaded with different ids (after an interrupted run, say).
async fn natural_checksum(admin: &PgPool) -> TestResult<String> {
    Ok(sqlx::query_scalar(
        "WITH u AS (SELECT x.*, row_number() OVER (PARTITION BY account_id ORDER BY id) AS n FROM app.users x),
              p AS (SELECT x.*, row_number() OVER (PARTITION BY account_id ORDER BY id) AS n FROM app.projects x),
              t AS (SELECT x.*, row_number() OVER (PARTITION BY account_id ORDER BY id) AS n FROM app.tasks x),
              s AS (SELECT x.*, row_number() OVER (PARTITION BY account_id ORDER BY id) AS n FROM app.subtasks x)
         SELECT md5(string_agg(r, E'\\n' ORDER BY r)) FROM (
            SELECT concat_ws('|', 'a', a.slug, a.name, a.is_active, a.created_at) AS r FROM app.accounts a
            UNION ALL
            SELECT concat_ws('|', 'u', a.slug, u.n, u.email, u.first_name, u.last_name, u.password, u.is_active, u.date_joined)
              FROM u JOIN app.accounts a ON a.id = u.account_id
            UNION ALL
            SELECT concat_ws('|', 'p', a.slug, p.n, p.name, p.details)
              FROM p JOIN app.accounts a ON a.id = p.account_id
            UNION ALL
            SELECT concat_ws('|', 't', a.slug, t.n, p.n, t.name, t.is_complete, t.details)
              FROM t JOIN app.accounts a ON a.id = t.account_id
                     JOIN p ON p.account_id = t.account_id AND p.id = t.project_id
            UNION ALL
            SELECT concat_ws('|', 's', a.slug, s.n, t.n, s.name, s.is_complete, s.details)
              FROM s JOIN app.accounts a ON a.id = s.account_id
                     JOIN t ON t.account_id = s.account_id AND t.id = s.task_id
         ) AS rows",
    )
    .fetch_one(admin)
    .await?)
}
