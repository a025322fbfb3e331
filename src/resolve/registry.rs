//! [`TenantRegistry`]: slug or id → tenant, read from the routing registry and cached.
//!
//! The registry (the declaration's `[registry]` table) is routing data, not tenant data: it
//! has no row-level security and the runtime role may read only its routing columns.
//! Resolving a tenant therefore needs no tenant and never switches the database wall off.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use sqlx::postgres::PgArguments;
use sqlx::query::{QueryAs, QueryScalar};
use sqlx::{AssertSqlSafe, PgPool, Postgres};

use super::host::host_name;
use super::listener::{Caches, Listener};
use super::pooler::PoolerLookup;
use super::{BaseDomain, HostError, ResolveError, subdomain_slug};
use crate::db::{Health, PROBE_TIMEOUT, is_connection_lost, live_connection};
use crate::policy::TenancyDeclaration;
use crate::tenant::{KeyType, TenantId, TenantScope, TenantSlug};

/// How the [`TenantRegistry`] caches.
///
/// Found tenants are kept for `ttl` (default 30 s), at most `max_entries` of them (default
/// 10 000). Unknown and inactive slugs are remembered too, for `negative_ttl` (default 5 s),
/// in a separate cache of at most `negative_max_entries` (default 10 000), so a flood of
/// made-up slugs neither reaches the database on every request nor evicts real tenants.
///
/// A change to the registry (a tenant suspended, resumed, renamed, created or deleted) reaches
/// every process's cache at once: `rls-migrate` installs a trigger that notifies the changed
/// slugs, and each registry listens on a connection of its own ([`RegistryOptions::listen`],
/// on by default). While that listener is down, or behind a transaction-mode pooler (where
/// `LISTEN` cannot work), a deactivated tenant keeps resolving for up to `ttl` and one created
/// keeps answering 404 for up to `negative_ttl`. [`TenantRegistry::invalidate`] ends both
/// early in this process.
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
    listen: bool,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            ttl: Duration::from_secs(30),
            negative_max_entries: 10_000,
            negative_ttl: Duration::from_secs(5),
            listen: true,
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

    /// Whether the registry listens for changes notified by the registry's trigger (default
    /// on): one extra connection per registry, made with the pool's options, which drops
    /// changed slugs from the caches within moments. Off, only the TTLs expire them.
    ///
    /// ```
    /// # use rls_tenancy::RegistryOptions;
    /// let ttl_only = RegistryOptions::default().listen(false);
    /// ```
    pub fn listen(mut self, listen: bool) -> Self {
        self.listen = listen;
        self
    }
}

/// Resolves slugs and ids to tenants through the registry, as the runtime role, with a
/// bounded cache.
///
/// The lookups are built from the declaration's `[registry]` (table, id, slug and active
/// columns, all validated identifiers); the slug or id is always bound. Cloning is cheap and
/// clones share the cache.
///
/// ```no_run
/// use rls_tenancy::{RegistryOptions, TenancyDeclaration, TenantPool, TenantPoolOptions};
/// # async fn demo() -> rls_tenancy::Result<()> {
/// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?;
/// let pool = TenantPool::connect(&"postgres://app_runtime@localhost/app".parse()?, TenantPoolOptions::new(decl)).await?;
/// let registry = pool.registry(RegistryOptions::default());
/// let scope = registry.resolve(&"acme".parse()?).await?; // ResolveError::TenantNotFound if unknown
/// let mut tx = pool.begin(&scope).await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct TenantRegistry {
    pool: PgPool,
    pooler: bool,
    lookups: Arc<Lookups>,
    caches: Caches,
    listener: Option<Arc<Listener>>,
    /// The tenant pool's view of the database (`TenantPool::registry` shares it): while it
    /// is known to be down, a lookup that misses the cache fails at once.
    health: Option<Arc<Health>>,
}

/// The two lookups, built once from the declaration.
#[derive(Debug)]
struct Lookups {
    key_type: KeyType,
    by_slug: String,
    by_id: String,
    /// Full domain → slug, through the domains table, when the declaration keeps one.
    by_domain: Option<String>,
    /// The static tenants' domains → their names, from the declaration.
    static_domains: HashMap<String, TenantSlug>,
}

