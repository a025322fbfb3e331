//! The database strategy's foundation on two real servers: a tenant database provisioned
//! from the server's template, what the runtime role may reach there, and the binaries that
//! do not serve the strategy yet refusing it.

mod provision;
mod refused;
