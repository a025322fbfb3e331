//! Who the tenant is: validated ids and slugs, and the resolved [`TenantScope`].

mod id;
mod scope;
mod slug;

pub use id::TenantId;
pub use scope::TenantScope;
pub use slug::TenantSlug;
