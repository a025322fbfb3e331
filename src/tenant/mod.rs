//! Who the tenant is: validated ids and slugs, the resolved [`TenantScope`], and the
//! resolvers that find it from a request (subdomain, header, path) through the registry.

mod header;
mod host;
mod id;
mod label;
mod path;
mod registry;
mod resolve;
mod scope;
mod slug;

pub use header::TenantHeader;
pub use host::{BaseDomain, HostError, subdomain_slug};
pub use id::TenantId;
pub use label::LabelError;
pub use path::TenantPath;
pub use registry::{RegistryOptions, TenantRegistry};
pub use scope::TenantScope;
pub use slug::TenantSlug;
