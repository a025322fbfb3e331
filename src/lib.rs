//! # rls-tenancy
//!
//! Tenant isolation on PostgreSQL that is impossible to forget and cheap to keep.
//!
//! Two independent walls stand between tenants:
//!
//! 1. **The database wall**: row-level security on every tenant table a
//!    [`TenancyDeclaration`] names, keyed on a transaction-local setting (`app.tenant_id`).
//!    With no tenant set, nothing is visible and nothing can be written. `rls-migrate`
//!    ([`migrate_with`], feature `migrate`) installs it; the application connects as a
//!    runtime role that cannot switch it off.
//! 2. **The application wall**: tenant transactions ([`TenantPool::begin`]) that can only be
//!    opened for a resolved [`TenantScope`], and a scoped query builder ([`TenantScope::select`])
//!    that puts the tenant predicate on every tenant table a statement touches.
//!
//! The [`guard`] checks that wall 1 is standing: [`TenantPool::connect`] refuses to open for
//! a role that could get around row-level security, and `rls-check` runs the same checks in CI.
//!
//! ## How a request reaches its rows
//!
//! One path, one module per step, each depending only on the steps before it:
//!
//! | step | module | what it gives |
//! |---|---|---|
//! | who | [`TenantId`], [`TenantSlug`], [`TenantScope`], [`TenantRef`], [`spawn`] | a tenant, the task's current tenant |
//! | declaration | [`TenancyDeclaration`], [`Ident`], [`TenantContext`] | what the schema is |
//! | resolve | [`TenantRegistry`], [`BaseDomain`], [`TenantDomains`], [`TenantHeader`], [`TenantPath`] | the request's tenant |
//! | placement | [`Strategy`], [`SchemaName`], [`DatabaseName`], [`DatabasePattern`] | where the tenant's rows live (its schema or its database, by strategy) |
//! | guard | [`guard`] | whether the wall is standing |
//! | transaction | [`TenantPool`], [`TenantTx`], [`TxOptions`], [`TxTimeouts`], [`TenantPool::retry`] | `BEGIN` + transaction-local settings (tenant, timeouts) in one round trip |
//! | query | [`TenantScope::select`] and friends, [`Filtered`], [`Returning`], [`Conflict`], [`CrossTenant`] | rows, behind row-level security |
//! | http | [`http`] (feature `axum`) | extractors, the transaction layer, status codes |
//!
//! Each step has its own error type; [`enum@Error`] converts from all of them.
//!
//! ```no_run
//! use rls_tenancy::{TenancyDeclaration, TenantPool, TenantPoolOptions, RegistryOptions};
//! # async fn demo() -> rls_tenancy::Result<()> {
//! let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?;
//! let url = "postgres://app_runtime@127.0.0.1/app".parse()?;
//! let pool = TenantPool::connect(&url, TenantPoolOptions::new(decl)).await?;
//! let registry = pool.registry(RegistryOptions::default());
//! let scope = registry.resolve(&"tenant-1".parse()?).await?;
//! let mut tx = pool.begin(&scope).await?;
//! let names: Vec<String> = sqlx::query_scalar("SELECT name FROM app.projects ORDER BY name")
//!     .fetch_all(&mut *tx)
//!     .await?; // tenant 1's projects, and no one else's
//! tx.commit().await?;
//! # Ok(()) }
//! ```
//!
//! ## Features
//!
//! The default features are everything the repository's binaries and tests need. A library
//! user turns them off and picks: `axum` (the [`http`] integration), `migrate`
//! ([`migrate_with`], [`install_policies`], the tenant lifecycle [`TenantLifecycle`]), `seed`
//! (fake tenant data), `testing` (the embedded PostgreSQL harness), `cli` (what the binaries
//! share), `demo` (the showcase).

mod connect;
mod db;
mod error;
pub mod guard;
mod placement;
mod policy;
mod query;
mod resolve;
mod route;
mod tenant;

