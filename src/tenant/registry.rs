//! [`TenantRegistry`]: slug → tenant, read from the routing registry and cached.
//!
//! The registry (`app.accounts`) is routing data, not tenant data: it has no row-level
//! security and the runtime role may read only `id`, `slug` and `is_active`. Resolving a slug
//! therefore needs no tenant and never switches the database wall off.

use std::time::Duration;

use moka::sync::Cache;
use sqlx::PgPool;

use super::{TenantId, TenantScope, TenantSlug};
use crate::db::TenantPool;
use crate::error::{Error, Result};

/// The registry lookup. Static SQL: the slug is the only input and it is bound.
const LOOKUP: &str = "SELECT id FROM app.accounts WHERE slug = $1 AND is_active";

/// How the [`TenantRegistry`] caches.
///
/// Found tenants are kept for `ttl` (default 30 s), at most `max_entries` of them (default
/// 10 000). Unknown and inactive slugs are remembered too, for `negative_ttl` (default 5 s),
/// in a separate cache of at most `negative_max_entries` (default 10 000), so a flood of
/// made-up slugs neither reaches the database on every request nor evicts real tenants.
///
/// A tenant deactivated in the registry keeps resolving for up to `ttl`; one created keeps
/// answering 404 for up to `negative_ttl`. [`TenantRegistry::invalidate`] ends both early.
///
/// ```
/// use std::time::Duration;
/// use rls_tenancy::RegistryOptions;
/// let options = RegistryOptions::default().ttl(Duration::from_secs(60)).max_entries(1_000);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RegistryOptions {
    max_entries: u64,
    ttl: Duration,
    negative_max_entries: u64,
    negative_ttl: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            ttl: Duration::from_secs(30),
            negative_max_entries: 10_000,
            negative_ttl: Duration::from_secs(5),
        }
    }
}

impl RegistryOptions {
    /// The longest either cache keeps an answer (one day); longer TTLs are capped to it.
    ///
    /// ```
    /// # use rls_tenancy::RegistryOptions;
    /// assert_eq!(RegistryOptions::MAX_TTL.as_secs(), 86_400);
    /// ```
    pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

    /// The most found tenants kept (default 10 000).
    ///
    /// ```
    /// # use rls_tenancy::RegistryOptions;
    /// let options = RegistryOptions::default().max_entries(100);
    /// ```
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = n;
        self
    }

    /// How long a found tenant is trusted before the registry is read again (default 30 s,
    /// at most [`RegistryOptions::MAX_TTL`]: a deactivated tenant must stop resolving).
    ///
    /// ```
    /// # use rls_tenancy::RegistryOptions;
    /// let options = RegistryOptions::default().ttl(std::time::Duration::from_secs(5));
    /// let capped = RegistryOptions::default().ttl(std::time::Duration::MAX);
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl.min(Self::MAX_TTL);
        self
    }

    /// The most unknown or inactive slugs remembered (default 10 000).
    ///
    /// ```
    /// # use rls_tenancy::RegistryOptions;
    /// let options = RegistryOptions::default().negative_max_entries(100);
    /// ```
    pub fn negative_max_entries(mut self, n: u64) -> Self {
        self.negative_max_entries = n;
        self
    }

    /// How long an unknown or inactive slug is remembered (default 5 s; zero disables it).
    ///
    /// ```
    /// # use rls_tenancy::RegistryOptions;
    /// let options = RegistryOptions::default().negative_ttl(std::time::Duration::ZERO);
    /// ```
    pub fn negative_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl.min(Self::MAX_TTL);
        self
    }
}

/// Resolves slugs to tenants through the registry, as the runtime role, with a bounded cache.
///
/// Cloning is cheap and clones share the cache.
///
/// ```no_run
/// use rls_tenancy::{RegistryOptions, TenantPool, TenantPoolOptions, TenantRegistry};
/// # async fn demo() -> rls_tenancy::Result<()> {
/// let pool = TenantPool::connect(&"postgres://app_runtime@localhost/app".parse()?, TenantPoolOptions::default()).await?;
/// let registry = TenantRegistry::new(&pool, RegistryOptions::default());
/// let scope = registry.resolve(&"acme".parse()?).await?; // Error::TenantNotFound if unknown
/// let mut tx = pool.begin(&scope).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TenantRegistry {
    pool: PgPool,
    pooler: bool,
    found: Cache<TenantSlug, TenantScope>,
    missing: Option<Cache<TenantSlug, ()>>,
}

