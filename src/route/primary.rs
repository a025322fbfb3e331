//! Where a task's reads must go: [`use_primary`], and the pin a write leaves behind.

use std::future::Future;

use super::Lsn;

/// What a task asks of its reads, beyond the pool's own rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadRule {
    /// Every read goes to the primary.
    Primary,
    /// A read may go to a replica that has replayed at least this WAL position; else the
    /// primary.
    AtLeast(Lsn),
}

tokio::task_local! {
    static READ_RULE: ReadRule;
}

/// Runs `work` with every [`crate::RoutingPool::read`] it makes going to the primary, as
/// Django's `use_primary_db` does: for code that must see the latest committed state (just
/// after a write, before a decision). Tasks spawned by `work` are not covered (a tokio
/// task-local); wrap their futures too.
///
/// ```no_run
/// # async fn demo(pool: rls_tenancy::RoutingPool, scope: rls_tenancy::TenantScope) -> rls_tenancy::Result<()> {
/// use rls_tenancy::{ServedBy, use_primary};
/// let tx = use_primary(async { pool.read(&scope).await }).await?;
/// assert_eq!(tx.served_by(), ServedBy::Primary);
/// # Ok(()) }
/// ```
pub async fn use_primary<F: Future>(work: F) -> F::Output {
    READ_RULE.scope(ReadRule::Primary, work).await
}

/// Runs `work` with every [`crate::RoutingPool::read`] it makes going to a replica only if
/// that replica has replayed the WAL up to `lsn`, else to the primary: reads that must see
/// a write the primary had made by `lsn`, without pinning them to the primary for longer
/// than replication takes. Inside [`use_primary`], the primary still wins.
///
/// ```no_run
/// # async fn demo(pool: rls_tenancy::RoutingPool, scope: rls_tenancy::TenantScope, lsn: rls_tenancy::Lsn) -> rls_tenancy::Result<()> {
/// use rls_tenancy::read_at_least;
/// let tx = read_at_least(lsn, async { pool.read(&scope).await }).await?;
/// # Ok(()) }
/// ```
pub async fn read_at_least<F: Future>(lsn: Lsn, work: F) -> F::Output {
    if current() == Some(ReadRule::Primary) {
        return work.await;
    }
    READ_RULE.scope(ReadRule::AtLeast(lsn), work).await
}

/// The running task's rule, if any.
pub(crate) fn current() -> Option<ReadRule> {
    READ_RULE.try_with(|rule| *rule).ok()
}
