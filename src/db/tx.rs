//! [`TenantTx`]: a transaction with the tenant variable set transaction-locally.

use std::ops::{Deref, DerefMut};

use sqlx::postgres::{PgConnection, PgPool};
use sqlx::{AssertSqlSafe, Postgres, Transaction};
use tracing::Instrument;

use crate::error::Result;
use crate::policy::TenantVariable;
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
    tx: Transaction<'static, Postgres>,
    scope: TenantScope,
    pooler: bool,
}

impl TenantTx {
    /// Opens a tenant transaction on a connection from `pool`.
    pub(crate) async fn begin(
        pool: &PgPool,
        variable: &TenantVariable,
        scope: &TenantScope,
        pooler: bool,
    ) -> Result<Self> {
        // One simple-protocol round trip: BEGIN and the transaction-local setting together.
        // Both spliced values are validated types: the setting name is two identifiers
        // joined by a dot, the id a positive i64; nothing here is free text. Behind a
        // transaction-mode pooler the server connection may have served another client,
        // whose named statements would clash with ours: they are dropped first.
        let begin = format!(
            "BEGIN;{deallocate} SELECT set_config({variable}, '{id}', true)",
            deallocate = if pooler { " DEALLOCATE ALL;" } else { "" },
            id = scope.id()
        );
        let tx = pool
            .begin_with(AssertSqlSafe(begin))
            .instrument(tracing::debug_span!("tenant_begin", tenant = %scope.id()))
            .await?;
        Ok(Self {
            tx,
            scope: scope.clone(),
            pooler,
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

    /// Whether statements must be pooler-safe: behind a transaction-mode pooler
    /// (`?pgbouncer=true`) the library sends unnamed statements only, which live no longer
    /// than the transaction's server connection is ours.
    pub(crate) fn persistent_statements(&self) -> bool {
        !self.pooler
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
    pub async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
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
    pub async fn rollback(self) -> Result<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}

impl Deref for TenantTx {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        &self.tx
    }
}

impl DerefMut for TenantTx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.tx
    }
}
