//! The tenant transaction step: the runtime role's [`TenantPool`], the one-round-trip
//! [`BeginPlan`](begin) with its [`TxOptions`], and [`TenantTx`].

mod begin;
mod error;
mod health;
mod pool;
mod timeouts;
mod tx;

pub use begin::{IsolationLevel, TxOptions};
pub use error::DbError;
pub use pool::{TenantPool, TenantPoolOptions};
pub use timeouts::TxTimeouts;
pub use tx::TenantTx;
