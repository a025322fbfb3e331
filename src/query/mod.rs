//! The application wall: a tenant-scoped query builder over sea-query.
//!
//! From a [`TenantScope`](crate::TenantScope) you get [`Select`], [`Insert`], [`Update`] and
//! [`Delete`] builders over the tables a [`TenancyDeclaration`](crate::TenancyDeclaration)
//! declares. Whatever the statement looks like, every tenant table it references carries
//! `"name"."account_id" = $tenant`:
//!
//! - tables in FROM: in WHERE;
//! - joined tables: in their ON clause, so LEFT JOINs keep their meaning (RIGHT and FULL joins
//!   are not offered: the predicate in ON would not restrict their preserved side);
//! - sub-selects (`IN`, `NOT IN`, `EXISTS`, `NOT EXISTS`, FROM, `INSERT … SELECT`): only
//!   scoped selects of the same tenant are accepted, and they carry their own predicates. A
//!   raw sub-select, custom SQL text or an inlined constant inside a caller's expression is
//!   refused, so no table can enter unscoped;
//! - global tables (`[[global_table]]`: shared lookup data such as currencies) are read and
//!   joined without a predicate, and never written or locked through the builder.
//!
//! An insert sets the tenant column itself and refuses a value for another tenant; an upsert
//! ([`Conflict`]) must name the tenant column in its conflict target; an update refuses to
//! set it; update and delete always carry the predicate. Values are always bound. Functions
//! are limited to [`ALLOWED_FUNCTIONS`] (`lower`, `coalesce`, `date_trunc`, the aggregates,
//! …): a function can run SQL of its own, so anything else is refused.
//!
//! | shape | how |
//! |---|---|
//! | columns, expressions, DISTINCT | [`Select::column`], [`Select::expr`], [`Select::expr_as`], [`Select::distinct`] |
//! | joins (tenant or global tables) | [`Select::join`], [`Select::join_as`] with [`JoinKind`] |
//! | WHERE, sub-selects | [`Filtered`]: `and_where`, `and_where_in`, `and_where_not_in`, `and_where_exists`, `and_where_not_exists` (select, update, delete) |
//! | aggregates | [`Select::group_by`], [`Select::group_by_expr`], [`Select::and_having`] |
//! | order, pages | [`Select::order_by`], [`Select::order_by_expr`], [`Select::limit`], [`Select::offset`] |
//! | row locks | [`Select::for_update`], [`Select::for_share`], [`Select::skip_locked`], [`Select::nowait`] |
//! | writes | [`Insert::values`], [`Insert::select_from`], [`Insert::on_conflict`], [`Update::value`], [`Returning::returning`] |
//!
//! Statements run only through [`TenantTx`](crate::TenantTx) (`fetch_all`, `fetch_one`,
//! `fetch_optional`, `fetch` for a stream of rows, `execute`) of the *same* tenant: a
//! statement for tenant A in tenant B's transaction is refused before anything is sent. The
//! one way to run a statement without a tenant is the separately named [`CrossTenant`] path
//! on a connection the caller owns, which logs a warning every time.
//!
//! The database wall (row-level security) stands behind all of this: the builder is the
//! second wall, which turns "forgot the tenant" from an empty page into a statement that
//! cannot be written.
//!
//! ```no_run
//! use rls_tenancy::{Filtered, JoinKind, TenancyDeclaration, TenantPool, TenantScope};
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

mod builder;
mod check;
mod conflict;
mod delete;
mod entry;
mod error;
mod exec;
mod filter;
mod functions;
mod insert;
mod scoping;
mod select;
mod table;
mod update;

pub use builder::Returning;
pub use conflict::Conflict;
pub use delete::Delete;
pub use error::{QueryError, StatementError};
pub use exec::Statement;
pub use filter::Filtered;
pub use functions::ALLOWED_FUNCTIONS;
pub use insert::Insert;
pub use scoping::{CrossTenant, Scoping};
pub use select::{JoinKind, Select};
pub use update::Update;
