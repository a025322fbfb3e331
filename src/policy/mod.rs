//! The database wall: which tables are tenant tables, and the policy SQL installed on them.

mod declaration;
mod ident;
mod render;

pub use declaration::{GlobalTable, Registry, TenancyDeclaration, TenantTable};
pub(crate) use ident::quote_literal;
pub use ident::{Ident, TenantVariable};
pub use render::{POLICY_NAME, canonical_predicate, policy_sql};
