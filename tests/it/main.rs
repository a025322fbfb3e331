//! The integration tests: one crate, one module per area, each test on its own scratch
//! database of a real PostgreSQL.

mod seed;