#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "demo")]
pub mod demo;
#[cfg(feature = "testing")]
mod embedded;
#[cfg(feature = "axum")]
pub mod http;
#[cfg(feature = "migrate")]
mod lifecycle;
#[cfg(feature = "migrate")]
mod migrate;
#[cfg(feature = "seed")]
mod seed;

pub use connect::{
    ConnectError, DatabaseHosts, DatabaseUrl, RedactedUrl, Server, ServerName, ServerSet, connect,
};
pub use db::{
    Attempt, AttemptFuture, DEADLOCK_DETECTED, DbError, IsolationLevel, PoolSet, PoolSetOptions,
    PoolSetStats, RetryPolicy, Retryable, SERIALIZATION_FAILURE, TenantPool, TenantPoolOptions,
    TenantTx, TxOptions, TxTimeouts,
};
pub use error::{Error, Result};
pub use guard::{Finding, GuardError, GuardOptions, GuardReport, RuleId, Severity};
pub use placement::{
    DatabaseName, DatabasePattern, PlacedDatabase, PlacementError, SchemaName, placed_databases,
};
pub use policy::{
    DeclarationError, DomainsTable, GlobalTable, Ident, IdentError, POLICY_NAME, Registry,
    StaticTenant, Strategy, TenancyDeclaration, TenantContext, TenantContextMode, TenantKey,
    TenantKeyError, TenantTable, TenantVariable, policy_sql,
};
pub use query::{
    ALLOWED_FUNCTIONS, Conflict, CrossTenant, Delete, Filtered, Insert, JoinKind, QueryError,
    Returning, Scoping, Select, Statement, StatementError, Update,
};
pub use resolve::{
    BaseDomain, DomainError, DomainName, HostError, RegistryOptions, ResolveError, TenantDomain,
    TenantDomains, TenantHeader, TenantPath, TenantRegistry, add_domain, all_domains,
    remove_domain, subdomain_slug, tenant_domains,
};
pub use route::{
    Lsn, LsnError, ReplicaStatus, RouteError, RoutedTx, RoutingOptions, RoutingPool, ServedBy,
    read_at_least, use_primary,
};
/// The sea-query this crate builds on, re-exported so expressions match its version.
pub use sea_query;
pub use tenant::{
    KeyType, LabelError, TenantError, TenantId, TenantRef, TenantScope, TenantSlug, spawn,
};

#[cfg(feature = "testing")]
pub use embedded::{
    AdminServer, HarnessError, LocalCluster, REFERENCE_MIGRATIONS, REFERENCE_TENANT_MIGRATIONS,
    ReplicatedCluster, ScratchDatabase, ScratchServers,
};
#[cfg(feature = "migrate")]
pub use lifecycle::{
    DropPlan, LifecycleError, MoveProgress, MoveReport, NewTenant, RunOutcome, RunReport,
    TenantLifecycle, TenantRecord, TenantRun, drop_tenant_database, list_text, provision_database,
};
#[cfg(feature = "migrate")]
pub use migrate::{
    Bootstrap, DatabaseReport, DatabasesReport, MigrateError, MigrateOptions, MigrateReport,
    SchemaOutcome, SchemaReport, SchemaSelection, SchemaSelector, SchemasReport, SelectedSchema,
    bootstrap_sql, install_policies, migrate_databases, migrate_schemas, migrate_selected,
    migrate_with, migrator_from_dir, select_databases, select_schemas,
};
#[cfg(feature = "seed")]
pub use seed::{
    CountRange, Distribution, SeedError, SeedLevel, SeedOptions, SeedProfile, SeedReport, seed,
    seed_placement,
};

/// The names most programs need, for `use rls_tenancy::prelude::*`.
pub mod prelude {
    pub use crate::{
        DbError, Error, Filtered, RegistryOptions, Returning, TenancyDeclaration, TenantId,
        TenantPool, TenantPoolOptions, TenantRegistry, TenantScope, TenantTx, TxOptions,
    };
}
