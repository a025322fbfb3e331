//! [`TenantTx`]: a transaction with the tenant variable set transaction-locally.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Postgres};
use tracing::Instrument;

use super::DbError;
use super::begin::BeginPlan;
use super::health::is_connection_lost;
use crate::tenant::TenantScope;

/// A transaction in which the database sees exactly one tenant.
///
/// The tenant variable is set with `set_config(name, id, is_local => true)` in the same round
/// trip as `BEGIN`, so it lives and dies with the transaction: a connection handed back to
/// the pool carries no tenant, which also makes pgbouncer's transaction mode safe. Dropping a
/// `TenantTx` without [`TenantTx::commit`] or [`TenantTx::rollback`] closes its connection,
/// which rolls the transaction back on the server; the connection is not reused.
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
    /// The release check run in the round trip that ends the transaction.
    release_check: Arc<str>,
    /// Whether the transaction still has to be ended (committed or rolled back).
    open: bool,
    /// Behind a transaction-mode pooler: statements must be unnamed.
    pooler: bool,
}

/// Why [`TenantTx::begin`] failed, and whether the connection was lost before anything of
/// the transaction ran (so a retry on another connection is safe).
#[derive(Debug)]
pub(crate) struct BeginFailed {
    pub(crate) error: sqlx::Error,
    pub(crate) connection_lost: bool,
}

impl TenantTx {
    /// Opens a tenant transaction on `conn`: one simple-protocol round trip carrying
    /// `BEGIN` and every transaction-local setting of `plan`. On failure the connection is
    /// closed, never reused.
    pub(crate) async fn begin(
        mut conn: PoolConnection<Postgres>,
        plan: &BeginPlan,
        scope: &TenantScope,
        release_check: Arc<str>,
        pooler: bool,
    ) -> Result<Self, BeginFailed> {
        let begun = sqlx::raw_sql(AssertSqlSafe(plan.sql()))
            .execute(&mut *conn)
            .instrument(tracing::debug_span!("tenant_begin", tenant = %scope.id()))
            .await;
        if let Err(error) = begun {
            conn.close_on_drop();
            return Err(BeginFailed {
                connection_lost: is_connection_lost(&error),
                error,
            });
        }
        Ok(Self {
            conn,
            scope: scope.clone(),
            release_check,
            open: true,
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

    /// Whether the library's statements may be named and cached on the connection: not
    /// behind a transaction-mode pooler (`?pgbouncer=true`), where an unnamed statement
    /// lives no longer than the transaction's server connection is ours.
    pub(crate) fn persistent_statements(&self) -> bool {
        !self.pooler
    }

    /// Commits the transaction. The same round trip checks that the connection carries
    /// nothing of the transaction any more; if it does, the connection is closed instead of
    /// going back to the pool.
    ///
    /// # Errors
    /// The database's error if the commit fails (for example a deferred constraint); the
    /// connection is then closed.
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::TenantPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
    /// pool.begin(&scope).await?.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn commit(self) -> Result<(), DbError> {
        self.end("COMMIT").await
    }

    /// Rolls the transaction back explicitly, with the same release check as
    /// [`TenantTx::commit`]. Dropping a `TenantTx` instead closes its connection.
    ///
    /// # Errors
    /// The database's error if the rollback cannot be sent; the connection is then closed.
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::TenantPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
    /// pool.begin(&scope).await?.rollback().await?;
    /// # Ok(()) }
    /// ```
    pub async fn rollback(self) -> Result<(), DbError> {
        self.end("ROLLBACK").await
    }

    /// Ends the transaction with `command` and runs the release check in the same
    /// simple-query message: after the transaction, on the same server connection (a
    /// pooler forwards one message to one server connection), at no extra round trip.
    async fn end(mut self, command: &'static str) -> Result<(), DbError> {
        self.open = false;
        let sql = format!("{command}; {}", self.release_check);
        let clean: Result<Option<bool>, sqlx::Error> = sqlx::raw_sql(AssertSqlSafe(sql))
            .fetch_optional(&mut *self.conn)
            .await
            .and_then(|row| row.map(|row| sqlx::Row::try_get(&row, 0)).transpose());
        match clean {
            Ok(Some(true)) => Ok(()),
            Ok(_) => {
                tracing::error!(
                    tenant = %self.scope.id(),
                    "a connection came back with the tenant set at session level; it is closed, not reused"
                );
                self.conn.close_on_drop();
                Ok(())
            }
            Err(error) => {
                self.conn.close_on_drop();
                Err(error.into())
            }
        }
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
            // Not ended: a cancelled request, a panic, an early return. The connection may be
            // mid-statement; closing it rolls the transaction back on the server, and nothing
            // of it can reach the next user of the pool.
            tracing::debug!(tenant = %self.scope.id(), "tenant transaction dropped; its connection is closed");
            self.conn.close_on_drop();
        }
    }
}
