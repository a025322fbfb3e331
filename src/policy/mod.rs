//! The database wall: the declaration of a schema's tenancy, the names that may enter SQL,
//! how the tenant reaches the database ([`TenantContext`]) and the policy SQL.

mod context;
mod declaration;
mod error;
mod ident;
mod key;
mod render;
mod signed;
mod strategy;
mod verify;

pub use context::{TenantContext, TenantContextMode};
pub(crate) use declaration::is_reserved_schema;
pub use declaration::{
    DomainsTable, GlobalTable, Registry, StaticTenant, TenancyDeclaration, TenantTable,
};
pub use error::{DeclarationError, IdentError, TenantKeyError};
pub(crate) use ident::quote_literal;
pub use ident::{Ident, TenantVariable};
pub use key::TenantKey;
pub use render::{POLICY_NAME, policy_sql};
#[cfg(feature = "migrate")]
pub(crate) use signed::SIGNED_CONTEXT_SQL;
pub(crate) use signed::{owner_signed_entry, signed_context_installed};
pub use strategy::Strategy;
pub(crate) use verify::{verify, verify_tenant_tables};
