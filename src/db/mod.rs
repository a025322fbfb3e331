//! Database access: connection strings, the tenant pool and tenant transactions.

mod pool;
mod tx;
mod url;

pub use pool::{TenantPool, TenantPoolOptions};
pub use tx::TenantTx;
pub use url::{DatabaseUrl, RedactedUrl};
