//! The database strategy's side of [`TenantPool`](super::TenantPool): each tenant's
//! transactions run in the tenant's own database, on the server the registry names, through
//! a [`PoolSet`] under one connection budget.
//!
//! The control pool (`--database-url`) reads the registry; [`DatabaseDirectory`] turns a
//! tenant id into its (server, database), cached and invalidated by the registry's `NOTIFY`;
//! the set hands out a connection of that database. When a database's pool first opens, the
//! same checks as a one-database pool's opening run there, once: the guard on the runtime
//! role, the clean settings the release check compares with, and the signed-context probe.

use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgPool, Postgres};

use super::begin::BeginPlan;
use super::pool::{Entry, GuardSetting, enforce_guard, probe_signed};
use super::release::{check_installed, clean_settings, release_check};
use super::{DbError, PoolSet, PoolSetOptions, TenantTx};
use crate::connect::ServerSet;
use crate::placement::DatabaseDirectory;
use crate::policy::{
    TenancyDeclaration, TenantContext, TenantContextMode, TenantVariable, signed_context_installed,
};
use crate::tenant::TenantScope;

/// What a tenant database's first opening checked, kept for its transactions.
#[derive(Debug)]
pub(crate) struct Checked {
    /// The release check, with this database's clean settings.
    release_check: Arc<str>,
}

/// How each tenant database is checked when its pool first opens.
#[derive(Debug)]
struct Setup {
    guard: GuardSetting,
    variable: TenantVariable,
    entry: Entry,
    context: TenantContext,
}

/// The tenant databases of a [`super::TenantPool`] under the database strategy.
#[derive(Debug, Clone)]
pub(crate) struct Databases {
    set: PoolSet<Checked>,
    directory: Arc<DatabaseDirectory>,
}

impl Databases {
    /// Over `servers` (the runtime role's URLs, each with its own connection limit if
    /// configured), finding tenants through `directory`.
    pub(super) fn new(
        servers: &ServerSet,
        options: PoolSetOptions,
        directory: Arc<DatabaseDirectory>,
        guard: GuardSetting,
        variable: TenantVariable,
        entry: Entry,
        context: TenantContext,
    ) -> Result<Self, DbError> {
        let guard = match guard {
            GuardSetting::Run(options) => GuardSetting::Run(Box::new(options.tenant_database())),
            other => other,
        };
        let setup = Arc::new(Setup {
            guard,
            variable,
            entry,
            context,
        });
        let set = PoolSet::with_limits(
            options,
            servers.iter().map(|server| {
                (
                    server.name().as_str(),
                    server.url().clone(),
                    server.connection_limit(),
                )
            }),
            move |pool| check_database(pool, Arc::clone(&setup)),
        )?;
        Ok(Self { set, directory })
    }

    /// Begins `plan` for `scope` in the tenant's database. A connection found dead at
    /// `BEGIN` (nothing of the transaction ran) is replaced once, by one that answers a ping
    /// (the database's other idle connections may have been ended too: an administrator, a
    /// restore, a drop and re-create of that one database); lost again, the server is taken
    /// to be down, so its other tenants' requests fail at once (503) until it is back.
    pub(super) async fn begin(
        &self,
        scope: &TenantScope,
        plan: &BeginPlan,
        declaration: &Arc<TenancyDeclaration>,
    ) -> Result<TenantTx, DbError> {
        let place = self.directory.place_of(scope.id()).await?;
        let (server, database) = (place.server.as_str(), place.database.as_str());
        let mut retried = false;
        loop {
            let (conn, checked) = if retried {
                self.live(server, database).await?
            } else {
                self.set.acquire(server, database).await?
            };
            let begun = TenantTx::begin(
                conn,
                plan,
                scope,
                Arc::clone(&checked.release_check),
                false,
                Arc::clone(declaration),
                None,
            )
            .await;
            match begun {
                Ok(tx) => return Ok(tx),
                Err(failed) if failed.connection_lost && !retried => {
                    tracing::debug!(error = %failed.error, server, "the connection was dead at BEGIN; beginning once more");
                    retried = true;
                }
                Err(failed) => {
                    if failed.connection_lost {
                        self.set.mark_down(server);
                    }
                    return Err(failed.error.into());
                }
            }
        }
    }

    /// A connection of `database` that answers a ping: the dead idle ones are closed, at most
    /// as many as the database's pool holds, before the pool opens a new one.
    async fn live(
        &self,
        server: &str,
        database: &str,
    ) -> Result<(PoolConnection<Postgres>, Arc<Checked>), DbError> {
        for _ in 0..self.set.per_database() {
            let (mut conn, checked) = self.set.acquire(server, database).await?;
            if conn.ping().await.is_ok() {
                return Ok((conn, checked));
            }
            conn.close_on_drop();
        }
        self.set.acquire(server, database).await
    }

    /// The set's pools, budgets and churn.
    pub(super) fn set(&self) -> &PoolSet<Checked> {
        &self.set
    }
}

/// The checks a tenant database's pool runs when it first opens: the database has the
/// tenant context the pool enters with (plain or signed), the guard accepts the runtime
/// role there, the release check function is installed and the check learns its clean
/// settings, and a signed transaction is accepted.
async fn check_database(pool: PgPool, setup: Arc<Setup>) -> Result<Checked, DbError> {
    let signed = {
        let mut conn = pool.acquire().await?;
        signed_context_installed(&mut conn).await?
    };
    let expected = setup.context.mode() == TenantContextMode::Signed;
    if signed != expected {
        return Err(DbError::TenantContext {
            reason: format!(
                "the tenant database {} has the {} tenant context and the control database the {}: migrate both the same way (rls-migrate --strategy database)",
                pool.connect_options().get_database().unwrap_or("?"),
                if signed { "signed" } else { "plain" },
                if expected { "signed" } else { "plain" },
            ),
        });
    }
    match &setup.guard {
        // The deploy role's writing pool (seeding) warned once when it opened; each of its
        // thousands of tenant databases checks the login only, without repeating it.
        GuardSetting::DeployRoleWriter => {
            crate::guard::enforce_writer(&mut *pool.acquire().await?).await?;
        }
        guard => enforce_guard(&pool, guard, &setup.variable, false).await?,
    }
    check_installed(&mut *pool.acquire().await?).await?;
    let release_check = release_check(&setup.variable, false, &clean_settings(&pool, false).await?);
    if signed {
        probe_signed(&pool, false, &setup.entry, &setup.context).await?;
    }
    Ok(Checked { release_check })
}
