//! The axum integration: extractors for the request's tenant and its tenant transaction,
//! and one error type mapped to status codes in one place.
//!
//! - [`Tenant`] resolves the host a request was sent to (`tenant-1.example.com`) through the
//!   [`crate::TenantRegistry`] to a [`crate::TenantScope`]; `Option<Tenant>` is `None` on
//!   the bare base domain.
//! - [`Tx`] is that tenant's transaction, committed by [`TenantTxLayer`] when the handler
//!   answers 2xx/3xx and rolled back otherwise.
//! - [`AppError`] is every failure, with its status decided in [`AppError::status`]: bad
//!   input is a 400, a tenant or row that cannot be had a 404, the rest a generic 500 whose
//!   detail goes to `tracing`.
//! - [`AppState`] holds what they need; put it in the router, or in your own state with
//!   [`axum::extract::FromRef`].
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use rls_tenancy::http::{AppError, AppState, Tenant, TenantTxLayer, Tx};
//! use rls_tenancy::{RegistryOptions, TenantPool, TenantPoolOptions, TenantRegistry};
//!
//! async fn projects(Tenant(scope): Tenant, mut tx: Tx) -> Result<String, AppError> {
//!     let names: Vec<String> = sqlx::query_scalar("SELECT name FROM app.projects ORDER BY name")
//!         .fetch_all(tx.conn())
//!         .await?;
//!     Ok(format!("{}: {}", scope.slug(), names.join(", ")))
//! }
//!
//! # async fn demo() -> rls_tenancy::Result<()> {
//! let pool = TenantPool::connect(&"postgres://app_runtime@127.0.0.1/app".parse()?, TenantPoolOptions::default()).await?;
//! let registry = TenantRegistry::new(&pool, RegistryOptions::default());
//! let state = AppState::new(pool, registry, "example.com".parse()?);
//! let app: Router = Router::new()
//!     .route("/projects", get(projects))
//!     .layer(TenantTxLayer)
//!     .with_state(state);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

mod error;
mod extract;
mod host;
mod state;
mod tx;

pub use error::AppError;
pub use extract::Tenant;
pub use state::{AppState, HostSource};
pub use tx::{TenantTxLayer, TenantTxService, Tx};
