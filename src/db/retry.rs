//! [`TenantPool::retry`]: re-running a tenant transaction that lost a serialization race
//! (`40001`) or was chosen as a deadlock victim (`40P01`).
//!
//! Under `SERIALIZABLE` (and `REPEATABLE READ`) isolation PostgreSQL may abort a transaction
//! that conflicts with a concurrent one, and expects the application to run it again; any
//! isolation level can meet a deadlock. The helper runs the closure in a fresh tenant
//! transaction per attempt, commits on success, rolls every failed attempt back, and tries
//! again after a short jittered backoff while the error is one of those two and attempts
//! remain. Every other error is returned at once.

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::marker::PhantomData;
use std::pin::Pin;
use std::time::Duration;

use super::{DbError, TenantPool, TenantTx, TxOptions};
use crate::tenant::TenantScope;

/// `serialization_failure`: a concurrent transaction made this one impossible to serialize.
pub const SERIALIZATION_FAILURE: &str = "40001";

/// `deadlock_detected`: this transaction was chosen to break a deadlock.
pub const DEADLOCK_DETECTED: &str = "40P01";

/// How often [`TenantPool::retry_with`] tries, and how long it waits between attempts.
///
/// The wait before attempt *n + 1* is `base_delay × 2ⁿ⁻¹`, capped at `max_delay`, of which a
/// random half is kept (jitter, so that two transactions that collided do not collide again
/// in step). Default: 3 attempts, 10 ms base, 200 ms cap.
///
/// ```
/// use std::time::Duration;
/// use rls_tenancy::RetryPolicy;
/// let policy = RetryPolicy::default().max_attempts(5).backoff(Duration::from_millis(5), Duration::from_millis(100));
/// assert_eq!(policy.attempts(), 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(200),
        }
    }
}

impl RetryPolicy {
    /// Runs the transaction at most `n` times in all (at least once).
    ///
    /// ```
    /// # use rls_tenancy::RetryPolicy;
    /// assert_eq!(RetryPolicy::default().max_attempts(0).attempts(), 1);
    /// ```
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The first wait and the longest wait between attempts.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use rls_tenancy::RetryPolicy;
    /// let policy = RetryPolicy::default().backoff(Duration::from_millis(1), Duration::from_millis(20));
    /// ```
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base_delay = base;
        self.max_delay = max.max(base);
        self
    }

    /// How many times the transaction runs at most.
    ///
    /// ```
    /// # use rls_tenancy::RetryPolicy;
    /// assert_eq!(RetryPolicy::default().attempts(), 3);
    /// ```
    pub fn attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The wait after failed attempt `attempt` (1-based): exponential, capped, jittered.
    fn delay(&self, attempt: u32) -> Duration {
        let exponential = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let ceiling = exponential.min(self.max_delay);
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let half = nanos / 2;
        // A fresh RandomState has fresh random keys: a cheap, unpredictable jitter.
        let random = RandomState::new().hash_one(attempt);
        Duration::from_nanos(half + random % (nanos - half).saturating_add(1))
    }
}

/// An error a retried transaction can end with: it takes the pool's own errors
/// (`From<DbError>`, for `BEGIN` and `COMMIT`) and shows the database error behind it, so
/// that [`TenantPool::retry`] can tell a serialization failure or a deadlock from anything
/// else. Implemented for [`DbError`] and [`crate::Error`]; implement it for your
/// application's error type to use that in the closure.
///
/// ```
/// use rls_tenancy::{DbError, Retryable};
/// let err = DbError::from(sqlx::Error::PoolTimedOut);
/// assert!(err.database_error().is_some());
/// assert!(!err.is_retryable());
/// ```
pub trait Retryable: From<DbError> {
    /// The database error behind this error, if there is one.
    fn database_error(&self) -> Option<&sqlx::Error>;

    /// Whether it is a serialization failure (`40001`) or a deadlock (`40P01`).
    ///
    /// ```
    /// # use rls_tenancy::{DbError, Retryable};
    /// assert!(!DbError::NoCurrentTenant.is_retryable());
    /// ```
    fn is_retryable(&self) -> bool {
        match self.database_error() {
            Some(sqlx::Error::Database(db)) => matches!(
                db.code().as_deref(),
                Some(SERIALIZATION_FAILURE | DEADLOCK_DETECTED)
            ),
            _ => false,
        }
    }
}

impl Retryable for DbError {
    fn database_error(&self) -> Option<&sqlx::Error> {
        match self {
            DbError::Database(e) => Some(e),
            _ => None,
        }
    }
}

/// The future one attempt of [`TenantPool::retry`] returns: `Box::pin(async { … })` in the
/// closure. It may borrow the transaction (`'tx`) and anything the closure borrows from its
/// surroundings (`'env`), which outlive every attempt.
pub type AttemptFuture<'env, 'tx, T> = Pin<Box<dyn Attempt<'env, 'tx, Output = T> + 'tx>>;

/// A `Send` future that borrows a transaction (`'tx`) and its surroundings (`'env`, which
/// outlives `'tx`); implemented for every such future. It only exists so that
/// [`AttemptFuture`] can say `'env: 'tx` (its `Bound` parameter carries that relation).
pub trait Attempt<'env, 'tx, Bound = PhantomData<&'tx &'env ()>>: Future + Send + 'tx {}

