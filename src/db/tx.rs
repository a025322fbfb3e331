//! [`TenantTx`]: a transaction with the tenant variable set transaction-locally.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::postgres::PgTransactionManager;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{AssertSqlSafe, Postgres, SqlSafeStr};
use sqlx_core::transaction::TransactionManager;
use tracing::Instrument;

use super::DbError;
use super::begin::BeginPlan;
use super::health::is_connection_lost;
use super::recycle::Recycler;
use crate::policy::TenancyDeclaration;
use crate::tenant::TenantScope;

/// A transaction in which the database sees exactly one tenant.
///
/// The tenant variable is set with `set_config(name, id, is_local => true)` in the same round
/// trip as `BEGIN`, so it lives and dies with the transaction: a connection handed back to
/// the pool carries no tenant, which also makes pgbouncer's transaction mode safe. Dropping a
/// `TenantTx` without [`TenantTx::commit`] or [`TenantTx::rollback`] closes its connection,
/// which rolls the transaction back on the server; the connection is not reused.
///
/// The transaction ends with a release check in the same message as its `COMMIT` or
/// `ROLLBACK`: the session's advisory locks are released, and a connection that would carry
/// anything else into its next use (a held cursor, `LISTEN`, a session setting, a hand-made
/// prepared statement, a temporary table) is closed with a warning.
///
/// `sqlx::Connection::begin(&mut *tx)` makes a `SAVEPOINT`, as inside any sqlx transaction.
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
    /// The declaration of the pool the transaction came from.
    declaration: Arc<TenancyDeclaration>,
    /// Under the schema strategy: counts the tenants each connection served, and says when
    /// to close one (the release check then also returns the server process id).
    recycler: Option<Arc<Recycler>>,
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
    /// `BEGIN` and every transaction-local setting of `plan`, through sqlx's transaction
    /// manager, so that `sqlx::Connection::begin(&mut *tx)` inside makes a `SAVEPOINT`. On
    /// failure the connection is closed, never reused; so it is when this future is dropped
    /// before the answer came (a cancelled request), quietly.
    pub(crate) async fn begin(
        conn: PoolConnection<Postgres>,
        plan: &BeginPlan,
        scope: &TenantScope,
        release_check: Arc<str>,
        pooler: bool,
        declaration: Arc<TenancyDeclaration>,
        recycler: Option<Arc<Recycler>>,
    ) -> Result<Self, BeginFailed> {
        // Open from here on: dropped before the answer, the connection is closed.
        let mut tx = Self {
            conn,
            scope: scope.clone(),
            release_check,
            open: true,
            pooler,
            declaration,
            recycler,
        };
        let statement = AssertSqlSafe(plan.sql()).into_sql_str();
        let begun = PgTransactionManager::begin(&mut tx.conn, Some(statement))
            .instrument(tracing::debug_span!("tenant_begin", tenant = %scope.id()))
            .await;
        match begun {
            Ok(()) => Ok(tx),
            Err(error) => {
                tx.open = false;
                tx.conn.close_on_drop();
                Err(BeginFailed {
                    connection_lost: is_connection_lost(&error),
                    error,
                })
            }
        }
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

    /// The declaration of the pool this transaction came from: what the scoped builder
    /// needs to name the tenant's tables (qualified by the shared schema under
    /// [`crate::Strategy::Rls`], unqualified under [`crate::Strategy::Schema`], where the
    /// transaction's `search_path` names the tenant's schema).
    ///
    /// ```no_run
    /// # async fn demo(pool: rls_tenancy::TenantPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
    /// let mut tx = pool.begin(&scope).await?;
    /// let select = scope.select(tx.declaration()).from("projects").columns(["name"]);
    /// # Ok(()) }
    /// ```
    pub fn declaration(&self) -> &TenancyDeclaration {
        &self.declaration
    }

    /// [`TenantTx::declaration`], shared: for a caller that builds statements while it
    /// borrows the transaction mutably to run them.
    #[cfg(feature = "demo")]
    pub(crate) fn shared_declaration(&self) -> Arc<TenancyDeclaration> {
        Arc::clone(&self.declaration)
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

    /// Ends the transaction with `command` and runs the release check (`super::release`) in
    /// the same simple-query message: after the transaction, on the same server connection,
    /// at no extra round trip. The message ends with a `BEGIN`, which keeps that server
    /// connection ours behind a pooler and matches the transaction depth sqlx counts; the
    /// `ROLLBACK` that ends it goes with the pool's release ping. A connection that carries
    /// anything is closed with a warning naming what it carried.
    async fn end(mut self, command: &'static str) -> Result<(), DbError> {
        if PgTransactionManager::get_transaction_depth(&self.conn) != 1 {
            // A savepoint of `sqlx::Connection::begin` left open (leaked): its depth would
            // be wrong for the next user. Ending here would also be wrong; closing rolls back.
            self.open = false;
            self.conn.close_on_drop();
            return Err(DbError::SavepointOpen);
        }
        let sql = match self.recycler {
            None => format!("{command}; {}; BEGIN", self.release_check),
            Some(_) => format!(
                "{command}; SELECT ({}), pg_backend_pid(); BEGIN",
                self.release_check
            ),
        };
        // Still open while the message is under way: dropped now, the connection is closed.
        let answer = sqlx::raw_sql(AssertSqlSafe(sql))
            .fetch_optional(&mut *self.conn)
            .await
            .and_then(|row| {
                let left = row
                    .as_ref()
                    .map(|row| sqlx::Row::try_get::<String, _>(row, 0))
                    .transpose()?;
                Ok((left, row))
            });
        self.open = false;
        match answer {
            Ok((Some(left), row)) if left.is_empty() => {
                if self.recycled(row.as_ref()) {
                    self.conn.close_on_drop();
                } else {
                    PgTransactionManager::start_rollback(&mut self.conn);
                }
                Ok(())
            }
            Ok((left, _)) => {
                tracing::warn!(
                    tenant = %self.scope.id(),
                    left = left.as_deref().unwrap_or("no answer from the release check"),
                    "a tenant transaction left state on its connection that would outlive it; the connection is closed, not reused"
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

    /// Whether the connection has now served more distinct tenants than the pool lets one
    /// serve (schema strategy; `row` is the release check's, with the server process id).
    fn recycled(&self, row: Option<&PgRow>) -> bool {
        let (Some(recycler), Some(row)) = (&self.recycler, row) else {
            return false;
        };
        match sqlx::Row::try_get::<i32, _>(row, 1) {
            Ok(pid) => {
                let recycle = recycler.served(pid, self.scope.id());
                if recycle {
                    tracing::debug!(
                        pid,
                        "the connection served its share of tenant schemas; closing it"
                    );
                }
                recycle
            }
            Err(_) => false,
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
