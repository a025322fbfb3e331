//! The database wall: the declaration of a schema's tenancy, the names that may enter SQL,
//! how the tenant reaches the database ([`TenantContext`]) and the policy SQL.

mod context;
mod declaration;
mod error;
mod ident;
mod render;
mod verify;

pub use context::TenantContext;
pub use declaration::{GlobalTable, Registry, TenancyDeclaration, TenantTable};
pub use error::{DeclarationError, IdentError};
pub(crate) use ident::quote_literal;
pub use ident::{Ident, TenantVariable};
pub use render::{POLICY_NAME, policy_sql};
pub(crate) use verify::verify;
