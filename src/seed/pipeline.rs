//! Generation overlapped with loading: one thread generates accounts into a bounded channel,
//! `--jobs` connections drain it, each account in its own tenant transaction.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;

use super::SeedReport;
use super::generate::{AccountRows, Generator, IdBases};
use super::load::{self, Target};
use super::options::{SchemaPlan, SeedPlan};
use super::progress::Progress;
use super::{Result, SeedError};
use crate::db::{TenantPool, TenantPoolOptions, TxTimeouts};
use crate::migrate::migrate_schema;
use crate::placement::SchemaName;
use crate::policy::{Strategy, TenancyDeclaration};
use crate::tenant::{TenantId, TenantScope};

/// Tasks to load before the loading connections are replaced (see [`load_all`]).
const WARM_UP_TASKS: u64 = 1_000;

/// A pool of `jobs` connections for tenant transactions, as the seeding role.
///
/// This is the explicit cross-tenant path: the deploy role, one tenant at a time.
///
/// Under the schema strategy each account's transaction also creates its schema and tables;
/// their foreign keys to the registry lock it (`SHARE ROW EXCLUSIVE`) until the account
/// commits, so the accounts' transactions take turns there, and wait longer for a lock than
/// a request would.
pub(super) async fn loading_pool(
    options: &PgConnectOptions,
    jobs: u32,
    in_schemas: bool,
) -> Result<TenantPool> {
    let pool = PgPoolOptions::new()
        .max_connections(jobs)
        .connect_lazy_with(options.clone());
    let declaration = TenancyDeclaration::reference()?;
    let options = match in_schemas {
        false => TenantPoolOptions::new(declaration),
        true => TenantPoolOptions::new(declaration.with_strategy(Strategy::Schema))
            .timeouts(TxTimeouts::default().lock(SCHEMA_LOCK_TIMEOUT)),
    };
    Ok(TenantPool::from_pool(pool, options.deploy_role_writer()).await?)
}

/// How long an account's transaction waits for the registry's lock under the schema strategy.
const SCHEMA_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// Loads `accounts` in two phases. A backend plans each foreign-key check once and keeps the
/// plan for life; planned while the tables are nearly empty, the check of a subtask's task
/// scans all the account's tasks (the planner breaks a cost tie towards the index
/// `tasks (account_id, project_id)`), which doubled the load time. So the first accounts, up
/// to about a thousand tasks, go through `warm_up`, whose connections are then closed; fresh
/// connections load the rest and plan for tables big enough to use the primary key.
pub(super) async fn load_all(
    warm_up: TenantPool,
    options: &PgConnectOptions,
    generator: &Generator,
    accounts: Vec<(u64, IdBases)>,
    plan: &SeedPlan,
    progress: &Progress,
) -> Result<SeedReport> {
    let mut tasks = 0;
    let split = accounts
        .iter()
        .take_while(|(index, _)| {
            let before = tasks;
            tasks += generator.counts(*index).tasks;
            before < WARM_UP_TASKS
        })
        .count();
    let mut rest = accounts;
    let first = rest.drain(..split).collect();
    let warm = run(&warm_up, generator.clone(), first, plan, progress).await;
    warm_up.close().await;
    let mut report = warm?;
    if !rest.is_empty() {
        let main = loading_pool(options, plan.jobs, plan.schemas.is_some()).await?;
        let loaded = run(&main, generator.clone(), rest, plan, progress).await;
        main.close().await;
        report.merge(&loaded?);
    }
    Ok(report)
}

/// Generates on a blocking thread into a bounded channel; `plan.jobs` loaders drain it. The
/// first error stops everything: the loaders are aborted (their open transactions roll
/// back) and the generator stops at its next send.
async fn run(
    tenants: &TenantPool,
    generator: Generator,
    todo: Vec<(u64, IdBases)>,
    plan: &SeedPlan,
    progress: &Progress,
) -> Result<SeedReport> {
    let (sender, receiver) = mpsc::channel::<AccountRows>(2 * plan.jobs as usize);
    let producer = tokio::task::spawn_blocking(move || {
        for (index, ids) in todo {
            if sender.blocking_send(generator.account(index, ids)).is_err() {
                break;
            }
        }
    });
    let receiver = Arc::new(Mutex::new(receiver));
    let mut loaders = JoinSet::new();
    for _ in 0..plan.jobs {
        let (receiver, tenants) = (Arc::clone(&receiver), tenants.clone());
        let (progress, schemas, rollback) = (progress.clone(), plan.schemas.clone(), plan.rollback);
        loaders.spawn(async move {
            let mut report = SeedReport::default();
            loop {
                let next = receiver.lock().await.recv().await;
                let Some(rows) = next else { break };
                load_one(&tenants, &rows, schemas.as_ref(), rollback).await?;
                let counts = rows.counts();
                progress.account_done(counts.rows());
                report.add_account(&counts);
            }
            Ok::<_, SeedError>(report)
        });
    }
    let mut report = SeedReport::default();
    let mut failure = None;
    while let Some(joined) = loaders.join_next().await {
        match joined {
            Ok(Ok(part)) => report.merge(&part),
            Ok(Err(e)) => {
                failure.get_or_insert(e);
                loaders.abort_all();
            }
            Err(e) if e.is_cancelled() => {}
            Err(e) => {
                failure.get_or_insert(SeedError::Task(e.to_string()));
                loaders.abort_all();
            }
        }
    }
    drop(receiver);
    let _ = producer.await;
    failure.map_or(Ok(report), Err)
}

/// Loads one account in its own tenant transaction; under the schema strategy, creates and
/// migrates its schema first, in the same transaction.
async fn load_one(
    tenants: &TenantPool,
    rows: &AccountRows,
    schemas: Option<&SchemaPlan>,
    rollback: bool,
) -> Result<()> {
    let scope = TenantScope::new(TenantId::new(rows.id)?, rows.slug.parse()?);
    let (mut tx, schema) = match schemas {
        None => (tenants.begin(&scope).await?, None),
        Some(plan) => {
            let decl = tenants.declaration();
            let schema = SchemaName::for_slug(scope.slug(), decl.schema())?;
            let mut tx = tenants.begin_in_schema(&scope, &schema).await?;
            let context = tenants.context();
            migrate_schema(
                &mut tx,
                &plan.migrations,
                decl,
                &schema,
                context,
                &plan.runtime_role,
            )
            .await?;
            (tx, Some(schema))
        }
    };
    let target = match &schema {
        Some(schema) => Target::Schema(schema),
        None => Target::Shared,
    };
    load::insert_account(&mut tx, rows, target).await?;
    if rollback {
        Ok(tx.rollback().await?)
    } else {
        Ok(tx.commit().await?)
    }
}
