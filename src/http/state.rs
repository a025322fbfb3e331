//! [`AppState`]: what the extractors need from the application, shared by every request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::TenantSource;
use super::authorize::{Authorize, DynAuthorize};
use crate::db::TenantPool;
use crate::resolve::{BaseDomain, TenantRegistry};
use crate::route::RoutingPool;

/// Whose word the server takes for the host a request was sent to.
///
/// ```
/// use rls_tenancy::http::HostSource;
/// assert_eq!(HostSource::default(), HostSource::Request);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostSource {
    /// The request's own `Host` header (or HTTP/2 `:authority`) only; `X-Forwarded-Host` and
    /// `Forwarded` are ignored, since any client can send them. The default.
    #[default]
    Request,
    /// A reverse proxy in front of the server says where the request was sent, in
    /// `Forwarded: host=...` or `X-Forwarded-Host`; without either, the request's own host
    /// is used. Choose this only when every request reaches the server through that proxy
    /// and the proxy overwrites both headers: otherwise a client picks its own tenant.
    TrustedProxy,
}

/// The application state the HTTP layer needs: the runtime role's [`TenantPool`] (or a
/// [`RoutingPool`] over it and its replicas, [`AppState::with_routing`]), the
/// [`TenantRegistry`] that resolves slugs, the [`BaseDomain`] tenants live under, and
/// where the host is read from ([`HostSource`]).
///
/// Cheap to clone (one `Arc`). Use it as the router's state, or hold it in your own state
/// and implement [`axum::extract::FromRef`] for it, as the demo does.
///
/// ```no_run
/// use rls_tenancy::http::{AppState, HostSource};
/// use rls_tenancy::{RegistryOptions, TenantPool, TenantPoolOptions};
/// # async fn demo() -> rls_tenancy::Result<()> {
/// let pool = TenantPool::connect(&"postgres://app_runtime@127.0.0.1/app".parse()?, TenantPoolOptions::new(rls_tenancy::TenancyDeclaration::from_file("policies/tenancy.toml")?)).await?;
/// let registry = pool.registry(RegistryOptions::default());
/// let state = AppState::new(pool, registry, "example.com".parse()?)
///     .with_host_source(HostSource::Request);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug, Clone)]
struct Inner {
    /// The primary alone ([`AppState::new`]) or the application's routing pool.
    routing: RoutingPool,
    /// Whether a request that only reads opens its [`super::Tx`] where the routing pool
    /// sends reads ([`AppState::with_routing`]).
    route_reads: bool,
    registry: TenantRegistry,
    base: BaseDomain,
    host_source: HostSource,
    tenant_source: TenantSource,
    authorization: Option<Hook>,
    ready_timeout: Duration,
}

/// The application's [`Authorize`] hook.
#[derive(Clone)]
struct Hook(Arc<dyn DynAuthorize>);

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Authorize")
    }
}

impl AppState {
    /// State for tenants under `base`, reading the host from the request itself.
    ///
    /// ```no_run
    /// # use rls_tenancy::{http::AppState, TenantPool, TenantRegistry};
    /// # fn demo(pool: TenantPool, registry: TenantRegistry) -> rls_tenancy::Result<()> {
    /// let state = AppState::new(pool, registry, "localhost".parse()?);
    /// # Ok(()) }
    /// ```
    pub fn new(pool: TenantPool, registry: TenantRegistry, base: BaseDomain) -> Self {
        Self(Arc::new(Inner {
            routing: RoutingPool::primary_only(pool),
            route_reads: false,
            registry,
            base,
            host_source: HostSource::default(),
            tenant_source: TenantSource::default(),
            authorization: None,
            ready_timeout: Duration::from_secs(2),
        }))
    }

    /// Routes the requests' transactions through `routing` (its primary should be the pool
    /// given to [`AppState::new`], as [`RoutingPool::primary`] is). A request whose method
    /// is safe (GET, HEAD, OPTIONS, TRACE) opens its [`super::Tx`] with
    /// [`RoutingPool::read`]: a read-only transaction on a replica, round-robin among the
    /// healthy ones (with a pinning cookie from [`super::WritePinning`], only one that has
    /// replayed the pinned write), else on the primary (always, inside
    /// [`super::use_primary`]: still read-only, as it marks no write and pins nothing). Any
    /// other request, and one inside a [`super::writing_route`], opens a read-write
    /// transaction on the primary ([`RoutingPool::begin`]). Without routing, every
    /// [`super::Tx`] is read-write on the primary. A GET handler that writes must be a
    /// [`super::writing_route`] (Django's `db_write`): in a read-only transaction its write
    /// is refused (SQLSTATE `25006`, a 500).
    ///
    /// ```no_run
    /// # use rls_tenancy::http::AppState;
    /// # fn demo(state: AppState, routing: rls_tenancy::RoutingPool) {
    /// let state = state.with_routing(routing);
    /// # }
    /// ```
    pub fn with_routing(mut self, routing: RoutingPool) -> Self {
        let inner = Arc::make_mut(&mut self.0);
        inner.routing = routing;
        inner.route_reads = true;
        self
    }

