//! [`GuardOptions`]: what the guard checks against, and [`ServerVersion`] floors.

use std::fmt;
use std::str::FromStr;

use super::{GuardError, Result};
use crate::policy::{Ident, TenancyDeclaration, TenantContext, TenantVariable};
use crate::tenant::echo;

/// A PostgreSQL release, `MAJOR.MINOR` (PostgreSQL 10 and later).
///
/// ```
/// use rls_tenancy::guard::ServerVersion;
/// let v: ServerVersion = "15.14".parse()?;
/// assert_eq!((v.major, v.minor), (15, 14));
/// assert_eq!(ServerVersion::from_version_num(150020), "15.20".parse()?);
/// assert!("15".parse::<ServerVersion>().is_err());
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerVersion {
    /// The major version (`15`).
    pub major: u32,
    /// The minor release within it (`14`).
    pub minor: u32,
}

impl ServerVersion {
    /// From `server_version_num` (`150014` is 15.14). Releases before 10 map to `0.0`, which
    /// is below every floor.
    ///
    /// ```
    /// # use rls_tenancy::guard::ServerVersion;
    /// assert_eq!(ServerVersion::from_version_num(170006).to_string(), "17.6");
    /// assert_eq!(ServerVersion::from_version_num(90624).to_string(), "0.0");
    /// ```
    pub fn from_version_num(num: u32) -> Self {
        if num < 100_000 {
            return Self { major: 0, minor: 0 };
        }
        Self {
            major: num / 10_000,
            minor: num % 10_000,
        }
    }
}

impl FromStr for ServerVersion {
    type Err = GuardError;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = || GuardError::InvalidServerVersion { input: echo(s) };
        let (major, minor) = s.trim().split_once('.').ok_or_else(invalid)?;
        let number = |part: &str| -> Result<u32> {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            part.parse().map_err(|_| invalid())
        };
        let version = Self {
            major: number(major)?,
            minor: number(minor)?,
        };
        if version.major < 10 {
            return Err(invalid());
        }
        Ok(version)
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The default floors: the releases of 2025-08-14 (17.6, 16.10, 15.14, 14.19, 13.22) fixed
/// CVE-2025-8713, where optimizer statistics leaked sampled rows of a view, partition or child
/// table past row-level security. They also carry the earlier RLS fixes: CVE-2024-10976
/// (policies below subqueries ignored a change of user id; 17.1, 16.5, 15.9, 14.14, 13.17) and
/// CVE-2023-2455 (policies ignored a change of user id after inlining; 15.3, 14.8, 13.11).
/// 18.0 was released with the fix. Majors older than 13 are out of support and always warn.
const DEFAULT_FLOORS: [ServerVersion; 6] = [
    ServerVersion {
        major: 13,
        minor: 22,
    },
    ServerVersion {
        major: 14,
        minor: 19,
    },
    ServerVersion {
        major: 15,
        minor: 14,
    },
    ServerVersion {
        major: 16,
        minor: 10,
    },
    ServerVersion {
        major: 17,
        minor: 6,
    },
    ServerVersion {
        major: 18,
        minor: 0,
    },
];

/// What the guard checks against: a declaration (its schema, tenant tables and registry),
/// the tenant variable (default `app.tenant_id`), the inspected role (default: the
/// connection's own), the allowed `SECURITY DEFINER` functions (default none), and the
/// server version floors of the last row-level security fix (CVE-2025-8713: 13.22, 14.19,
/// 15.14, 16.10, 17.6, 18.0).
///
/// ```
/// use rls_tenancy::{TenancyDeclaration, guard::GuardOptions};
/// let options = GuardOptions::new(TenancyDeclaration::reference()?)
///     .role("app_runtime")
///     .allow_security_definer("app.current_account_slug")
///     .min_server_versions(vec!["16.10".parse()?]);
/// assert_eq!(options.inspected_role(), Some("app_runtime"));
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct GuardOptions {
    declaration: TenancyDeclaration,
    /// `None` is the declaration's schema.
    schema: Option<Ident>,
    variable: TenantVariable,
    role: Option<String>,
    security_definer_allowlist: Vec<String>,
    /// `None` is [`DEFAULT_FLOORS`].
    version_floors: Option<Vec<ServerVersion>>,
    /// A tenant database of the database strategy: no registry here.
    tenant_database: bool,
}

/// How a server falls short of the version floors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shortfall {
    /// Its major has a floor, and its minor release is older: the floor.
    Minor(ServerVersion),
    /// Its major is older than every floor: the oldest major with one.
    Major(u32),
}