impl Lookups {
    fn new(decl: &TenancyDeclaration) -> Self {
        let registry = decl.registry();
        let select = format!(
            "SELECT {id}::text, {slug} FROM {schema}.{table} WHERE {active} AND ",
            id = registry.id_column,
            slug = registry.slug_column,
            schema = decl.schema(),
            table = registry.table,
            active = registry.active_column,
        );
        let by_domain = registry.domains.as_ref().map(|d| {
            format!(
                "SELECT r.{slug}::text FROM {schema}.{domains} d
                   JOIN {schema}.{table} r ON r.{id} = d.{tenant}
                  WHERE d.{domain} = $1",
                slug = registry.slug_column,
                schema = decl.schema(),
                domains = d.table,
                table = registry.table,
                id = registry.id_column,
                tenant = d.tenant_column,
                domain = d.domain_column,
            )
        });
        Self {
            key_type: decl.key_type(),
            by_slug: format!("{select}{} = $1", registry.slug_column),
            by_id: format!("{select}{} = $1", registry.id_column),
            by_domain,
            static_domains: decl
                .static_tenants()
                .iter()
                .flat_map(|t| {
                    t.domains
                        .iter()
                        .map(|d| (d.as_str().to_owned(), t.name.clone()))
                })
                .collect(),
        }
    }
}

impl TenantRegistry {
    /// A registry reading `decl`'s registry table through `pool` (the runtime role's
    /// connections; `TenantPool::registry` hands them over).
    ///
    /// ```no_run
    /// # use rls_tenancy::{RegistryOptions, TenancyDeclaration, TenantRegistry};
    /// # fn demo(pool: sqlx::PgPool) -> rls_tenancy::Result<()> {
    /// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?;
    /// let registry = TenantRegistry::new(pool, &decl, RegistryOptions::default());
    /// # Ok(()) }
    /// ```
    pub fn new(pool: PgPool, decl: &TenancyDeclaration, options: RegistryOptions) -> Self {
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
        let domains = Cache::builder()
            .max_capacity(options.max_entries)
            .time_to_live(
                options
                    .negative_ttl
                    .max(Duration::from_secs(1))
                    .min(options.ttl),
            )
            .build();
        let caches = Caches {
            found,
            missing,
            domains,
        };
        let listener = if options.listen {
            Listener::spawn(&pool, caches.clone()).map(Arc::new)
        } else {
            None
        };
        Self {
            pool,
            pooler: false,
            lookups: Arc::new(Lookups::new(decl)),
            caches,
            listener,
            health: None,
        }
    }

    /// Shares the tenant pool's view of the database: while it is known to be down (a
    /// refused connection, a failed readiness probe), a lookup the caches cannot answer fails
    /// at once (HTTP 503) instead of waiting for the pool's acquire timeout, one lookup at a
    /// time probing for at most half a second; a lookup that loses its connection marks it
    /// down, one that succeeds marks it up.
    pub(crate) fn with_health(mut self, health: Arc<Health>) -> Self {
        self.health = Some(health);
        self
    }