    /// The routing pool the requests' transactions are opened on: the primary alone unless
    /// [`AppState::with_routing`] gave one.
    ///
    /// ```no_run
    /// # fn demo(state: rls_tenancy::http::AppState) {
    /// let replicas = state.routing().replica_status().len();
    /// # }
    /// ```
    pub fn routing(&self) -> &RoutingPool {
        &self.0.routing
    }

    /// Whether a request that only reads may be served by a replica.
    pub(super) fn routes_reads(&self) -> bool {
        self.0.route_reads
    }

    /// Where the host is read from (default [`HostSource::Request`]).
    ///
    /// ```no_run
    /// # use rls_tenancy::http::{AppState, HostSource};
    /// # fn demo(state: AppState) {
    /// let state = state.with_host_source(HostSource::TrustedProxy);
    /// # }
    /// ```
    pub fn with_host_source(mut self, source: HostSource) -> Self {
        Arc::make_mut(&mut self.0).host_source = source;
        self
    }

    /// Where the extractors read the request's tenant from (default
    /// [`TenantSource::Subdomain`]).
    ///
    /// ```no_run
    /// # use rls_tenancy::http::{AppState, TenantSource};
    /// # fn demo(state: AppState) -> rls_tenancy::Result<()> {
    /// let state = state.with_tenant_source(TenantSource::Header(rls_tenancy::TenantHeader::new("x-tenant")?));
    /// # Ok(()) }
    /// ```
    pub fn with_tenant_source(mut self, source: TenantSource) -> Self {
        Arc::make_mut(&mut self.0).tenant_source = source;
        self
    }

    /// Where the extractors read the request's tenant from.
    ///
    /// ```no_run
    /// # fn demo(state: rls_tenancy::http::AppState) {
    /// assert!(matches!(state.tenant_source(), rls_tenancy::http::TenantSource::Subdomain));
    /// # }
    /// ```
    pub fn tenant_source(&self) -> &TenantSource {
        &self.0.tenant_source
    }

    /// Runs `hook` on every request once its tenant is resolved, before a transaction
    /// opens: the application's check that the caller belongs to that tenant. Its `Err` is
    /// the response (a 403 with [`super::AppError::Forbidden`]).
    ///
    /// ```no_run
    /// # use axum::http::request::Parts;
    /// # use rls_tenancy::{TenantScope, http::{AppError, AppState, Authorize}};
    /// struct OnlyAcme;
    /// impl Authorize for OnlyAcme {
    ///     async fn authorize(&self, _: &Parts, scope: &TenantScope) -> Result<(), AppError> {
    ///         if scope.slug().as_str() == "acme" { Ok(()) } else { Err(AppError::Forbidden) }
    ///     }
    /// }
    /// # fn demo(state: AppState) {
    /// let state = state.with_authorization(OnlyAcme);
    /// # }
    /// ```
    pub fn with_authorization(mut self, hook: impl Authorize) -> Self {
        Arc::make_mut(&mut self.0).authorization = Some(Hook(Arc::new(hook)));
        self
    }

    /// The application's authorization hook, if any.
    pub(super) fn authorization(&self) -> Option<&dyn DynAuthorize> {
        self.0.authorization.as_ref().map(|hook| &*hook.0)
    }

    /// How long the readiness probe ([`readyz`](super::readyz)) waits for the database
    /// (default 2 s).
    ///
    /// ```no_run
    /// # fn demo(state: rls_tenancy::http::AppState) {
    /// let state = state.with_ready_timeout(std::time::Duration::from_millis(500));
    /// # }
    /// ```
    pub fn with_ready_timeout(mut self, timeout: Duration) -> Self {
        Arc::make_mut(&mut self.0).ready_timeout = timeout;
        self
    }

    /// The readiness probe's deadline.
    ///
    /// ```no_run
    /// # fn demo(state: rls_tenancy::http::AppState) {
    /// assert_eq!(state.ready_timeout().as_secs(), 2);
    /// # }
    /// ```
    pub fn ready_timeout(&self) -> Duration {
        self.0.ready_timeout
    }

    /// The runtime role's pool on the primary ([`RoutingPool::primary`]).
    ///
    /// ```no_run
    /// # fn demo(state: rls_tenancy::http::AppState) {
    /// let pool = state.pool();
    /// # }
    /// ```
    pub fn pool(&self) -> &TenantPool {
        self.0.routing.primary()
    }

    /// The tenant registry.
    ///
    /// ```no_run
    /// # fn demo(state: rls_tenancy::http::AppState) {
    /// let registry = state.registry();
    /// # }
    /// ```
    pub fn registry(&self) -> &TenantRegistry {
        &self.0.registry
    }

    /// The domain tenants live under.
    ///
    /// ```no_run
    /// # fn demo(state: rls_tenancy::http::AppState) {
    /// println!("tenants live under {}", state.base_domain());
    /// # }
    /// ```
    pub fn base_domain(&self) -> &BaseDomain {
        &self.0.base
    }

    /// Where the host is read from.
    ///
    /// ```no_run
    /// # fn demo(state: rls_tenancy::http::AppState) {
    /// assert_eq!(state.host_source(), rls_tenancy::http::HostSource::Request);
    /// # }
    /// ```
    pub fn host_source(&self) -> HostSource {
        self.0.host_source
    }
}