impl TenantRegistry {
    /// A registry reading through `pool`'s connections (the runtime role).
    ///
    /// ```no_run
    /// # use rls_tenancy::{RegistryOptions, TenantRegistry};
    /// # fn demo(pool: rls_tenancy::TenantPool) {
    /// let registry = TenantRegistry::new(&pool, RegistryOptions::default());
    /// # }
    /// ```
    pub fn new(pool: &TenantPool, options: RegistryOptions) -> Self {
        let found = Cache::builder()
            .max_capacity(options.max_entries)
            .time_to_live(options.ttl)
            .build();
        let missing = (!options.negative_ttl.is_zero()).then(|| {
            Cache::builder()
                .max_capacity(options.negative_max_entries)
                .time_to_live(options.negative_ttl)
                .build()
        });
        Self {
            pool: pool.plain_pool().clone(),
            pooler: pool.behind_pooler(),
            found,
            missing,
        }
    }

    /// The active tenant whose slug is `slug`.
    ///
    /// # Errors
    /// [`Error::TenantNotFound`] when no active tenant has that slug (HTTP 404); a database
    /// error when the registry cannot be read.
    ///
    /// ```no_run
    /// # async fn demo(registry: rls_tenancy::TenantRegistry) -> rls_tenancy::Result<()> {
    /// let scope = registry.resolve(&"tenant-1".parse()?).await?;
    /// assert_eq!(scope.slug().as_str(), "tenant-1");
    /// # Ok(()) }
    /// ```
    pub async fn resolve(&self, slug: &TenantSlug) -> Result<TenantScope> {
        if let Some(scope) = self.found.get(slug) {
            return Ok(scope);
        }
        let not_found = || Error::TenantNotFound { slug: slug.clone() };
        if self.missing.as_ref().is_some_and(|m| m.contains_key(slug)) {
            return Err(not_found());
        }
        let id = self.lookup(slug).await?;
        tracing::debug!(slug = %slug, found = id.is_some(), "tenant registry lookup");
        match id {
            Some(id) => {
                let scope = TenantScope::new(TenantId::new(id)?, slug.clone());
                self.found.insert(slug.clone(), scope.clone());
                Ok(scope)
            }
            None => {
                if let Some(missing) = &self.missing {
                    missing.insert(slug.clone(), ());
                }
                Err(not_found())
            }
        }
    }

    /// Reads the registry row of `slug`. Behind a transaction-mode pooler the statement runs
    /// unnamed inside a read-only transaction, so its parse and its execution reach the same
    /// server connection.
    async fn lookup(&self, slug: &TenantSlug) -> Result<Option<i64>> {
        let query = sqlx::query_scalar(LOOKUP).bind(slug.as_str());
        if !self.pooler {
            return Ok(query.fetch_optional(&self.pool).await?);
        }
        let mut tx = self.pool.begin_with("BEGIN READ ONLY").await?;
        let id = query.persistent(false).fetch_optional(&mut *tx).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Forgets what is cached about `slug`, found or not: call it after changing the tenant
    /// in the registry so the change is seen at once rather than after the TTL.
    ///
    /// ```no_run
    /// # fn demo(registry: rls_tenancy::TenantRegistry) -> rls_tenancy::Result<()> {
    /// registry.invalidate(&"tenant-1".parse()?);
    /// # Ok(()) }
    /// ```
    pub fn invalidate(&self, slug: &TenantSlug) {
        self.found.invalidate(slug);
        if let Some(missing) = &self.missing {
            missing.invalidate(slug);
        }
    }

    /// How many found tenants the cache holds right now (approximate: the cache evicts
    /// lazily). For tests and metrics.
    ///
    /// ```no_run
    /// # fn demo(registry: rls_tenancy::TenantRegistry) {
    /// println!("{} tenants cached", registry.cached_tenants());
    /// # }
    /// ```
    pub fn cached_tenants(&self) -> u64 {
        self.found.run_pending_tasks();
        self.found.entry_count()
    }
}
