//! Which tenant a request is for: strict parsing of hosts ([`BaseDomain`],
//! [`subdomain_slug`], [`TenantDomains`] for tenants on domains of their own), headers ([`TenantHeader`]) and path prefixes ([`TenantPath`]), and
//! the [`TenantRegistry`] that turns a slug or id into a [`crate::TenantScope`].
//!
//! The first step of the request path; it depends only on who a tenant is (`tenant`) and
//! on the declaration (`policy`).

mod domains;
mod error;
mod header;
mod host;
mod listener;
mod path;
mod registry;
mod scope;

pub use domains::TenantDomains;
pub use error::ResolveError;
pub use header::TenantHeader;
pub use host::{BaseDomain, HostError, subdomain_slug};
#[cfg(feature = "migrate")]
pub(crate) use listener::REGISTRY_CHANNEL;
pub use path::TenantPath;
pub use registry::{RegistryOptions, TenantRegistry};
