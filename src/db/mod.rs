//! The tenant transaction step: the runtime role's [`TenantPool`], the one-round-trip
//! [`BeginPlan`](begin) with its [`TxOptions`], [`TenantTx`], the [`PoolSet`] of the
//! database strategy (a pool per tenant database under one connection budget), and the retry
//! helper for serialization failures and deadlocks ([`TenantPool::retry`]).

mod begin;
mod databases;
mod error;
mod health;
mod pool;
mod pool_set;
mod recycle;
mod release;
mod retry;
mod timeouts;
mod tx;

#[cfg(feature = "migrate")]
pub(crate) use begin::BeginPlan;
pub use begin::{IsolationLevel, TxOptions};
pub use error::DbError;
pub(crate) use health::{Health, PROBE_TIMEOUT, is_connection_lost, live_connection};
pub use pool::{TenantPool, TenantPoolOptions};
pub use pool_set::{PoolSet, PoolSetOptions, PoolSetStats};
#[cfg(feature = "migrate")]
pub(crate) use release::{RELEASE_CHECK_SQL, settings_functions};
pub use retry::{
    Attempt, AttemptFuture, DEADLOCK_DETECTED, RetryPolicy, Retryable, SERIALIZATION_FAILURE,
};
pub use timeouts::TxTimeouts;
pub use tx::TenantTx;
