//! [`TenantSlug`]: the DNS-label-shaped name of a tenant (`tenant-1`).

use std::fmt;
use std::str::FromStr;

use super::TenantError;
use super::error::echo;
use super::label::tenant_label;

/// A tenant's slug: 1–63 lowercase ASCII letters, digits and inner hyphens, i.e. one DNS
/// label that needs no encoding, and not a reserved `??--` label (punycode `xn--`). The
/// database enforces the same shape on `app.accounts`.
///
/// ```
/// use rls_tenancy::TenantSlug;
/// let slug: TenantSlug = "tenant-1".parse()?;
/// assert_eq!(slug.as_str(), "tenant-1");
/// assert!("Tenant-1".parse::<TenantSlug>().is_err());
/// assert!("-x".parse::<TenantSlug>().is_err());
/// # Ok::<(), rls_tenancy::TenantError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct TenantSlug(String);

impl TenantSlug {
    /// The longest slug: the longest DNS label.
    pub const MAX_LEN: usize = 63;

    /// The slug as text.
    ///
    /// ```
    /// # use rls_tenancy::TenantSlug;
    /// assert_eq!("acme".parse::<TenantSlug>()?.as_str(), "acme");
    /// # Ok::<(), rls_tenancy::TenantError>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Wraps a label that [`tenant_label`] has checked.
    pub(super) fn from_checked(label: &str) -> Self {
        Self(label.to_owned())
    }
}

impl FromStr for TenantSlug {
    type Err = TenantError;

    fn from_str(s: &str) -> Result<Self, TenantError> {
        tenant_label(s).map_err(|reason| TenantError::InvalidTenantSlug {
            input: echo(s),
            reason,
        })
    }
}

impl fmt::Display for TenantSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_single_lowercase_dns_labels() {
        for ok in ["a", "tenant-0", "x1-2-3", &"a".repeat(63)] {
            assert!(ok.parse::<TenantSlug>().is_ok(), "{ok} should parse");
        }
        for bad in [
            "",
            "-",
            "a-",
            "-a",
            "A",
            "a_b",
            "a.b",
            "a b",
            "ä",
            "a%2e",
            "a\0",
            &"a".repeat(64),
        ] {
            assert!(
                bad.parse::<TenantSlug>().is_err(),
                "{bad:?} should be refused"
            );
        }
    }
}
