//! The axum integration: extractors for the request's tenant and its tenant transaction,
//! and one error type mapped to status codes in one place.
//!
//! - [`Tenant`] resolves the host a request was sent to (`tenant-1.example.com`) through the
//!   [`crate::TenantRegistry`] to a [`crate::TenantScope`]; `Option<Tenant>` is `None` on
//!   the bare base domain.
//! - [`Tx`] is that tenant's transaction, committed by [`TenantTxLayer`] when the handler
//!   answers 2xx/3xx and rolled back otherwise. With [`AppState::with_routing`] a request
//!   that only reads gets it on a replica, read-only, unless pinned to the primary
//!   ([`WritePinning`], [`use_primary`]); a request that writes gets it on the primary.
//! - [`AppError`] is every failure, with its status decided in [`AppError::status`]: bad
//!   input is a 400, a tenant or row that cannot be had a 404, the rest a generic 500 whose
//!   detail goes to `tracing`.
//! - [`AppState`] holds what they need; put it in the router, or in your own state with
//!   [`axum::extract::FromRef`].
//!
//! ## One transaction per request: a layer and an extractor
//!
//! An extractor runs before the handler and cannot see the response, so it cannot decide
//! between commit and rollback by itself. The work is split in two:
//!
//! 1. [`TenantTxLayer`], a middleware, puts an empty slot into each request's extensions,
//!    runs the handler, and then looks at the response: a 2xx or 3xx commits the
//!    transaction in the slot, anything else rolls it back. If the commit fails, the
//!    response is replaced by the error's (the client is never told "done" for work that
//!    was not saved).
//! 2. [`Tx`], the extractor, resolves the [`Tenant`], opens a [`crate::TenantTx`] for it in
//!    the slot and lends it to the handler (it holds the slot's lock). When the handler is
//!    done (the `Tx` is dropped), the lock is released and the layer finishes the
//!    transaction.
//!
//! Handlers that do not take a `Tx` open no transaction and cost nothing. A handler that
//! returns `Err(AppError)` rolls back, and so does a `Tx` that outlives its request (moved
//! into a spawned task): it is rolled back when it is finally dropped, and the response
//! becomes a 500 because its work was not committed. The commit happens before the
//! response leaves, so a client that saw a 2xx can rely on its write being saved.
//!
//! The alternative, a handler-side wrapper (`in_tenant_tx(|tx| async { ... })`), puts the
//! decision in every handler and runs into closures borrowing the transaction across
//! `.await`; the layer keeps handlers plain: take a `Tx`, return `Result<_, AppError>`.
//!
//! ## Example
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use rls_tenancy::http::{AppError, AppState, Tenant, TenantTxLayer, Tx};
//! use rls_tenancy::{RegistryOptions, TenantPool, TenantPoolOptions};
//!
//! async fn projects(Tenant(scope): Tenant, mut tx: Tx) -> Result<String, AppError> {
//!     let names: Vec<String> = sqlx::query_scalar("SELECT name FROM app.projects ORDER BY name")
//!         .fetch_all(tx.conn())
//!         .await?;
//!     Ok(format!("{}: {}", scope.slug(), names.join(", ")))
//! }
//!
//! # async fn demo() -> rls_tenancy::Result<()> {
//! let pool = TenantPool::connect(&"postgres://app_runtime@127.0.0.1/app".parse()?, TenantPoolOptions::new(rls_tenancy::TenancyDeclaration::from_file("policies/tenancy.toml")?)).await?;
//! let registry = pool.registry(RegistryOptions::default());
//! let state = AppState::new(pool, registry, "example.com".parse()?);
//! let app: Router = Router::new()
//!     .route("/projects", get(projects))
//!     .layer(TenantTxLayer)
//!     .with_state(state);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

mod authorize;
mod error;
mod extract;
mod host;
mod limits;
mod pin;
mod primary;
mod ready;
mod source;
mod state;
mod static_tenants;
mod tx;

pub use authorize::Authorize;
pub use error::{AppError, RETRY_AFTER_SECONDS, Unavailable};
pub use extract::Tenant;
pub use limits::RequestLimits;
pub use pin::{PinKey, PinKeyError, PinNext, SameSite, WritePinning, writing_route};
pub use primary::use_primary;
pub use ready::{health_routes, healthz, readyz};
pub use source::{TenantClaim, TenantSource};
pub use state::{AppState, HostSource};
pub use static_tenants::route_static_tenants;
pub use tx::{TenantTxLayer, TenantTxService, Tx};
