//! The application wall: a tenant-scoped query builder over sea-query.
//!
//! From a [`TenantScope`](crate::TenantScope) you get [`Select`], [`Insert`], [`Update`] and
//! [`Delete`] builders over the tenant tables of a
//! [`TenancyDeclaration`](crate::TenancyDeclaration). Whatever the statement looks like, every
//! tenant table it references carries `"name"."account_id" = $tenant`:
//!
//! - tables in FROM: in WHERE;
//! - joined tables: in their ON clause, so LEFT JOINs keep their meaning (RIGHT and FULL joins
//!   are not offered: the predicate in ON would not restrict their preserved side);
//! - sub-selects (`IN`, `EXISTS`, FROM): only scoped selects of the same tenant are accepted,
//!   and they carry their own predicates. A raw sub-select, custom SQL text or an inlined
//!   constant inside a caller's expression is refused, so no table can enter unscoped.
//!
//! An insert sets the tenant column itself and refuses a value for another tenant; an update
//! refuses to set it; update and delete always carry the predicate. Values are always bound.
//!
//! Statements run only through [`TenantTx`](crate::TenantTx) (`fetch_all`, `fetch_one`,
//! `fetch_optional`, `execute`) of the *same* tenant: a statement for tenant A in tenant B's
//! transaction is refused before anything is sent. The one way to run a statement without a
//! tenant is the separately named [`CrossTenant`] path on a connection the caller owns, which
//! logs a warning every time.
//!
//! The database wall (row-level security) stands behind all of this: the builder is the
//! second wall, which turns "forgot the tenant" from an empty page into a statement that
//! cannot be written.
//!
//! ```no_run
//! use rls_tenancy::{JoinKind, TenancyDeclaration, TenantPool, TenantScope};
//! use rls_tenancy::sea_query::{Expr, ExprTrait, Order};
//! # async fn demo(pool: TenantPool, scope: TenantScope) -> rls_tenancy::Result<()> {
//! let decl = TenancyDeclaration::reference()?;
//! let open_tasks = scope
//!     .select(&decl)
//!     .from_as("tasks", "t")
//!     .join_as(JoinKind::Inner, "projects", "p", Expr::col(("p", "id")).equals(("t", "project_id")))
//!     .columns([("t", "name"), ("p", "name")])
//!     .and_where(Expr::col(("t", "is_complete")).eq(false))
//!     .order_by(("t", "name"), Order::Asc);
//! let mut tx = pool.begin(&scope).await?;
//! let rows: Vec<(String, String)> = tx.fetch_all(&open_tasks).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```

mod check;
mod delete;
mod entry;
mod error;
mod exec;
mod filter;
mod insert;
mod scoping;
mod select;
mod table;
mod update;

pub use delete::Delete;
pub use error::{QueryError, StatementError};
pub use exec::Statement;
pub use insert::Insert;
pub use scoping::{CrossTenant, Scoping};
pub use select::{JoinKind, Select};
pub use update::Update;