    /// Runs `lookup` under the shared health, if any (see [`TenantRegistry::with_health`]).
    async fn guarded<T>(
        &self,
        lookup: impl Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, sqlx::Error> {
        let Some(health) = &self.health else {
            return lookup.await;
        };
        let result = if health.is_down() {
            let _probe = health.probe().map_err(|_| sqlx::Error::PoolTimedOut)?;
            tokio::time::timeout(PROBE_TIMEOUT, lookup)
                .await
                .unwrap_or(Err(sqlx::Error::PoolTimedOut))
        } else {
            lookup.await
        };
        match &result {
            Ok(_) => health.mark_up(),
            Err(err) if is_connection_lost(err) => health.mark_down(),
            Err(_) => {}
        }
        result
    }

    /// Reads through a transaction-mode pooler (pgbouncer): each lookup runs unnamed inside
    /// a read-only transaction, so its parse and its execution reach the same server
    /// connection. `TenantPool::registry` sets this for a `?pgbouncer=true` URL.
    ///
    /// ```no_run
    /// # use rls_tenancy::{RegistryOptions, TenancyDeclaration, TenantRegistry};
    /// # fn demo(pool: sqlx::PgPool) -> rls_tenancy::Result<()> {
    /// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?;
    /// let registry = TenantRegistry::new(pool, &decl, RegistryOptions::default()).behind_pooler();
    /// # Ok(()) }
    /// ```
    pub fn behind_pooler(mut self) -> Self {
        self.pooler = true;
        // A transaction-mode pooler cannot carry LISTEN: the TTLs are all there is.
        self.listener = None;
        self
    }

    /// The active tenant whose slug is `slug`.
    ///
    /// # Errors
    /// [`ResolveError::TenantNotFound`] when no active tenant has that slug (HTTP 404);
    /// [`ResolveError::Registry`] when the registry cannot be read.
    ///
    /// ```no_run
    /// # async fn demo(registry: rls_tenancy::TenantRegistry) -> rls_tenancy::Result<()> {
    /// let scope = registry.resolve(&"tenant-1".parse()?).await?;
    /// assert_eq!(scope.slug().as_str(), "tenant-1");
    /// # Ok(()) }
    /// ```
    pub async fn resolve(&self, slug: &TenantSlug) -> Result<TenantScope, ResolveError> {
        if let Some(scope) = self.caches.found.get(slug) {
            return Ok(scope);
        }
        if self
            .caches
            .missing
            .as_ref()
            .is_some_and(|m| m.contains_key(slug))
        {
            return Err(ResolveError::not_found(slug));
        }
        let row = self
            .fetch_row(|| {
                sqlx::query_as(AssertSqlSafe(self.lookups.by_slug.as_str())).bind(slug.as_str())
            })
            .await?;
        tracing::debug!(slug = %slug, found = row.is_some(), "tenant registry lookup");
        match row {
            Some(row) => {
                let scope = self.scope(row)?;
                self.caches.found.insert(slug.clone(), scope.clone());
                Ok(scope)
            }
            None => {
                if let Some(missing) = &self.caches.missing {
                    missing.insert(slug.clone(), ());
                }
                Err(ResolveError::not_found(slug))
            }
        }
    }

    /// The active tenant a request's host names, by full domain or by subdomain, the way
    /// the schema-per-tenant tools route: a static tenant's domain (the declaration's
    /// `[[static_tenant]]`) first, then the whole host in the domains table (a tenant's own
    /// domain, `crm.acme.test`), else `slug.<base>` when a base domain is given.
    /// `Ok(None)` for the bare base domain (no tenant: the landing page), unless a tenant
    /// has it as its own domain. The host is held to the strict rules of
    /// [`subdomain_slug`](super::subdomain_slug); answers are cached like slugs and dropped
    /// at every registry or domains-table notice.
    ///
    /// # Errors
    /// [`ResolveError::InvalidHost`] for a malformed host (HTTP 400);
    /// [`ResolveError::TenantNotFound`] for a host no active tenant has (HTTP 404), a host
    /// outside the base domain included; [`ResolveError::Registry`] when the registry
    /// cannot be read.
    ///
    /// ```no_run
    /// # async fn demo(registry: rls_tenancy::TenantRegistry) -> rls_tenancy::Result<()> {
    /// let base = "example.com".parse()?;
    /// let own = registry.resolve_host("crm.acme.test", Some(&base)).await?;
    /// let sub = registry.resolve_host("acme.example.com:8443", Some(&base)).await?;
    /// assert_eq!(own.map(|s| s.id()), sub.map(|s| s.id()));
    /// assert!(registry.resolve_host("example.com", Some(&base)).await?.is_none());
    /// # Ok(()) }
    /// ```
    pub async fn resolve_host(
        &self,
        host: &str,
        base: Option<&BaseDomain>,
    ) -> Result<Option<TenantScope>, ResolveError> {
        let name = host_name(host)?;
        if let Some(slug) = self.lookups.static_domains.get(name) {
            return Ok(Some(self.resolve(slug).await?));
        }
        if let Some(slug) = self.domain_slug(name).await? {
            return Ok(Some(self.resolve(&slug).await?));
        }
        let Some(base) = base else {
            return Err(ResolveError::TenantNotFound {
                name: name.to_owned(),
            });
        };
        match subdomain_slug(name, base) {
            Ok(Some(slug)) => Ok(Some(self.resolve(&slug).await?)),
            Ok(None) => Ok(None),
            Err(HostError::ForeignDomain | HostError::ExtraLabels { .. }) => {
                Err(ResolveError::TenantNotFound {
                    name: name.to_owned(),
                })
            }
            Err(err) => Err(err.into()),
        }
    }

    /// The slug of the tenant whose own domain `name` is, through the cache.
    async fn domain_slug(&self, name: &str) -> Result<Option<TenantSlug>, ResolveError> {
        let Some(sql) = &self.lookups.by_domain else {
            return Ok(None);
        };
        if let Some(slug) = self.caches.domains.get(name) {
            return Ok(slug);
        }
        let found: Option<String> = self
            .guarded(fetch_routing(&self.pool, self.pooler, || {
                sqlx::query_scalar(AssertSqlSafe(sql.as_str())).bind(name)
            }))
            .await?;
        tracing::debug!(
            domain = name,
            found = found.is_some(),
            "tenant domain lookup"
        );
        let slug = found.map(|s| s.parse()).transpose()?;
        self.caches.domains.insert(name.to_owned(), slug.clone());
        Ok(slug)
    }

    /// The active tenant whose id is `id`: how a worker turns a stored tenant reference back
    /// into a scope. Not cached: a job runs far less often than a request.
    ///
    /// # Errors
    /// [`ResolveError::Tenant`] when `id` is of the other key type than the declaration's;
    /// [`ResolveError::TenantNotFound`] when no active tenant has that id;
    /// [`ResolveError::Registry`] when the registry cannot be read.
    ///
    /// ```no_run
    /// # async fn demo(registry: rls_tenancy::TenantRegistry) -> rls_tenancy::Result<()> {
    /// let scope = registry.resolve_id("7".parse()?).await?;
    /// # Ok(()) }
    /// ```
    pub async fn resolve_id(&self, id: TenantId) -> Result<TenantScope, ResolveError> {
        let id = self.lookups.key_type.parse_id(&id.to_string())?;
        let row = self
            .fetch_row(|| {
                let query = sqlx::query_as(AssertSqlSafe(self.lookups.by_id.as_str()));
                match id.as_i64() {
                    Some(int) => query.bind(int),
                    None => query.bind(id.as_uuid()),
                }
            })
            .await?;
        tracing::debug!(tenant = %id, found = row.is_some(), "tenant registry lookup by id");
        match row {
            Some(row) => self.scope(row),
            None => Err(ResolveError::TenantNotFound {
                name: id.to_string(),
            }),
        }
    }

    /// Runs a registry lookup, the query made by `make`: on the pool directly (once more on a
    /// live connection when the first turned out dead: a read, nothing of it took effect), or
    /// behind a pooler unnamed in a read-only transaction ([`fetch_routing`]'s way).
    async fn fetch_row<'q>(
        &self,
        make: impl Fn() -> QueryAs<'q, Postgres, (String, String), PgArguments>,
    ) -> Result<Option<(String, String)>, sqlx::Error> {
        self.guarded(async {
            if self.pooler {
                let mut lookup = PoolerLookup::begin(&self.pool).await?;
                let row = make()
                    .persistent(false)
                    .fetch_optional(lookup.conn())
                    .await?;
                lookup.commit().await?;
                return Ok(row);
            }
            match make().fetch_optional(&self.pool).await {
                Err(err) if is_connection_lost(&err) => {
                    tracing::debug!(error = %err, "the registry lookup's connection was dead; looking up once more on a live one");
                    let mut conn = live_connection(&self.pool).await?;
                    make().fetch_optional(&mut *conn).await
                }
                found => found,
            }
        })
        .await
    }

