//! Integration tests against a real PostgreSQL (see `rls_tenancy::AdminServer` for where it
//! comes from), one module per area. Each test owns a `ScratchDatabase`, so the tests run
//! in parallel.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails by panicking, with the message saying what broke"
)]
#![allow(
    unreachable_pub,
    reason = "test helpers are shared between test modules"
)]

mod fixture;
mod logs;
mod support;

mod crm;
mod current;
mod databases;
mod domains;
mod guard;
mod harness;
mod http;
mod isolation;
mod lifecycle;
mod migrate;
mod pool_set;
mod pooler_lookup;
mod privileges;
mod query;
mod registry;
mod replicas;
mod schema;
mod seed;
mod selectors;
mod signed;
mod subtasks;
mod tenant_databases;
mod tx;
