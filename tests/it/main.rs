//! Integration tests against a real PostgreSQL: one module per area.

mod registry;