    /// A scope from a registry row, re-validating what the database holds.
    fn scope(&self, (id, slug): (String, String)) -> Result<TenantScope, ResolveError> {
        let id = self.lookups.key_type.parse_id(&id)?;
        Ok(TenantScope::new(id, slug.parse()?))
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
        self.caches.invalidate(slug);
    }

    /// Whether the registry is listening for registry changes right now (see
    /// [`RegistryOptions::listen`]): `false` before its listener first connects, while it
    /// reconnects, behind a pooler, outside a Tokio runtime, or with listening off. For
    /// readiness checks, metrics and tests.
    ///
    /// ```no_run
    /// # fn demo(registry: rls_tenancy::TenantRegistry) {
    /// if !registry.is_listening() {
    ///     println!("registry changes reach this process only by the cache's TTL");
    /// }
    /// # }
    /// ```
    pub fn is_listening(&self) -> bool {
        self.listener.as_ref().is_some_and(|l| l.is_listening())
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
        self.caches.found.run_pending_tasks();
        self.caches.found.entry_count()
    }
}

/// Runs a routing-data lookup (registry, domains, schema column), the query made by `make`:
/// on the pool directly (once more on a live connection when the first turned out dead: a
/// read, nothing of it took effect), or behind a transaction-mode pooler unnamed in a
/// read-only transaction, so its parse and its execution reach the same server connection (a
/// [`PoolerLookup`]: cut off, its connection is closed).
pub(crate) async fn fetch_routing<'q, O>(
    pool: &PgPool,
    pooler: bool,
    make: impl Fn() -> QueryScalar<'q, Postgres, O, PgArguments>,
) -> Result<Option<O>, sqlx::Error>
where
    O: Send + Unpin,
    (O,): for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    if !pooler {
        return match make().fetch_optional(pool).await {
            Err(err) if is_connection_lost(&err) => {
                tracing::debug!(error = %err, "the routing lookup's connection was dead; looking up once more on a live one");
                let mut conn = live_connection(pool).await?;
                make().fetch_optional(&mut *conn).await
            }
            found => found,
        };
    }
    let mut lookup = PoolerLookup::begin(pool).await?;
    let found = make()
        .persistent(false)
        .fetch_optional(lookup.conn())
        .await?;
    lookup.commit().await?;
    Ok(found)
}
