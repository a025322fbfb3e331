//! Integration tests against a real PostgreSQL (see `rls_tenancy::AdminServer` for where it
//! comes from). Each test owns a `ScratchDatabase`, so the tests run in parallel.

mod support;

mod harness;
mod isolation;
mod migrate;
mod privileges;
