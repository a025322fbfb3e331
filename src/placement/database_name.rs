//! [`DatabaseName`] and [`DatabasePattern`]: the name of a tenant's own database, and how it
//! is derived from the tenant's slug.

use std::fmt;
use std::str::FromStr;

use super::PlacementError;
use crate::policy::Ident;
use crate::tenant::{TenantSlug, echo};

/// The databases no tenant may be given: the server's own and its templates.
const RESERVED: [&str; 3] = ["postgres", "template0", "template1"];

/// The name of a tenant's database: a plain identifier (lowercase ASCII letters, digits and
/// underscores, starting with a letter or underscore, at most 63 bytes, so PostgreSQL never
/// truncates it into another tenant's) that is not `postgres`, `template0` or `template1`.
/// Displayed quoted, as it enters SQL.
///
/// ```
/// use rls_tenancy::DatabaseName;
/// let name: DatabaseName = "app_tenant_acme".parse()?;
/// assert_eq!(name.to_string(), "\"app_tenant_acme\"");
/// for refused in ["postgres", "template1", "App", "a-b", "a\"b", "a;drop database x", "", "7up", &"a".repeat(64)] {
///     assert!(refused.parse::<DatabaseName>().is_err(), "{refused}");
/// }
/// # Ok::<(), rls_tenancy::PlacementError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DatabaseName(Ident);

impl DatabaseName {
    /// The bare name (for binding as a parameter and comparing with `pg_database`).
    ///
    /// ```
    /// # use rls_tenancy::DatabaseName;
    /// assert_eq!("app_tenant_acme".parse::<DatabaseName>()?.as_str(), "app_tenant_acme");
    /// # Ok::<(), rls_tenancy::PlacementError>(())
    /// ```
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl FromStr for DatabaseName {
    type Err = PlacementError;

    fn from_str(s: &str) -> Result<Self, PlacementError> {
        let invalid = |reason: &'static str| PlacementError::InvalidDatabaseName {
            name: echo(s),
            reason,
        };
        if s.len() > 63 {
            return Err(invalid(
                "it is longer than 63 bytes, which PostgreSQL would truncate; use a shorter --database-pattern",
            ));
        }
        let ident = Ident::parse("database name", s).map_err(|_| {
            invalid("use lowercase letters, digits and underscores, starting with a letter or underscore")
        })?;
        if RESERVED.contains(&s) {
            return Err(invalid(
                "it is the server's own database or template: no tenant may have it",
            ));
        }
        Ok(Self(ident))
    }
}

impl fmt::Display for DatabaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How a tenant's database is named: a pattern with `<slug>` once (the slug with `-`
/// written `_`; slugs hold no `_`, so two slugs never share a database) and optionally
/// `<base>` (the control database's name). The default is `<base>_tenant_<slug>`. The
/// template each server's tenant databases are cloned from is the pattern's name for the
/// slug `template`, which no tenant may therefore have.
///
/// ```
/// use rls_tenancy::DatabasePattern;
/// let pattern = DatabasePattern::default();
/// assert_eq!(pattern.database("app", &"acme-corp".parse()?)?.as_str(), "app_tenant_acme_corp");
/// assert_eq!(pattern.template("app")?.as_str(), "app_tenant_template");
/// assert!(pattern.database("app", &"template".parse()?).is_err());
/// let custom: DatabasePattern = "t_<slug>".parse()?;
/// assert_eq!(custom.database("app", &"acme".parse()?)?.as_str(), "t_acme");
/// assert!("tenant".parse::<DatabasePattern>().is_err());
/// assert!("<slug>_<slug>".parse::<DatabasePattern>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabasePattern(String);

impl DatabasePattern {
    /// The default pattern, `<base>_tenant_<slug>`.
    pub const DEFAULT: &'static str = "<base>_tenant_<slug>";

    /// The slug whose database is the template.
    const TEMPLATE_SLUG: &'static str = "template";

