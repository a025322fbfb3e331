//! `rls-seed --strategy database`: each account in a database of its own, on the server
//! [`seed_placement`] gives it.
//!
//! One task creates the accounts in index order through the tenant lifecycle
//! ([`TenantLifecycle::create`]: the registry row, and the database cloned from the server's
//! template; the lifecycle's create lock makes creates take turns anyway, and index order
//! gives the same ids on a fresh control database). Each server has a queue and `--jobs`
//! loaders: a loader generates the account's rows and writes them in the account's own
//! tenant transaction in its own database. A loader that fails drops the tenant it was
//! loading, so an account is whole or absent, and the run stops after the accounts already
//! created are loaded.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sqlx::PgConnection;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;

use super::generate::{Generator, IdBases};
use super::load::{self, Target};
use super::options::{DatabasePlan, SeedPlan, copy_migrator};
use super::progress::Progress;
use super::spread::seed_placement;
use super::{Result, SeedError, SeedReport, preflight, verify_resumable};
use crate::connect::{self, DatabaseUrl, Server, ServerSet};
use crate::db::{PoolSetOptions, TenantPool, TenantPoolOptions};
use crate::lifecycle::{NewTenant, TenantLifecycle};
use crate::migrate::MigrateOptions;
use crate::policy::{Strategy, TenancyDeclaration, TenantContextMode};
use crate::tenant::{TenantId, TenantScope};

/// Seeds `plan.accounts` tenant databases over `databases.servers`, the registry in the
/// control database at `url` (the deploy role).
pub(super) async fn seed_databases(
    url: &DatabaseUrl,
    plan: &SeedPlan,
    databases: &DatabasePlan,
) -> Result<SeedReport> {
    let servers = &databases.servers;
    let placement = seed_placement(plan.accounts, servers)?;
    let mut control = connect::connect(url).await?;
    preflight::check_login(&mut control).await?;
    let registered = registered(&mut control).await?;
    let context = control_context(&mut control).await?;
    let existing = check_existing(&registered, &placement, plan)?;
    check_room(&registered, &placement, servers, plan.accounts)?;
    for server in servers.iter() {
        check_server(server).await?;
    }
    let declaration = TenancyDeclaration::reference()?.with_strategy(Strategy::Database);
    let generator = Generator::new(plan.seed, plan.distribution);
    let jobs = plan.jobs;
    let budget = PoolSetOptions::default()
        .max_connections(jobs.saturating_mul(servers.len() as u32))
        .max_per_server(jobs)
        .max_per_database(1);
    let pool = TenantPool::connect_servers(
        url,
        servers,
        TenantPoolOptions::new(declaration.clone())
            .deploy_role_writer()
            .max_connections(1)
            .pool_set(budget),
    )
    .await?;
    if let Some(first) = existing.first() {
        verify_resumable(&mut control, &pool, &generator, *first, false).await?;
    }
    drop(control);
    let mut migrate = MigrateOptions::new(url.clone(), databases.tenant.runtime_role.as_str())
        .map_err(|e| SeedError::InvalidOption {
            option: "--runtime-role",
            reason: e.to_string(),
        })?;
    migrate = migrate.tenant_context(context);
    if let Some(key) = &databases.tenant_key {
        migrate = migrate.tenant_key(key.clone());
    }
    let lifecycle = TenantLifecycle::connect(declaration, migrate)
        .await?
        .servers(servers.clone(), databases.pattern.clone())
        .tenant_migrations(copy_migrator(&databases.tenant.migrations));
    let todo: Vec<(u64, &Server)> = placement
        .iter()
        .enumerate()
        .map(|(index, server)| (index as u64, *server))
        .filter(|(index, _)| !existing.contains(index))
        .collect();
    let progress = Progress::new(todo.len() as u64, plan.progress);
    let run = Run {
        pool: pool.clone(),
        lifecycle: Arc::new(lifecycle),
        generator,
        progress: progress.clone(),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let result = run.all(todo, servers, jobs).await;
    progress.finish();
    run.lifecycle.close().await;
    pool.close().await;
    let mut report = result?;
    report.already_present = existing.len() as u64;
    Ok(report)
}

/// The tenant context the control database was migrated with (`rls-migrate
/// --tenant-context`): a server's template database made here gets the same, so that the
/// application's pool, which opens both, finds one context everywhere.
async fn control_context(control: &mut PgConnection) -> Result<TenantContextMode> {
    let signed: bool = sqlx::query_scalar(
        "SELECT pg_catalog.to_regprocedure('rls_tenancy.enter(text,text,text,bigint,bigint,text)') IS NOT NULL",
    )
    .fetch_one(control)
    .await?;
    Ok(if signed {
        TenantContextMode::Signed
    } else {
        TenantContextMode::Plain
    })
}

/// The registry's tenants: slug and server.
async fn registered(control: &mut PgConnection) -> Result<Vec<(String, Option<String>)>> {
    let has_column: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                         WHERE attrelid = to_regclass('app.accounts') AND attname = 'server_name'
                           AND NOT attisdropped)",
    )
    .fetch_one(&mut *control)
    .await?;
    if !has_column {
        return Err(SeedError::NotMigrated {
            what: "the registry's server_name column (the database strategy)".into(),
        });
    }
    Ok(
        sqlx::query_as("SELECT slug::text, server_name::text FROM app.accounts ORDER BY id")
            .fetch_all(&mut *control)
            .await?,
    )
}

