//! The registry listener: one dedicated connection per [`TenantRegistry`](super::TenantRegistry)
//! (and per database-strategy placement) that `LISTEN`s on [`REGISTRY_CHANNEL`] and drops each
//! slug it hears from the caches, so a suspended, deleted, renamed or moved tenant stops
//! resolving (or being routed to its old place) in every process at once. `rls-migrate`
//! installs the trigger that notifies. While the listener is down (the database restarting, the
//! connection killed) the caches' TTL is the fallback; it reconnects with a growing backoff and,
//! since notices may have been missed meanwhile, empties the caches each time it is back. Each
//! reconnection takes the registry pool's connect options of the moment: a pool that follows a
//! promotion ([`crate::RoutingPool::primary`]) takes its listener to the new primary too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use moka::sync::Cache;
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};
use tokio::task::JoinHandle;

use crate::tenant::{TenantScope, TenantSlug};

/// The channel the registry's trigger notifies with the slug of each changed row.
pub(crate) const REGISTRY_CHANNEL: &str = "rls_tenancy_registry";

/// The first wait before reconnecting, doubled after each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// The caches a notice invalidates.
#[derive(Debug, Clone)]
pub(super) struct Caches {
    pub(super) found: Cache<TenantSlug, TenantScope>,
    pub(super) missing: Option<Cache<TenantSlug, ()>>,
    /// Full domain → the slug of the tenant that has it (`None`: nobody's). Emptied by every
    /// notice: domain changes are rare, and a renamed tenant's domains must follow it.
    pub(super) domains: Cache<String, Option<TenantSlug>>,
}

/// What a registry notice invalidates.
pub(crate) trait Invalidate: Send + Sync + 'static {
    /// A notice's payload was heard.
    fn heard(&self, payload: &str);
    /// Notices may have been missed: forget everything.
    fn invalidate_all(&self);
}

impl Caches {
    pub(super) fn invalidate(&self, slug: &TenantSlug) {
        self.domains.invalidate_all();
        self.found.invalidate(slug);
        if let Some(missing) = &self.missing {
            missing.invalidate(slug);
        }
    }
}

impl Invalidate for Caches {
    fn invalidate_all(&self) {
        self.domains.invalidate_all();
        self.found.invalidate_all();
        if let Some(missing) = &self.missing {
            missing.invalidate_all();
        }
    }

    /// A notice's payload: a slug, or anything else (then everything goes, as for a
    /// changed domain, `domain:<name>`).
    fn heard(&self, payload: &str) {
        match payload.parse::<TenantSlug>() {
            Ok(slug) => self.invalidate(&slug),
            Err(_) => self.invalidate_all(),
        }
    }
}

/// The running listener task; dropping the last registry clone stops it.
#[derive(Debug)]
pub(crate) struct Listener {
    task: JoinHandle<()>,
    listening: Arc<AtomicBool>,
}

impl Listener {
    /// Starts listening on a connection of its own, made with `pool`'s options (so it never
    /// takes one of the pool's connections, nor leaves a `LISTEN` on one). Needs a Tokio
    /// runtime; `None` outside one.
    pub(crate) fn spawn(pool: &PgPool, caches: impl Invalidate) -> Option<Self> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let listening = Arc::new(AtomicBool::new(false));
        let task = runtime.spawn(listen(pool.clone(), caches, Arc::clone(&listening)));
        Some(Self { task, listening })
    }

    pub(crate) fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Listens until aborted: connect, `LISTEN`, empty the caches (notices may have been
/// missed), invalidate each slug heard; on any failure wait and start over, on a connection
/// made with `registry`'s connect options of that moment (the server it opens connections on
/// may have changed), waiting longer after each failure that never got to listen.
async fn listen(registry: PgPool, caches: impl Invalidate, listening: Arc<AtomicBool>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        // A pool of one of its own, which sqlx's listener reconnects through.
        let own = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with((*registry.connect_options()).clone());
        let (listened, error) = listen_once(&own, &caches, &listening).await;
        own.close().await;
        if listened {
            backoff = FIRST_BACKOFF;
        }
        tracing::warn!(%error, retry_in = ?backoff, "the tenant registry's change listener is down; cached tenants expire by their TTL meanwhile");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One listener's life, until it fails: whether it got to listen, and why it ended. A lost
/// connection that sqlx re-establishes (and listens on again) at once does not end it.
async fn listen_once(
    pool: &PgPool,
    caches: &impl Invalidate,
    listening: &AtomicBool,
) -> (bool, sqlx::Error) {
    let mut listener = match PgListener::connect_with(pool).await {
        Ok(listener) => listener,
        Err(error) => return (false, error),
    };
    if let Err(error) = listener.listen(REGISTRY_CHANNEL).await {
        return (false, error);
    }
    loop {
        caches.invalidate_all();
        listening.store(true, Ordering::Release);
        tracing::debug!(
            channel = REGISTRY_CHANNEL,
            "the tenant registry listens for changes"
        );
        let ended = loop {
            match listener.try_recv().await {
                Ok(Some(notice)) => caches.heard(notice.payload()),
                // Lost, and already connected and listening again: start over, emptied.
                Ok(None) => break None,
                Err(error) => break Some(error),
            }
        };
        listening.store(false, Ordering::Release);
        if let Some(error) = ended {
            return (true, error);
        }
    }
}
