//! The one validation every resolver shares: is this text a routable tenant label?
//!
//! A host's left-most label, a tenant header's value and a `/t/{slug}/` path segment all end
//! up here, so a tenant reachable one way is reachable every way, and a name refused one way
//! is refused every way.

use super::TenantSlug;

/// Why a would-be tenant name (a host label, a header value, a path segment) was refused.
///
/// ```
/// use rls_tenancy::{HostError, LabelError, BaseDomain, subdomain_slug};
/// let base: BaseDomain = "example.com".parse()?;
/// assert_eq!(
///     subdomain_slug("xn--80ak6aa92e.example.com", &base),
///     Err(HostError::Label(LabelError::ReservedHyphens)),
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LabelError {
    /// Nothing where the tenant's name should be.
    #[error("the tenant name is empty: put the tenant's slug there")]
    Empty,
    /// Longer than a DNS label may be.
    #[error("a name of {len} bytes is too long: a label has at most 63")]
    TooLong {
        /// The length found, in bytes.
        len: usize,
    },
    /// An upper-case ASCII letter. Browsers send hosts in lower case; anything else is a
    /// hand-made request, and case folding is where lookalike tricks start.
    #[error("upper-case letters are not accepted: use the lower-case form")]
    UpperCase,
    /// A byte outside ASCII: an internationalised name in Unicode form, or garbage.
    #[error("non-ASCII characters are not accepted: tenant names are plain ASCII")]
    NonAscii,
    /// An ASCII character that is not a lowercase letter, a digit or a hyphen.
    #[error(
        "{ch:?} is not allowed in a tenant name: use lowercase ASCII letters, digits and inner hyphens"
    )]
    InvalidCharacter {
        /// The first offending character.
        ch: char,
    },
    /// A hyphen first or last.
    #[error("a tenant name cannot start or end with a hyphen")]
    EdgeHyphen,
    /// Hyphens in the third and fourth place: the reserved form IDNA uses for punycode
    /// (`xn--`). Browsers show such a label in Unicode, where it can pass for another
    /// tenant's name, and no tenant slug needs it.
    #[error(
        "names with hyphens in the third and fourth place (punycode such as xn--) are not accepted"
    )]
    ReservedHyphens,
}

/// Validates `label` as a tenant name and returns it as a slug.
///
/// This is the one definition of a valid slug: [`TenantSlug`]'s parser calls it too.
pub(crate) fn tenant_label(label: &str) -> Result<TenantSlug, LabelError> {
    let bytes = label.as_bytes();
    if bytes.is_empty() {
        return Err(LabelError::Empty);
    }
    if bytes.len() > TenantSlug::MAX_LEN {
        return Err(LabelError::TooLong { len: bytes.len() });
    }
    if !label.is_ascii() {
        return Err(LabelError::NonAscii);
    }
    if bytes.iter().any(u8::is_ascii_uppercase) {
        return Err(LabelError::UpperCase);
    }
    let allowed = |c: &char| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-';
    if let Some(ch) = label.chars().find(|c| !allowed(c)) {
        return Err(LabelError::InvalidCharacter { ch });
    }
    if bytes.first() == Some(&b'-') || bytes.last() == Some(&b'-') {
        return Err(LabelError::EdgeHyphen);
    }
    if bytes.get(2..4) == Some(b"--") {
        return Err(LabelError::ReservedHyphens);
    }
    Ok(TenantSlug::from_checked(label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_labels_are_lowercase_ldh_without_reserved_hyphens() {
        for ok in ["a", "0", "tenant-1", "a-b-c", "ab-c--d", &"z".repeat(63)] {
            assert!(tenant_label(ok).is_ok(), "{ok:?} should be accepted");
        }
        let cases: &[(&str, LabelError)] = &[
            ("", LabelError::Empty),
            (&"a".repeat(64), LabelError::TooLong { len: 64 }),
            ("Acme", LabelError::UpperCase),
            ("acmé", LabelError::NonAscii),
            ("ac_me", LabelError::InvalidCharacter { ch: '_' }),
            ("ac%6de", LabelError::InvalidCharacter { ch: '%' }),
            ("ac\0me", LabelError::InvalidCharacter { ch: '\0' }),
            ("-acme", LabelError::EdgeHyphen),
            ("acme-", LabelError::EdgeHyphen),
            ("xn--acme", LabelError::ReservedHyphens),
            ("ab--cd", LabelError::ReservedHyphens),
        ];
        for (input, expected) in cases {
            assert_eq!(tenant_label(input).as_ref(), Err(expected), "{input:?}");
        }
    }
}
