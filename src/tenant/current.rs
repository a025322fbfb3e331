//! The current tenant of a task: [`TenantScope::scope`], [`TenantScope::current`] and
//! [`spawn`], for code that runs beyond a request (background jobs, fan-out work).
//!
//! The current tenant is a tokio task-local: it belongs to the future it was set for and
//! ends with it. A plain `tokio::spawn` starts a task with *no* current tenant (task-locals do
//! not cross tasks); [`spawn`] carries the spawning task's tenant into the new task.

use std::future::Future;

use tokio::task::JoinHandle;

use super::TenantScope;

tokio::task_local! {
    static CURRENT: TenantScope;
}

impl TenantScope {
    /// Runs `fut` with this tenant as the current one ([`TenantScope::current`]); inside a
    /// nested `scope` call the inner tenant is current, and after `fut` none is.
    ///
    /// ```
    /// use rls_tenancy::{TenantId, TenantScope};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), rls_tenancy::TenantError> {
    /// let acme = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let seen = acme.scope(async { TenantScope::current() }).await;
    /// assert_eq!(seen, Some(acme));
    /// assert_eq!(TenantScope::current(), None);
    /// # Ok(()) }
    /// ```
    pub fn scope<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> {
        CURRENT.scope(self.clone(), fut)
    }

    /// The tenant the running task is scoped to, if any.
    ///
    /// ```
    /// # use rls_tenancy::TenantScope;
    /// assert_eq!(TenantScope::current(), None); // outside any scope
    /// ```
    pub fn current() -> Option<TenantScope> {
        CURRENT.try_with(Clone::clone).ok()
    }
}

/// Spawns `fut` on the tokio runtime with the current tenant, if there is one, as its
/// current tenant: `tokio::spawn` for tenant-scoped work. Without a current tenant the task
/// has none either (and cannot open a tenant transaction through
/// `TenantPool::begin_current`).
///
/// ```
/// use rls_tenancy::{TenantId, TenantScope};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let acme = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
/// let (carried, plain) = acme
///     .scope(async {
///         let carried = rls_tenancy::spawn(async { TenantScope::current() });
///         let plain = tokio::spawn(async { TenantScope::current() });
///         (carried.await, plain.await)
///     })
///     .await;
/// assert_eq!(carried?, Some(acme));
/// assert_eq!(plain?, None);
/// # Ok(()) }
/// ```
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match TenantScope::current() {
        Some(scope) => tokio::spawn(CURRENT.scope(scope, fut)),
        None => tokio::spawn(fut),
    }
}