/// The indexes of this seed's accounts that exist, each checked to be on the server the
/// rule gives it; refused without `--resume`.
fn check_existing(
    registered: &[(String, Option<String>)],
    placement: &[&Server],
    plan: &SeedPlan,
) -> Result<Vec<u64>> {
    let mut existing = Vec::new();
    for (slug, server) in registered {
        let Some(index) = seeded_index(slug, plan.accounts) else {
            continue;
        };
        let planned = placement[index as usize].name().as_str();
        if server.as_deref() != Some(planned) {
            return Err(SeedError::Mismatch {
                slug: slug.clone(),
                reason: format!(
                    "it is on server {}, this server list places it on {planned}",
                    server.as_deref().unwrap_or("(none)")
                ),
            });
        }
        existing.push(index);
    }
    existing.sort_unstable();
    if let (Some(first), Some(last)) = (existing.first(), existing.last())
        && !plan.resume
    {
        return Err(SeedError::Conflict {
            existing: existing.len() as u64,
            requested: plan.accounts,
            first: Generator::slug(*first),
            last: Generator::slug(*last),
        });
    }
    Ok(existing)
}

/// The index of a slug this seed makes (`tenant-N`, N below `accounts`).
fn seeded_index(slug: &str, accounts: u64) -> Option<u64> {
    let digits = slug.strip_prefix("tenant-")?;
    let index: u64 = digits.parse().ok()?;
    (index.to_string() == digits && index < accounts).then_some(index)
}

/// Refuses a run that would put a server past its `max_tenants`, counting the tenants other
/// than this seed's that it already holds.
fn check_room(
    registered: &[(String, Option<String>)],
    placement: &[&Server],
    servers: &ServerSet,
    accounts: u64,
) -> Result<()> {
    let mut others: HashMap<&str, u64> = HashMap::new();
    for (slug, server) in registered {
        if let (None, Some(server)) = (seeded_index(slug, accounts), server) {
            *others.entry(server.as_str()).or_default() += 1;
        }
    }
    for server in servers.iter() {
        let Some(max) = server.tenant_limit() else {
            continue;
        };
        let name = server.name().as_str();
        let placed = placement
            .iter()
            .filter(|s| s.name() == server.name())
            .count() as u64;
        let other = others.get(name).copied().unwrap_or(0);
        if other + placed > u64::from(max) {
            return Err(SeedError::InvalidOption {
                option: "--accounts",
                reason: format!(
                    "server {name} holds {other} other tenants and this seed places {placed} there, past its max_tenants {max}: seed fewer accounts or raise max_tenants"
                ),
            });
        }
    }
    Ok(())
}