impl<'env: 'tx, 'tx, F: Future + Send + 'tx> Attempt<'env, 'tx> for F {}

impl TenantPool {
    /// Runs `attempt` in a tenant transaction of `scope` begun with `options`, committing
    /// on success; on a serialization failure (`40001`) or a deadlock (`40P01`) it rolls
    /// the attempt back and runs it again in a new transaction, with the default
    /// [`RetryPolicy`] (3 attempts in all, a short jittered backoff).
    ///
    /// The closure runs once per attempt, so it must be safe to repeat: it writes only
    /// through the transaction it is given, and every attempt but the committed one is
    /// rolled back. It returns `Box::pin(async { … })` and may borrow from its surroundings
    /// (use atomics or cells to count across attempts, not `&mut` captures).
    ///
    /// # Errors
    /// The last attempt's error when attempts run out; any other error at once (each
    /// failed attempt rolled back); [`DbError`] (converted) when no transaction can be
    /// begun or the commit fails for another reason.
    ///
    /// ```no_run
    /// use rls_tenancy::{Filtered, IsolationLevel, TenancyDeclaration, TenantPool, TenantScope, TxOptions};
    /// use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # async fn demo(pool: TenantPool, scope: TenantScope) -> rls_tenancy::Result<()> {
    /// let decl = TenancyDeclaration::reference()?;
    /// let open = scope.select(&decl).from("tasks").expr(Expr::col("id").count()).and_where(Expr::col("is_complete").eq(false));
    /// let close = scope.update(&decl, "tasks").value("is_complete", true).and_where(Expr::col("id").eq(3));
    /// let serializable = TxOptions::default().isolation(IsolationLevel::Serializable);
    /// let still_open: i64 = pool
    ///     .retry(&scope, serializable, |tx| Box::pin(async {
    ///         tx.execute(&close).await?;
    ///         let (n,): (i64,) = tx.fetch_one(&open).await?;
    ///         Ok::<_, rls_tenancy::Error>(n)
    ///     }))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn retry<'env, T, E, F>(
        &self,
        scope: &TenantScope,
        options: TxOptions,
        attempt: F,
    ) -> Result<T, E>
    where
        E: Retryable,
        F: for<'tx> FnMut(&'tx mut TenantTx) -> AttemptFuture<'env, 'tx, Result<T, E>>,
    {
        self.retry_with(scope, options, RetryPolicy::default(), attempt)
            .await
    }

    /// [`TenantPool::retry`] with a [`RetryPolicy`] of your own.
    ///
    /// # Errors
    /// As [`TenantPool::retry`].
    ///
    /// ```no_run
    /// use rls_tenancy::{IsolationLevel, RetryPolicy, TenantPool, TenantScope, TxOptions};
    /// # async fn demo(pool: TenantPool, scope: TenantScope) -> rls_tenancy::Result<()> {
    /// let options = TxOptions::default().isolation(IsolationLevel::Serializable);
    /// let n: i64 = pool
    ///     .retry_with(&scope, options, RetryPolicy::default().max_attempts(5), |tx| Box::pin(async {
    ///         let n: i64 = sqlx::query_scalar("SELECT count(*) FROM app.tasks").fetch_one(&mut **tx).await?;
    ///         Ok::<_, rls_tenancy::Error>(n)
    ///     }))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn retry_with<'env, T, E, F>(
        &self,
        scope: &TenantScope,
        options: TxOptions,
        policy: RetryPolicy,
        mut attempt: F,
    ) -> Result<T, E>
    where
        E: Retryable,
        F: for<'tx> FnMut(&'tx mut TenantTx) -> AttemptFuture<'env, 'tx, Result<T, E>>,
    {
        let mut number = 1;
        loop {
            let mut tx = self.begin_with(scope, options).await?;
            let failure = match attempt(&mut tx).await {
                Ok(value) => match tx.commit().await {
                    Ok(()) => return Ok(value),
                    Err(e) => E::from(e),
                },
                Err(e) => {
                    if let Err(rollback) = tx.rollback().await {
                        tracing::warn!(tenant = %scope.id(), error = %rollback, "could not roll back a failed attempt; the rollback is retried when the connection is reused");
                    }
                    e
                }
            };
            if number >= policy.max_attempts || !failure.is_retryable() {
                return Err(failure);
            }
            let delay = policy.delay(number);
            tracing::debug!(tenant = %scope.id(), attempt = number, ?delay, "the tenant transaction lost a serialization race or a deadlock; retrying");
            tokio::time::sleep(delay).await;
            number += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_grows_is_capped_and_keeps_at_least_half() {
        let policy =
            RetryPolicy::default().backoff(Duration::from_millis(10), Duration::from_millis(40));
        for (attempt, ceiling) in [(1, 10), (2, 20), (3, 40), (4, 40), (30, 40)] {
            let ceiling = Duration::from_millis(ceiling);
            for _ in 0..50 {
                let delay = policy.delay(attempt);
                assert!(
                    delay <= ceiling && delay >= ceiling / 2,
                    "{attempt}: {delay:?}"
                );
            }
        }
    }
}