    /// The database of tenant `slug`, `base` being the control database's name.
    ///
    /// # Errors
    /// [`PlacementError::InvalidDatabaseName`] when the name is not a safe identifier (too
    /// long, a base that is not one) or is the template's.
    ///
    /// ```
    /// # use rls_tenancy::DatabasePattern;
    /// let long = "a".repeat(60).parse()?;
    /// assert!(DatabasePattern::default().database("app", &long).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn database(&self, base: &str, slug: &TenantSlug) -> Result<DatabaseName, PlacementError> {
        if slug.as_str() == Self::TEMPLATE_SLUG {
            return Err(PlacementError::InvalidDatabaseName {
                name: self.fill(base, Self::TEMPLATE_SLUG),
                reason: "it is the template tenant databases are cloned from: choose another slug",
            });
        }
        self.fill(base, &slug.as_str().replace('-', "_")).parse()
    }

    /// The template database tenant databases are cloned from on each server.
    ///
    /// # Errors
    /// [`PlacementError::InvalidDatabaseName`] when the name is not a safe identifier.
    ///
    /// ```
    /// # use rls_tenancy::DatabasePattern;
    /// assert_eq!(DatabasePattern::default().template("crm")?.as_str(), "crm_tenant_template");
    /// # Ok::<(), rls_tenancy::PlacementError>(())
    /// ```
    pub fn template(&self, base: &str) -> Result<DatabaseName, PlacementError> {
        self.fill(base, Self::TEMPLATE_SLUG).parse()
    }

    fn fill(&self, base: &str, slug: &str) -> String {
        self.0.replace("<base>", base).replace("<slug>", slug)
    }
}

impl Default for DatabasePattern {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

impl FromStr for DatabasePattern {
    type Err = PlacementError;

    fn from_str(s: &str) -> Result<Self, PlacementError> {
        let invalid = |reason: &'static str| PlacementError::InvalidDatabasePattern {
            pattern: echo(s),
            reason,
        };
        if s.matches("<slug>").count() != 1 {
            return Err(invalid(
                "it must hold <slug> exactly once, so that each tenant has a database of its own",
            ));
        }
        let rest = s.replace("<slug>", "").replace("<base>", "");
        if !rest
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(invalid(
                "besides <base> and <slug>, use lowercase letters, digits and underscores",
            ));
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for DatabasePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_refused_and_never_reach_sql_unquoted() {
        for hostile in [
            "x\"; DROP DATABASE postgres; --",
            "x' OR '1'='1",
            "a b",
            "a\0b",
            "ünïcode",
            "a.b",
            "Postgres",
            "template0",
            "-a",
            "a-b",
        ] {
            let err = hostile.parse::<DatabaseName>().unwrap_err();
            assert!(
                matches!(err, PlacementError::InvalidDatabaseName { .. }),
                "{hostile}"
            );
        }
        assert_eq!(
            "_a1".parse::<DatabaseName>().unwrap().to_string(),
            "\"_a1\""
        );
    }

    #[test]
    fn a_name_of_63_bytes_is_taken_and_one_of_64_refused_not_truncated() {
        assert!("a".repeat(63).parse::<DatabaseName>().is_ok());
        let err = "a".repeat(64).parse::<DatabaseName>().unwrap_err();
        assert!(err.to_string().contains("63 bytes"), "{err}");
        // "app_tenant_" is 11 bytes.
        let slug: TenantSlug = "b".repeat(53).parse().unwrap();
        assert!(DatabasePattern::default().database("app", &slug).is_err());
        let slug: TenantSlug = "b".repeat(52).parse().unwrap();
        assert_eq!(
            DatabasePattern::default()
                .database("app", &slug)
                .unwrap()
                .as_str()
                .len(),
            63
        );
    }

    #[test]
    fn a_hostile_base_or_pattern_is_refused() {
        let slug: TenantSlug = "acme".parse().unwrap();
        assert!(
            DatabasePattern::default()
                .database("app\"x", &slug)
                .is_err()
        );
        assert!(DatabasePattern::default().database("App", &slug).is_err());
        for bad in ["<slug>\"", "<SLUG>", "x-<slug>", "<slug>;", "<base>"] {
            assert!(bad.parse::<DatabasePattern>().is_err(), "{bad}");
        }
        let pattern: DatabasePattern = "<slug>".parse().unwrap();
        assert!(
            pattern
                .database("app", &"postgres".parse().unwrap())
                .is_err()
        );
        assert!(pattern.database("app", &"7up".parse().unwrap()).is_err());
    }

    #[test]
    fn distinct_slugs_get_distinct_databases() {
        let pattern = DatabasePattern::default();
        let a = pattern.database("app", &"a-b".parse().unwrap()).unwrap();
        let b = pattern.database("app", &"ab".parse().unwrap()).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, pattern.template("app").unwrap());
    }
}
