//! `rls-seed`: realistic fake tenant data, fast, deterministic, and written through RLS.
//!
//! [`seed`] makes accounts `tenant-0`, `tenant-1`, … with users, projects, tasks and subtasks
//! shaped by a [`SeedProfile`] from seed/ (the reference distribution by default).
//!
//! - **Through RLS, never around it.** It connects as the deploy role and refuses a
//!   superuser or `BYPASSRLS` role. Each account's rows are written inside that account's
//!   tenant transaction ([`crate::TenantPool::begin`]), so the forced policy's `WITH CHECK`
//!   vets every row.
//! - **Whole accounts only.** The account row is inserted in the same transaction as its
//!   tenant rows: an interrupted or failed run leaves only complete accounts (and gaps in the
//!   id sequences). A rerun refuses while any of the requested slugs exist, saying how many;
//!   with `--resume` it adds exactly the missing ones, after checking that the accounts
//!   present were made with the same seed and profile.
//! - **Deterministic.** Account `i` is generated from its own random stream of `--seed`, and
//!   ids are reserved in blocks before loading, so the same options on a fresh database give
//!   byte-identical rows, ids included, whatever `--jobs` is.
//! - **Fast and bounded.** One thread generates accounts into a bounded channel while
//!   `--jobs` connections load them in parallel, one statement per account; memory holds a
//!   few accounts at a time, never the data set.
//!
//! ```no_run
//! use rls_tenancy::{SeedOptions, seed};
//! # async fn demo() -> rls_tenancy::Result<()> {
//! let deploy = "postgres://app_deploy:pw@127.0.0.1/app".parse()?;
//! let report = seed(&deploy, &SeedOptions::new(2000).seed(42)).await?;
//! println!("{report}"); // Accounts: 2000, Users: …, Elapsed: …
//! # Ok(()) }
//! ```

mod databases;
mod error;
mod generate;
mod load;
mod options;
mod pipeline;
mod preflight;
mod profile;
mod progress;
mod report;
mod spread;

use std::time::Instant;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection};

pub(crate) use error::Result;
pub use error::SeedError;
pub use options::SeedOptions;
pub use profile::{CountRange, Distribution, SeedLevel, SeedProfile};
pub use report::SeedReport;
pub use spread::seed_placement;

use self::generate::{AccountCounts, Generator, IdBases};
use self::progress::Progress;
use crate::connect::{ConnectError, DatabaseUrl};
use crate::db::TenantPool;
use crate::tenant::{TenantId, TenantScope};