/// [`GuardOptions`] with the declaration parsed and the schema decided.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) declaration: TenancyDeclaration,
    pub(crate) schema: Ident,
    /// Whether the declared tenant tables must exist (only in the declaration's schema).
    pub(crate) requires_declared_tables: bool,
}

impl GuardOptions {
    /// Guards the schema, tenant tables and registry of `declaration`, with the tenant
    /// variable `app.tenant_id`, as the role of the connection, with no `SECURITY DEFINER`
    /// function allowed and the default server version floors.
    ///
    /// ```
    /// use rls_tenancy::{TenancyDeclaration, guard::GuardOptions};
    /// let options = GuardOptions::new(TenancyDeclaration::reference()?);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn new(declaration: TenancyDeclaration) -> Self {
        Self {
            declaration,
            schema: None,
            variable: TenantVariable::default(),
            role: None,
            security_definer_allowlist: Vec::new(),
            version_floors: None,
            tenant_database: false,
        }
    }

    /// The declaration guarded.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, guard::GuardOptions};
    /// let options = GuardOptions::new(TenancyDeclaration::reference()?);
    /// assert_eq!(options.declaration().schema().as_str(), "app");
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn declaration(&self) -> &TenancyDeclaration {
        &self.declaration
    }

    /// Guards a tenant database of the database strategy: the declaration's schema and tenant
    /// tables are checked there as anywhere, but the registry (and its domains table) lives
    /// in the control database, so it is not required here.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, guard::GuardOptions};
    /// let options = GuardOptions::new(TenancyDeclaration::reference()?).tenant_database();
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn tenant_database(mut self) -> Self {
        self.tenant_database = true;
        self
    }

    /// Whether this guards a tenant database ([`GuardOptions::tenant_database`]).
    pub(crate) fn is_tenant_database(&self) -> bool {
        self.tenant_database
    }

    /// Guards another schema than the declaration's. The declared tenant tables are then not
    /// required to exist; tenant tables are the tables that have a declared tenant column.
    ///
    /// ```
    /// # use rls_tenancy::{Ident, TenancyDeclaration, guard::GuardOptions};
    /// let options = GuardOptions::new(TenancyDeclaration::reference()?).schema(Ident::parse("schema", "billing")?);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn schema(mut self, schema: Ident) -> Self {
        self.schema = Some(schema);
        self
    }

    /// The tenant variable the canonical predicate reads (default `app.tenant_id`).
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantVariable, guard::GuardOptions};
    /// let options = GuardOptions::new(TenancyDeclaration::reference()?).tenant_variable(TenantVariable::parse("myapp.tenant")?);
    /// assert_eq!(options.variable().as_str(), "myapp.tenant");
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn tenant_variable(mut self, variable: TenantVariable) -> Self {
        self.variable = variable;
        self
    }

    /// Inspects `role` instead of the connection's own role (`current_user`). Checks that
    /// depend on the session itself (a tenant variable set by the client) are then skipped.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, guard::GuardOptions};
    /// let options = GuardOptions::new(TenancyDeclaration::reference()?).role("app_runtime");
    /// assert_eq!(options.inspected_role(), Some("app_runtime"));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// The same options inspecting the connection's own role again: what the pool uses, since
    /// the role a pool's connections log in as is the one that must be checked.
    pub(crate) fn own_role(mut self) -> Self {
        self.role = None;
        self
    }

    /// Allows one `SECURITY DEFINER` function, as `schema.name` or a bare `name` (any
    /// schema). Every overload of that name is allowed.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, guard::GuardOptions};
    /// let options = GuardOptions::new(TenancyDeclaration::reference()?).allow_security_definer("app.resolve_slug");
    /// assert!(options.allows_security_definer("app", "resolve_slug"));
    /// assert!(!options.allows_security_definer("public", "resolve_slug"));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn allow_security_definer(mut self, function: impl Into<String>) -> Self {
        self.security_definer_allowlist.push(function.into());
        self
    }

    /// Replaces the server version floors: one per major version. A server whose major has
    /// a floor warns below it; a major older than every floor always warns; a newer one
    /// passes.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, guard::GuardOptions};
    /// let options = GuardOptions::new(TenancyDeclaration::reference()?).min_server_versions(vec!["15.20".parse()?]);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn min_server_versions(mut self, floors: Vec<ServerVersion>) -> Self {
        self.version_floors = Some(floors);
        self
    }

    /// The tenant context the canonical predicate reads: the variable, cast to the
    /// declaration's key type.
    pub(crate) fn tenant_context(&self) -> TenantContext {
        TenantContext::new(self.variable.clone(), self.declaration.key_type())
    }

    /// The tenant variable.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, guard::GuardOptions};
    /// assert_eq!(GuardOptions::new(TenancyDeclaration::reference()?).variable().as_str(), "app.tenant_id");
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn variable(&self) -> &TenantVariable {
        &self.variable
    }

    /// The role named with [`GuardOptions::role`], if any.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, guard::GuardOptions};
    /// assert_eq!(GuardOptions::new(TenancyDeclaration::reference()?).inspected_role(), None);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn inspected_role(&self) -> Option<&str> {
        self.role.as_deref()
    }

    /// Whether the `SECURITY DEFINER` function `schema.name` is allowlisted.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, guard::GuardOptions};
    /// let options = GuardOptions::new(TenancyDeclaration::reference()?).allow_security_definer("resolve_slug");
    /// assert!(options.allows_security_definer("public", "resolve_slug"));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn allows_security_definer(&self, schema: &str, name: &str) -> bool {
        self.security_definer_allowlist
            .iter()
            .any(|entry| match entry.split_once('.') {
                Some((s, n)) => s == schema && n == name,
                None => entry == name,
            })
    }

    /// How `version` falls short of the floors, if it does.
    pub(crate) fn shortfall(&self, version: ServerVersion) -> Option<Shortfall> {
        let floors = self.version_floors.as_deref().unwrap_or(&DEFAULT_FLOORS);
        if let Some(floor) = floors.iter().find(|f| f.major == version.major) {
            return (version < *floor).then_some(Shortfall::Minor(*floor));
        }
        let oldest = floors.iter().map(|f| f.major).min()?;
        (version.major < oldest).then_some(Shortfall::Major(oldest))
    }

    /// Decides the schema.
    pub(crate) fn resolve(&self) -> Result<Resolved> {
        let declaration = self.declaration.clone();
        let schema = self
            .schema
            .clone()
            .unwrap_or_else(|| declaration.schema().clone());
        Ok(Resolved {
            requires_declared_tables: schema == *declaration.schema(),
            declaration,
            schema,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_schema_does_not_require_the_declared_tables()
    -> Result<(), Box<dyn std::error::Error>> {
        assert!(
            GuardOptions::new(TenancyDeclaration::reference()?)
                .resolve()?
                .requires_declared_tables
        );
        let other = GuardOptions::new(TenancyDeclaration::reference()?)
            .schema(Ident::parse("schema", "billing")?);
        let resolved = other.resolve()?;
        assert_eq!(resolved.schema.as_str(), "billing");
        assert!(!resolved.requires_declared_tables);
        Ok(())
    }

    #[test]
    fn version_floors_compare_within_a_major() -> Result<(), Box<dyn std::error::Error>> {
        let options = GuardOptions::new(TenancyDeclaration::reference()?);
        assert_eq!(
            options.shortfall("15.3".parse()?),
            Some(Shortfall::Minor("15.14".parse()?))
        );
        assert_eq!(options.shortfall("15.14".parse()?), None);
        assert_eq!(options.shortfall("19.1".parse()?), None);
        assert_eq!(
            options.shortfall("12.22".parse()?),
            Some(Shortfall::Major(13))
        );
        Ok(())
    }

    #[test]
    fn malformed_versions_are_rejected() {
        for bad in ["", "15", "15.", ".1", "15.x", "9.6", "-15.1", "15.1.2"] {
            assert!(
                bad.parse::<ServerVersion>().is_err(),
                "{bad:?} was accepted"
            );
        }
    }
}
