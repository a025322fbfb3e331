//! [`TenantTx`]: a transaction with the tenant variable set transaction-locally.

use std::ops::{Deref, DerefMut};

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, PgPool, PgTransactionManager};
use sqlx::{AssertSqlSafe, Postgres, SqlSafeStr};
use sqlx_core::transaction::TransactionManager;
use tracing::Instrument;

use super::DbError;
use super::begin::BeginPlan;
use crate::tenant::TenantScope;

/// A transaction in which the database sees exactly one tenant.
///
/// The tenant variable is set with `set_config(name, id, is_local => true)` in the same round
/// trip as `BEGIN`, so it lives and dies with the transaction: a connection handed back to
/// the pool carries no tenant, which also makes pgbouncer's transaction mode safe. Dropping a
/// `TenantTx` without [`TenantTx::commit`] rolls it back.
///
/// It dereferences to [`PgConnection`], so it is the executor for sqlx queries:
///
/// ```no_run
/// # async fn demo(pool: rls_tenancy::TenantPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
/// let mut tx = pool.begin(&scope).await?;
/// let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM app.projects")
///     .fetch_one(&mut *tx)
///     .await?; // only this tenant's projects are counted
/// tx.commit().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TenantTx {
    conn: PoolConnection<Postgres>,
    scope: TenantScope,
    /// Whether the transaction still has to be ended (committed or rolled back).
    open: bool,
}

impl TenantTx {
    /// Opens a tenant transaction on a connection from `pool`: one simple-protocol round
    /// trip carrying `BEGIN` and every transaction-local setting of `plan`.
    ///
    /// It is begun through sqlx's own transaction manager, so a `TenantTx` dropped without
    /// commit or rollback has its `ROLLBACK` queued on the connection, sent before the
    /// connection serves anyone else.
    pub(crate) async fn begin(
        pool: &PgPool,
        plan: &BeginPlan,
        scope: &TenantScope,
    ) -> Result<Self, DbError> {
        let mut conn = pool.acquire().await?;
        PgTransactionManager::begin(&mut conn, Some(AssertSqlSafe(plan.sql()).into_sql_str()))
            .instrument(tracing::debug_span!("tenant_begin", tenant = %scope.id()))
            .await?;
        Ok(Self {
            conn,
            scope: scope.clone(),
            open: true,
        })
    }

    /// The tenant this transaction sees.
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::TenantPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
    /// let tx = pool.begin(&scope).await?;
    /// assert_eq!(tx.scope(), &scope);
    /// # Ok(()) }
    /// ```
    pub fn scope(&self) -> &TenantScope {
        &self.scope
    }

    /// Commits the transaction.
    ///
    /// # Errors
    /// The database's error if the commit fails (for example a deferred constraint).
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::TenantPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
    /// pool.begin(&scope).await?.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn commit(mut self) -> Result<(), DbError> {
        PgTransactionManager::commit(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }

    /// Rolls the transaction back explicitly (dropping it does the same).
    ///
    /// # Errors
    /// The database's error if the rollback cannot be sent.
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::TenantPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
    /// pool.begin(&scope).await?.rollback().await?;
    /// # Ok(()) }
    /// ```
    pub async fn rollback(mut self) -> Result<(), DbError> {
        PgTransactionManager::rollback(&mut self.conn).await?;
        self.open = false;
        Ok(())
    }
}

impl Deref for TenantTx {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for TenantTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

impl Drop for TenantTx {
    fn drop(&mut self) {
        if self.open {
            // Queues ROLLBACK on the connection; it is flushed before the pool hands the
            // connection out again (sqlx's own rollback-on-drop).
            PgTransactionManager::start_rollback(&mut self.conn);
        }
    }
}
