//! [`DomainName`]: a tenant's own full domain name, and [`DomainError`]: why a domain could
//! not be added, removed or read.

use std::fmt;
use std::str::FromStr;

use super::{BaseDomain, HostError, ResolveError, subdomain_slug};
use crate::tenant::{LabelError, TenantSlug, echo};

/// A full domain name a tenant is reached on (`blog.example.com`): a lowercase ASCII DNS
/// name held to the rules of [`BaseDomain`] (no port, no IP address, no empty label), and,
/// as for a tenant label, no punycode (`xn--`) label: a browser shows it in Unicode, where
/// it can pass for another tenant's domain. One trailing dot is dropped.
///
/// ```
/// use rls_tenancy::DomainName;
/// let domain: DomainName = "help.example.com.".parse()?;
/// assert_eq!(domain.as_str(), "help.example.com");
/// for refused in ["Help.example.com", "example.com:80", "10.0.0.1", "xn--80ak6aa92e.com", "a..b", ""] {
///     assert!(refused.parse::<DomainName>().is_err(), "{refused}");
/// }
/// # Ok::<(), rls_tenancy::DomainError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DomainName(String);

impl DomainName {
    /// Validates a domain name.
    ///
    /// # Errors
    /// [`DomainError::InvalidDomain`] naming the text and the rule it breaks.
    ///
    /// ```
    /// # use rls_tenancy::DomainName;
    /// assert_eq!(DomainName::parse("example.com")?.as_str(), "example.com");
    /// # Ok::<(), rls_tenancy::DomainError>(())
    /// ```
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let invalid = |reason| DomainError::InvalidDomain {
            input: echo(input),
            reason,
        };
        let base = BaseDomain::parse(input).map_err(|err| match err {
            ResolveError::InvalidBaseDomain { reason, .. } => invalid(reason),
            _ => invalid(HostError::Empty),
        })?;
        if base
            .as_str()
            .split('.')
            .any(|label| label.get(2..4) == Some("--"))
        {
            return Err(invalid(HostError::Label(LabelError::ReservedHyphens)));
        }
        Ok(Self(base.as_str().to_owned()))
    }

    /// The domain, without a trailing dot.
    ///
    /// ```
    /// # use rls_tenancy::DomainName;
    /// assert_eq!(DomainName::parse("blog.example.com")?.as_str(), "blog.example.com");
    /// # Ok::<(), rls_tenancy::DomainError>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Refuses the domain for tenant `slug` when subdomain routing under `base` already
    /// gives it to another tenant: `globex.example.com` is tenant `globex`'s (whether or not
    /// `globex` exists yet) and, as a domain of `acme`, would take its requests. The base
    /// domain itself, deeper names (`crm.globex.example.com`), `slug`'s own subdomain and
    /// names outside `base` pass.
    ///
    /// # Errors
    /// [`DomainError::OtherSubdomain`] naming the tenant subdomain routing gives it to.
    ///
    /// ```
    /// use rls_tenancy::{BaseDomain, DomainError, DomainName};
    /// let base: BaseDomain = "example.com".parse()?;
    /// let acme = "acme".parse()?;
    /// for ok in ["acme.example.com", "example.com", "crm.globex.example.com", "acme.test"] {
    ///     ok.parse::<DomainName>()?.refuse_other_subdomain(&acme, &base)?;
    /// }
    /// let err = "globex.example.com".parse::<DomainName>()?.refuse_other_subdomain(&acme, &base);
    /// assert!(matches!(err, Err(DomainError::OtherSubdomain { owner, .. }) if owner == "globex"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn refuse_other_subdomain(
        &self,
        slug: &TenantSlug,
        base: &BaseDomain,
    ) -> Result<(), DomainError> {
        match subdomain_slug(&self.0, base) {
            Ok(Some(owner)) if owner != *slug => Err(DomainError::OtherSubdomain {
                domain: self.0.clone(),
                owner: owner.to_string(),
                base: base.to_string(),
            }),
            _ => Ok(()),
        }
    }
}

impl FromStr for DomainName {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, DomainError> {
        Self::parse(s)
    }
}

impl fmt::Display for DomainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a tenant's domain could not be added, removed or read. Everything but
/// [`DomainError::Database`] is the caller's input (`rls-tenant` exits 2) and changes nothing.
///
/// ```
/// use rls_tenancy::{DomainError, DomainName};
/// let err = DomainName::parse("blog.example.com:8080").unwrap_err();
/// assert!(matches!(err, DomainError::InvalidDomain { .. }));
/// assert!(err.to_string().starts_with("invalid domain \"blog.example.com:8080\""));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// Text that is not a plain lowercase domain name.
    #[error(
        "invalid domain {input:?}: {reason}; give a lowercase domain name such as blog.example.com, without port"
    )]
    InvalidDomain {
        /// What was given, truncated for display.
        input: String,
        /// The rule it breaks.
        reason: HostError,
    },

    /// The domain is already a tenant's (this one's or another's).
    #[error(
        "domain {domain} already belongs to tenant {owner}: remove it there first (rls-tenant domain remove {domain})"
    )]
    Taken {
        /// The domain.
        domain: String,
        /// The slug of the tenant that has it, or the static tenant's name.
        owner: String,
    },

    /// The domain is another tenant's subdomain under the base domain.
    #[error(
        "domain {domain} is tenant {owner}'s subdomain under the base domain {base} (subdomain routing gives it to {owner}): pick a domain outside {base}"
    )]
    OtherSubdomain {
        /// The domain.
        domain: String,
        /// The slug subdomain routing gives it to.
        owner: String,
        /// The base domain.
        base: String,
    },

    /// The domain is a static tenant's, from the declaration.
    #[error(
        "domain {domain} belongs to static tenant {tenant} in the declaration: edit the declaration's [[static_tenant]] to move it"
    )]
    StaticDomain {
        /// The domain.
        domain: String,
        /// The static tenant's name.
        tenant: String,
    },

    /// No tenant in the registry has this slug.
    #[error("no tenant {slug} in the registry: check the slug (rls-tenant list)")]
    UnknownTenant {
        /// The slug looked up.
        slug: String,
    },

    /// No tenant has this domain.
    #[error("no tenant has domain {domain}: check the name (rls-tenant list)")]
    UnknownDomain {
        /// The domain looked up.
        domain: String,
    },

    /// The declaration names no domains table.
    #[error(
        "the declaration names no domains table: add domains_table under [registry] in the declaration, and the table to your migrations"
    )]
    NoDomainsTable,

    /// The domains table could not be read or written.
    #[error("cannot read or write the domains table: {0}")]
    Database(#[from] sqlx::Error),
}

impl DomainError {
    /// Whether the failure is the caller's input (a bad domain, someone else's domain, an
    /// unknown tenant or domain, a declaration without domains): exit code 2, not 1.
    ///
    /// ```
    /// let err = rls_tenancy::DomainError::UnknownDomain { domain: "a.example.com".into() };
    /// assert!(err.is_usage());
    /// ```
    pub fn is_usage(&self) -> bool {
        !matches!(self, Self::Database(_))
    }
}