/// Refuses an unreachable server, or a deploy role there that may not create databases.
async fn check_server(server: &Server) -> Result<()> {
    let mut admin = connect::connect(&server.url().with_database("postgres")).await?;
    let (role, may_create): (String, bool) = sqlx::query_as(
        "SELECT rolname::text, rolcreatedb FROM pg_catalog.pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut admin)
    .await?;
    if !may_create {
        return Err(SeedError::Role {
            role,
            reason: format!(
                "it may not create databases on server {}, and the database strategy gives each account its own (ALTER ROLE … CREATEDB)",
                server.name()
            ),
        });
    }
    Ok(())
}

/// What the creator and the loaders share.
#[derive(Clone)]
struct Run {
    pool: TenantPool,
    lifecycle: Arc<TenantLifecycle>,
    generator: Generator,
    progress: Progress,
    /// Set by the first failure: no more accounts are created.
    stop: Arc<AtomicBool>,
}

/// An account created and waiting for its rows: its index and registry id.
type Created = (u64, TenantId);

impl Run {
    /// Creates `todo` in order and loads each, `jobs` at a time per server.
    async fn all(
        &self,
        todo: Vec<(u64, &Server)>,
        servers: &ServerSet,
        jobs: u32,
    ) -> Result<SeedReport> {
        let mut tasks: JoinSet<Result<SeedReport>> = JoinSet::new();
        let mut queues = HashMap::new();
        for server in servers.iter() {
            let (sender, receiver) = mpsc::channel::<Created>(jobs as usize);
            let receiver = Arc::new(Mutex::new(receiver));
            for _ in 0..jobs {
                let (run, receiver) = (self.clone(), Arc::clone(&receiver));
                tasks.spawn(async move { run.load_queue(&receiver).await });
            }
            queues.insert(server.name().to_string(), sender);
        }
        let order: Vec<(u64, String)> = todo
            .into_iter()
            .map(|(index, server)| (index, server.name().to_string()))
            .collect();
        let run = self.clone();
        tasks.spawn(async move {
            run.create_all(order, queues).await?;
            Ok(SeedReport::default())
        });
        let mut report = SeedReport::default();
        let mut failure = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(part)) => report.merge(&part),
                Ok(Err(e)) => {
                    failure.get_or_insert(e);
                }
                Err(e) => {
                    self.stop.store(true, Ordering::SeqCst);
                    failure.get_or_insert(SeedError::Task(e.to_string()));
                }
            }
        }
        failure.map_or(Ok(report), Err)
    }

    /// Creates each account through the lifecycle, in order, and queues it on its server.
    async fn create_all(
        &self,
        order: Vec<(u64, String)>,
        queues: HashMap<String, mpsc::Sender<Created>>,
    ) -> Result<()> {
        for (index, server) in order {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            let new = NewTenant::new(Generator::slug(index).parse()?)
                .name(self.generator.name(index))
                .server(server.parse()?);
            let created = match self.lifecycle.create(&new).await {
                Ok(created) => created,
                Err(e) => {
                    self.stop.store(true, Ordering::SeqCst);
                    return Err(e.into());
                }
            };
            let queued = match queues.get(&server) {
                Some(queue) => queue.send((index, created.id)).await.is_ok(),
                None => false,
            };
            // Its loaders all stopped on a failure: the account is left whole by dropping it.
            if !queued {
                self.drop_account(index).await;
                break;
            }
        }
        Ok(())
    }

    /// Loads the accounts of one server's queue until it closes or one fails.
    async fn load_queue(&self, queue: &Mutex<mpsc::Receiver<Created>>) -> Result<SeedReport> {
        let mut report = SeedReport::default();
        loop {
            let next = queue.lock().await.recv().await;
            let Some((index, id)) = next else { break };
            match self.load(index, id).await {
                Ok(counts) => {
                    self.progress.account_done(counts.rows());
                    report.add_account(&counts);
                }
                Err(e) => {
                    self.stop.store(true, Ordering::SeqCst);
                    self.drop_account(index).await;
                    return Err(e);
                }
            }
        }
        Ok(report)
    }

    /// Generates account `index` and writes its rows in its own tenant transaction.
    async fn load(&self, index: u64, id: TenantId) -> Result<super::generate::AccountCounts> {
        let account = id.as_i64().ok_or_else(|| SeedError::InvalidOption {
            option: "--strategy",
            reason: "the registry's ids are not integers; rls-seed seeds the reference schema"
                .into(),
        })?;
        let generator = self.generator.clone();
        let ids = IdBases {
            account,
            user: 1,
            project: 1,
            task: 1,
            subtask: 1,
        };
        let rows = tokio::task::spawn_blocking(move || generator.account(index, ids))
            .await
            .map_err(|e| SeedError::Task(e.to_string()))?;
        let scope = TenantScope::new(id, rows.slug.parse()?);
        let mut tx = self.pool.begin(&scope).await?;
        load::insert_account(&mut tx, &rows, Target::Database).await?;
        tx.commit().await?;
        Ok(rows.counts())
    }

    /// Drops account `index` (its database and registry row) after a failure, so that no
    /// account stays half made; a failure to drop is logged with what to run.
    async fn drop_account(&self, index: u64) {
        let slug = Generator::slug(index);
        let Ok(parsed) = slug.parse() else { return };
        if let Err(e) = self.lifecycle.drop_tenant(&parsed).await {
            tracing::warn!(error = %e, slug, "could not drop the tenant whose rows failed to load: run rls-tenant drop SLUG --yes");
        }
    }
}
