//! [`SchemaName`]: a tenant schema's name, the only kind of name that goes into `search_path`.

use std::fmt;

use super::PlacementError;
use crate::policy::{Ident, is_reserved_schema};
use crate::tenant::TenantSlug;

/// The name of a tenant's own schema: a plain identifier (lowercase ASCII letters, digits,
/// underscores, starting with a letter or underscore, at most 63 bytes) that is not a
/// reserved schema (`public`, `information_schema`, `pg_*`) and not the shared schema.
/// Displayed quoted, as it enters SQL.
///
/// ```
/// use rls_tenancy::{Ident, SchemaName};
/// let shared = Ident::parse("schema", "app")?;
/// let schema = SchemaName::parse("tenant_a", &shared)?;
/// assert_eq!(schema.to_string(), "\"tenant_a\"");
/// for refused in ["public", "pg_temp", "information_schema", "app", "a;drop", "Tenant", ""] {
///     assert!(SchemaName::parse(refused, &shared).is_err(), "{refused}");
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SchemaName(Ident);

impl SchemaName {
    /// Validates `input` as a tenant schema beside the shared schema `shared`.
    ///
    /// # Errors
    /// [`PlacementError::InvalidSchemaName`] for text that is not a plain identifier,
    /// [`PlacementError::ReservedSchemaName`] for `public`, `information_schema`, `pg_*` or
    /// the shared schema.
    ///
    /// ```
    /// # use rls_tenancy::{Ident, SchemaName};
    /// let shared = Ident::parse("schema", "app")?;
    /// assert_eq!(SchemaName::parse("acme", &shared)?.as_str(), "acme");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn parse(input: &str, shared: &Ident) -> Result<Self, PlacementError> {
        let ident = Ident::parse("schema name", input)?;
        let name = ident.as_str();
        if is_reserved_schema(name, shared) {
            return Err(PlacementError::ReservedSchemaName {
                name: name.to_owned(),
            });
        }
        Ok(Self(ident))
    }

    /// The schema a new tenant gets by default: its slug with `-` written `_` (slugs hold no
    /// `_`, so two slugs never share a schema).
    ///
    /// # Errors
    /// As [`SchemaName::parse`]: a slug that starts with a digit, or names a reserved
    /// schema, needs an explicit schema name.
    ///
    /// ```
    /// # use rls_tenancy::{Ident, SchemaName};
    /// let shared = Ident::parse("schema", "app")?;
    /// assert_eq!(SchemaName::for_slug(&"tenant-a".parse()?, &shared)?.as_str(), "tenant_a");
    /// assert!(SchemaName::for_slug(&"7up".parse()?, &shared).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn for_slug(slug: &TenantSlug, shared: &Ident) -> Result<Self, PlacementError> {
        Self::parse(&slug.as_str().replace('-', "_"), shared)
    }

    /// The bare name.
    ///
    /// ```
    /// # use rls_tenancy::{Ident, SchemaName};
    /// # let shared = Ident::parse("schema", "app")?;
    /// assert_eq!(SchemaName::parse("blog", &shared)?.as_str(), "blog");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The name as a validated identifier.
    #[cfg(feature = "migrate")]
    pub(crate) fn ident(&self) -> &Ident {
        &self.0
    }
}

impl fmt::Display for SchemaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
