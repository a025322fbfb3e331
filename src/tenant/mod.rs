//! Who the tenant is: validated ids ([`TenantId`] of a [`KeyType`]) and slugs
//! ([`TenantSlug`]), and the resolved [`TenantScope`] every tenant operation needs.
//!
//! Pure values: nothing here touches the database or a request. Finding the tenant of a
//! request is the resolve step's job.

mod error;
mod id;
mod label;
mod scope;
mod slug;

pub use error::TenantError;
pub(crate) use error::echo;
pub use id::{KeyType, TenantId};
pub use label::LabelError;
pub(crate) use label::tenant_label;
pub use scope::TenantScope;
pub use slug::TenantSlug;
