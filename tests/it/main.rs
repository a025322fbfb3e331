//! Integration tests against a real PostgreSQL: one module per area.

mod fixture;
mod query;
mod registry;
mod subtasks;
