//! # rls-tenancy
//!
//! Tenant isolation on PostgreSQL that is impossible to forget and cheap to keep.
//!
//! Two independent walls stand between tenants:
//!
//! 1. **The database wall**: row-level security on every tenant table, keyed on a
//!    transaction-local setting (`app.tenant_id`). With no tenant set, nothing is visible and
//!    nothing can be written. [`migrate`] installs it; the application connects as a runtime
//!    role that cannot switch it off.
//! 2. **The application wall**: tenant transactions ([`TenantPool::begin`]) that can only be
//!    opened for a resolved [`TenantScope`].
//!
//! The [`guard`] checks that wall 1 is standing: [`TenantPool::connect`] refuses to open for
//! a role that could get around row-level security, and `rls-check` runs the same checks in CI.
//!
//! ```no_run
//! use rls_tenancy::{TenantId, TenantPool, TenantPoolOptions, TenantScope};
//! # async fn demo() -> rls_tenancy::Result<()> {
//! let pool = TenantPool::connect(&"postgres://app_runtime@127.0.0.1/app".parse()?, TenantPoolOptions::default()).await?;
//! let scope = TenantScope::new(TenantId::new(1)?, "tenant-1".parse()?);
//! let mut tx = pool.begin(&scope).await?;
//! let names: Vec<String> = sqlx::query_scalar("SELECT name FROM app.projects ORDER BY name")
//!     .fetch_all(&mut *tx)
//!     .await?; // tenant 1's projects, and no one else's
//! tx.commit().await?;
//! # Ok(()) }
//! ```

pub mod cli;
mod db;
pub mod demo;
mod embedded;
mod error;
pub mod guard;
pub mod http;
mod migrate;
mod policy;
mod query;
mod seed;
mod tenant;

pub use db::{DatabaseUrl, RedactedUrl, TenantPool, TenantPoolOptions, TenantTx};
pub use embedded::{AdminServer, LocalCluster, ScratchDatabase};
pub use error::{Error, Result};
pub use guard::{Finding, GuardOptions, GuardReport, RuleId, Severity};
pub use migrate::{Bootstrap, MigrateOptions, MigrateReport, bootstrap_sql, migrate};
pub use policy::{
    GlobalTable, Ident, POLICY_NAME, Registry, TenancyDeclaration, TenantTable, TenantVariable,
    canonical_predicate, policy_sql,
};
pub use query::{
    CrossTenant, Delete, Insert, JoinKind, MAX_OFFSET, MAX_PER_PAGE, QueryError, SUBTASKS_PER_PAGE,
    Scoping, Select, Statement, SubtaskItem, SubtaskPage, Update, subtask_page, subtask_page_query,
};
/// The sea-query this crate builds on, re-exported so expressions match its version.
pub use sea_query;
pub use seed::{CountRange, Distribution, SeedLevel, SeedOptions, SeedProfile, SeedReport, seed};
pub use tenant::{
    BaseDomain, HostError, LabelError, RegistryOptions, TenantHeader, TenantId, TenantPath,
    TenantRegistry, TenantScope, TenantSlug, subdomain_slug,
};
