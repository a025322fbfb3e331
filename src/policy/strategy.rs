//! [`Strategy`]: where a tenant's rows live.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use super::DeclarationError;

/// Where each tenant's rows live: `rls` (every tenant in the declaration's schema, rows kept
/// apart by row-level security), `schema` (each tenant in a schema of its own, found
/// through a transaction-local `search_path`, with the same row-level security inside it) or
/// `database` (each tenant in a database of its own, on one of several servers the registry
/// names, with the same schema and row-level security inside it).
///
/// The declaration's `strategy = "rls" | "schema" | "database"` (default `rls`); every
/// binary's `--strategy` (env `RLS_STRATEGY`) overrides it.
///
/// ```
/// use rls_tenancy::Strategy;
/// assert_eq!("schema".parse::<Strategy>()?, Strategy::Schema);
/// assert_eq!("database".parse::<Strategy>()?, Strategy::Database);
/// assert_eq!(Strategy::default().to_string(), "rls");
/// assert!("databases".parse::<Strategy>().is_err());
/// # Ok::<(), rls_tenancy::DeclarationError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Strategy {
    /// One schema for every tenant; row-level security on the tenant column.
    #[default]
    Rls,
    /// A schema per tenant, chosen by `search_path` in the tenant transaction.
    Schema,
    /// A database per tenant, on the server the registry names; the declaration's schema
    /// inside it, behind the same row-level security.
    Database,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Rls => "rls",
            Strategy::Schema => "schema",
            Strategy::Database => "database",
        })
    }
}

impl FromStr for Strategy {
    type Err = DeclarationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "rls" => Ok(Strategy::Rls),
            "schema" => Ok(Strategy::Schema),
            "database" => Ok(Strategy::Database),
            other => Err(DeclarationError::Invalid {
                reason: format!("unknown strategy {other:?}: use rls, schema or database"),
            }),
        }
    }
}
