//! Which tenant a request is for: strict parsing of hosts ([`BaseDomain`],
//! [`subdomain_slug`], [`TenantDomains`] for tenants on domains of their own), headers ([`TenantHeader`]) and path prefixes ([`TenantPath`]), and
//! the [`TenantRegistry`] that turns a slug or id into a [`crate::TenantScope`].
//!
//! The first step of the request path; it depends only on who a tenant is (`tenant`) and
//! on the declaration (`policy`).

mod domain;
mod domain_table;
mod domains;
mod error;
mod header;
mod host;
mod listener;
mod path;
mod pooler;
mod registry;
mod scope;

pub use domain::{DomainError, DomainName};
pub use domain_table::{TenantDomain, add_domain, all_domains, remove_domain, tenant_domains};
pub use domains::TenantDomains;
pub use error::ResolveError;
pub use header::TenantHeader;
pub use host::{BaseDomain, HostError, subdomain_slug};
#[cfg(feature = "migrate")]
pub(crate) use listener::REGISTRY_CHANNEL;
pub(crate) use listener::{Invalidate, Listener};
pub use path::TenantPath;
pub(crate) use registry::fetch_routing;
pub use registry::{RegistryOptions, TenantRegistry};
