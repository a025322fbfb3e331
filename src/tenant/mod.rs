//! Who the tenant is: validated ids ([`TenantId`] of a [`KeyType`]) and slugs
//! ([`TenantSlug`]), the resolved [`TenantScope`] every tenant operation needs, the current
//! tenant of a task ([`TenantScope::scope`], [`spawn`]) and the [`TenantRef`] a job payload
//! carries.
//!
//! Pure values: nothing here touches the database or a request. Finding the tenant of a
//! request is the resolve step's job.

mod current;
mod error;
mod id;
mod label;
mod reference;
mod scope;
mod slug;

pub use current::spawn;
pub use error::TenantError;
pub(crate) use error::echo;
pub use id::{KeyType, TenantId};
pub use label::LabelError;
pub(crate) use label::tenant_label;
pub use reference::TenantRef;
pub use scope::TenantScope;
pub use slug::TenantSlug;