/// Seeds the database at `url` (the deploy role) as `options` say.
///
/// Everything is validated before anything is written: options and profile, the
/// connection, the schema (migrated, RLS forced), the role (not superuser, not
/// `BYPASSRLS`, may insert ids), and the accounts already present.
///
/// # Errors
/// Usage errors (exit code 2): [`SeedError::InvalidOption`], [`SeedError::UnknownProfile`],
/// [`Error::Connect`], [`SeedError::NotMigrated`], [`SeedError::Role`], [`SeedError::Conflict`],
/// [`SeedError::Mismatch`]. A database error while loading (exit code 1) stops the run; the
/// accounts committed so far are whole, the others absent.
///
/// ```no_run
/// # use rls_tenancy::{SeedLevel, SeedOptions, seed};
/// # async fn demo(url: rls_tenancy::DatabaseUrl) -> rls_tenancy::Result<()> {
/// let options = SeedOptions::new(10).profile("small").max(SeedLevel::Users, 2).rollback(true);
/// let report = seed(&url, &options).await?;
/// assert_eq!(report.accounts, 10);
/// # Ok(()) }
/// ```
#[tracing::instrument(skip_all, fields(url = %url, accounts = tracing::field::Empty))]
pub async fn seed(url: &DatabaseUrl, options: &SeedOptions) -> Result<SeedReport> {
    let started = Instant::now();
    let plan = options.plan()?;
    tracing::Span::current().record("accounts", plan.accounts);
    if let Some(databases) = &plan.databases {
        let mut report = databases::seed_databases(url, &plan, databases).await?;
        report.elapsed = started.elapsed();
        return Ok(report);
    }
    let connect_options = url
        .connect_options()?
        // A seeding commit need not wait for its WAL flush: a crash loses at most the last
        // few whole accounts, never part of one, and `--resume` adds them again.
        .options([("synchronous_commit", "off")]);
    let mut control = connect(url, &connect_options).await?;
    preflight::check_migrated(&mut control).await?;
    preflight::check_role(&mut control).await?;
    if let Some(schemas) = &plan.schemas {
        preflight::check_schema_strategy(&mut control, &schemas.runtime_role).await?;
    }

    let generator = Generator::new(plan.seed, plan.distribution);
    let existing = preflight::existing_indexes(&mut control, plan.accounts).await?;
    // The seeding path: the deploy role, one tenant transaction per account.
    let in_schemas = plan.schemas.is_some();
    let warm_up = pipeline::loading_pool(&connect_options, plan.jobs, in_schemas).await?;
    if let (Some(first), Some(last)) = (existing.first(), existing.last()) {
        if !plan.resume {
            return Err(SeedError::Conflict {
                existing: existing.len() as u64,
                requested: plan.accounts,
                first: Generator::slug(*first),
                last: Generator::slug(*last),
            });
        }
        verify_resumable(&mut control, &warm_up, &generator, *first, in_schemas).await?;
    }

    let todo: Vec<(u64, AccountCounts)> = (0..plan.accounts)
        .filter(|index| !existing.contains(index))
        .map(|index| (index, generator.counts(index)))
        .collect();
    let mut total = AccountCounts::default();
    todo.iter().for_each(|(_, counts)| total.add(counts));
    // Under the schema strategy only the registry's ids are shared; each schema's count from 1.
    let shared = if in_schemas {
        &AccountCounts::default()
    } else {
        &total
    };
    let base = load::reserve_ids(&mut control, todo.len() as u64, shared).await?;
    drop(control);

    let progress = Progress::new(todo.len() as u64, plan.progress);
    let accounts = assign_ids(&todo, base, in_schemas);
    let result = pipeline::load_all(
        warm_up,
        &connect_options,
        &generator,
        accounts,
        &plan,
        &progress,
    )
    .await;
    progress.finish();
    let mut report = result?;
    report.already_present = existing.len() as u64;
    report.rolled_back = plan.rollback;
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The slug of the account at `index` (from 0): `tenant-{index}`.
pub(crate) fn account_slug(index: u64) -> String {
    Generator::slug(index)
}

async fn connect(url: &DatabaseUrl, options: &PgConnectOptions) -> Result<PgConnection> {
    PgConnection::connect_with(options).await.map_err(|source| {
        ConnectError::Unreachable {
            url: url.redacted(),
            source,
        }
        .into()
    })
}

/// Gives each account to load its slice of the reserved id blocks, in index order; in its
/// own schema (`in_schemas`), its tenant rows' ids count from 1.
fn assign_ids(
    todo: &[(u64, AccountCounts)],
    base: IdBases,
    in_schemas: bool,
) -> Vec<(u64, IdBases)> {
    let mut next = base;
    todo.iter()
        .map(|(index, counts)| {
            let ids = match in_schemas {
                false => next,
                true => IdBases {
                    account: next.account,
                    user: 1,
                    project: 1,
                    task: 1,
                    subtask: 1,
                },
            };
            next.account += 1;
            next.user += counts.users as i64;
            next.project += counts.projects as i64;
            next.task += counts.tasks as i64;
            next.subtask += counts.subtasks as i64;
            (*index, ids)
        })
        .collect()
}

/// Refuses to resume onto accounts another seed or profile made: the lowest existing one
/// must have the name and the counts this run would give it.
async fn verify_resumable(
    control: &mut PgConnection,
    tenants: &TenantPool,
    generator: &Generator,
    index: u64,
    in_schemas: bool,
) -> Result<()> {
    let slug = Generator::slug(index);
    let (id, name): (i64, String) =
        sqlx::query_as("SELECT id, name FROM app.accounts WHERE slug = $1")
            .bind(&slug)
            .fetch_one(&mut *control)
            .await?;
    let mismatch = |reason: String| SeedError::Mismatch {
        slug: slug.clone(),
        reason,
    };
    let expected = generator.account(index, IdBases::default());
    if name != expected.name {
        return Err(mismatch(format!(
            "its name is {name:?}, these options make {:?}",
            expected.name
        )));
    }
    let scope = TenantScope::new(TenantId::new(id)?, slug.parse()?);
    let mut tx = tenants.begin(&scope).await?;
    // In its own schema, the tables are the ones the transaction's search_path names.
    let tables = if in_schemas { "" } else { "app." };
    let (users, projects, tasks, subtasks): (i64, i64, i64, i64) =
        sqlx::query_as(AssertSqlSafe(format!(
            "SELECT (SELECT count(*) FROM {tables}users), (SELECT count(*) FROM {tables}projects),
                    (SELECT count(*) FROM {tables}tasks), (SELECT count(*) FROM {tables}subtasks)"
        )))
        .fetch_one(&mut *tx)
        .await?;
    tx.rollback().await?;
    let found = [users, projects, tasks, subtasks].map(|n| n as u64);
    let planned = expected.counts();
    let wanted = [
        planned.users,
        planned.projects,
        planned.tasks,
        planned.subtasks,
    ];
    if found != wanted {
        return Err(mismatch(format!(
            "it holds {found:?} users, projects, tasks and subtasks; these options make {wanted:?}"
        )));
    }
    Ok(())
}
