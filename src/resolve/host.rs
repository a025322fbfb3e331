//! Strict parsing of a request's host into a tenant slug: [`BaseDomain`], [`subdomain_slug`].

use std::fmt;
use std::str::FromStr;

use super::ResolveError;
use crate::tenant::{LabelError, TenantSlug, echo, tenant_label};

/// The longest host name (without port or trailing dot), per RFC 1035.
const MAX_NAME_LEN: usize = 253;
/// The longest host we look at at all: a maximal name, a root dot and `:65535`.
const MAX_HOST_LEN: usize = MAX_NAME_LEN + 1 + 6;

/// Why a host was refused. Each variant is a 400 in the HTTP layer.
///
/// ```
/// use rls_tenancy::{BaseDomain, HostError, subdomain_slug};
/// let base: BaseDomain = "example.com".parse()?;
/// assert_eq!(subdomain_slug("a.b.example.com", &base), Err(HostError::ExtraLabels { count: 2 }));
/// assert_eq!(subdomain_slug("127.0.0.1:8080", &base), Err(HostError::IpLiteral));
/// # Ok::<(), rls_tenancy::ResolveError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// No host at all.
    #[error("the host is empty: send the tenant's domain name in the Host header")]
    Empty,
    /// Longer than a DNS name may be.
    #[error("the host is {len} bytes long: a domain name has at most 253")]
    TooLong {
        /// The length found, in bytes.
        len: usize,
    },
    /// A control byte, NUL included.
    #[error("the host contains a control character: send the plain domain name")]
    ControlCharacter,
    /// A space or another whitespace character.
    #[error("the host contains whitespace: send the plain domain name")]
    Whitespace,
    /// A `%`: hosts are never percent-encoded on the wire.
    #[error("the host is percent-encoded: send the plain domain name")]
    PercentEncoded,
    /// An `@`: user information has no place in a `Host` header.
    #[error("the host contains '@': user information is not accepted in a host")]
    Userinfo,
    /// An IPv4 or IPv6 address: it names a machine, not a tenant.
    #[error("an IP address names no tenant: use the tenant's domain name")]
    IpLiteral,
    /// A port that is not plain decimal `1..=65535`.
    #[error("invalid port: use decimal digits for 1 to 65535, without sign or leading zeros")]
    InvalidPort,
    /// Two dots in a row, a leading dot, or more than one trailing dot.
    #[error("the host has an empty label (a leading dot or two dots in a row)")]
    EmptyLabel,
    /// A name that is neither the base domain nor under it.
    #[error("the host is not under the configured base domain")]
    ForeignDomain,
    /// More than one label between the tenant and the base domain.
    #[error("the tenant must be the single label left of the base domain, found {count} labels")]
    ExtraLabels {
        /// How many labels stand left of the base domain.
        count: usize,
    },
    /// A label of the wrong shape; for the tenant label, see [`LabelError`].
    #[error(transparent)]
    Label(#[from] LabelError),
}

/// The domain tenants live under (`example.com`, `localhost`), validated once at start-up.
///
/// Lowercase ASCII labels of letters, digits and inner hyphens; one trailing dot is dropped;
/// no port, no IP address.
///
/// ```
/// use rls_tenancy::BaseDomain;
/// let base: BaseDomain = "example.com.".parse()?;
/// assert_eq!(base.as_str(), "example.com");
/// assert!("Example.com".parse::<BaseDomain>().is_err());
/// assert!("127.0.0.1".parse::<BaseDomain>().is_err());
/// assert!("example.com:80".parse::<BaseDomain>().is_err());
/// # Ok::<(), rls_tenancy::ResolveError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaseDomain(String);

impl BaseDomain {
    /// Validates a base domain.
    ///
    /// # Errors
    /// [`ResolveError::InvalidBaseDomain`] with the [`HostError`] that explains why.
    ///
    /// ```
    /// # use rls_tenancy::BaseDomain;
    /// assert_eq!(BaseDomain::parse("localhost")?.as_str(), "localhost");
    /// # Ok::<(), rls_tenancy::ResolveError>(())
    /// ```
    pub fn parse(input: &str) -> Result<Self, ResolveError> {
        let invalid = |reason| ResolveError::InvalidBaseDomain {
            input: echo(input),
            reason,
        };
        screen(input).map_err(invalid)?;
        if input.contains(':') {
            return Err(invalid(HostError::InvalidPort));
        }
        let name = input.strip_suffix('.').unwrap_or(input);
        check_name(name).map_err(invalid)?;
        for label in name.split('.') {
            base_label(label).map_err(|e| invalid(HostError::Label(e)))?;
        }
        Ok(Self(name.to_owned()))
    }

    /// The domain, without a trailing dot.
    ///
    /// ```
    /// # use rls_tenancy::BaseDomain;
    /// assert_eq!("example.com".parse::<BaseDomain>()?.as_str(), "example.com");
    /// # Ok::<(), rls_tenancy::ResolveError>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for BaseDomain {
    type Err = ResolveError;

    fn from_str(s: &str) -> Result<Self, ResolveError> {
        Self::parse(s)
    }
}

impl fmt::Display for BaseDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Finds the tenant a request's host names.
///
/// `host` is the request's `Host` (or `:authority`) as sent, port included. The tenant is
/// the single DNS label left of the base domain: `tenant-1.example.com` is tenant `tenant-1`
/// under `example.com`. Returns `Ok(Some(slug))` for `slug.<base>`, `Ok(None)` for the bare
/// base domain (no tenant: the landing page), and a [`HostError`] (a 400 in the HTTP layer)
/// for anything a browser would not send for such a name:
///
/// - a port is stripped after checking it: decimal digits, `1..=65535`, no sign, no leading
///   zero;
/// - one trailing dot (the DNS root) is tolerated, two are an empty label;
/// - refused outright: control bytes (NUL included), whitespace, percent-encoding, user
///   information (`@`), IPv4 and IPv6 literals, non-ASCII (IDN in Unicode form), upper-case
///   letters, empty labels, labels over 63 bytes, names over 253 bytes, names outside the base
///   domain, more than one label left of it;
/// - the tenant label must be a plain slug (lowercase letters, digits, inner hyphens) and not
///   a reserved `??--` label: punycode (`xn--...`) is refused because a browser shows it in
///   Unicode, where it can pass for another tenant's name, and no slug needs it.
///
/// # Errors
/// A [`HostError`] naming the first rule the host breaks.
///
/// ```
/// use rls_tenancy::{BaseDomain, HostError, LabelError, subdomain_slug};
/// let base: BaseDomain = "localhost".parse()?;
/// let slug = subdomain_slug("tenant-1.localhost:8080", &base)?.expect("a tenant");
/// assert_eq!(slug.as_str(), "tenant-1");
/// assert_eq!(subdomain_slug("localhost:8080", &base)?, None);
/// assert_eq!(subdomain_slug("Tenant-1.localhost", &base), Err(HostError::Label(LabelError::UpperCase)));
/// assert_eq!(subdomain_slug("tenant-1.localhost:08080", &base), Err(HostError::InvalidPort));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn subdomain_slug(host: &str, base: &BaseDomain) -> Result<Option<TenantSlug>, HostError> {
    let name = host_name(host)?;
    if name == base.as_str() {
        return Ok(None);
    }
    let left = name
        .strip_suffix(base.as_str())
        .and_then(|left| left.strip_suffix('.'))
        .ok_or(HostError::ForeignDomain)?;
    let count = left.split('.').count();
    if count > 1 {
        return Err(HostError::ExtraLabels { count });
    }
    Ok(Some(tenant_label(left)?))
}

/// The name part of a request's host, held to the rules of [`subdomain_slug`]: port checked
/// and stripped, one root dot dropped, no IP literal, no upper case.
pub(super) fn host_name(host: &str) -> Result<&str, HostError> {
    screen(host)?;
    let name = strip_port(host)?;
    let name = name.strip_suffix('.').unwrap_or(name);
    check_name(name)?;
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(LabelError::UpperCase.into());
    }
    Ok(name)
}

/// Whole-string checks that hold for any part of a host: length and forbidden characters.
fn screen(host: &str) -> Result<(), HostError> {
    if host.is_empty() {
        return Err(HostError::Empty);
    }
    if host.len() > MAX_HOST_LEN {
        return Err(HostError::TooLong { len: host.len() });
    }
    for c in host.chars() {
        match c {
            c if c.is_control() => return Err(HostError::ControlCharacter),
            c if c.is_whitespace() => return Err(HostError::Whitespace),
            '%' => return Err(HostError::PercentEncoded),
            '@' => return Err(HostError::Userinfo),
            '[' | ']' => return Err(HostError::IpLiteral),
            c if !c.is_ascii() => return Err(LabelError::NonAscii.into()),
            _ => {}
        }
    }
    Ok(())
}

/// Splits off and checks the port; returns the name part.
fn strip_port(host: &str) -> Result<&str, HostError> {
    let Some((name, port)) = host.split_once(':') else {
        return Ok(host);
    };
    if port.contains(':') {
        // Only an IPv6 address has more than one colon; bracketed ones were refused earlier.
        return Err(HostError::IpLiteral);
    }
    let digits = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    if !digits || port.starts_with('0') {
        return Err(HostError::InvalidPort);
    }
    match port.parse::<u32>() {
        Ok(1..=65535) => Ok(name),
        _ => Err(HostError::InvalidPort),
    }
}

/// Checks the dotted name (port and root dot already removed): length, empty and long
/// labels, and that it is not an IPv4 address (whose last label is all digits, which no
/// top-level domain is).
fn check_name(name: &str) -> Result<(), HostError> {
    if name.is_empty() {
        return Err(HostError::EmptyLabel);
    }
    if name.len() > MAX_NAME_LEN {
        return Err(HostError::TooLong { len: name.len() });
    }
    let mut last = "";
    for label in name.split('.') {
        if label.is_empty() {
            return Err(HostError::EmptyLabel);
        }
        if label.len() > TenantSlug::MAX_LEN {
            return Err(LabelError::TooLong { len: label.len() }.into());
        }
        last = label;
    }
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HostError::IpLiteral);
    }
    Ok(())
}

/// A label of the base domain: letters, digits, inner hyphens, lower case. Unlike a tenant
/// label it may be punycode: the operator chose it, and it is the same for every tenant.
fn base_label(label: &str) -> Result<(), LabelError> {
    if label.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(LabelError::UpperCase);
    }
    let allowed = |c: &char| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-';
    if let Some(ch) = label.chars().find(|c| !allowed(c)) {
        return Err(LabelError::InvalidCharacter { ch });
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(LabelError::EdgeHyphen);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What a host should come to: a tenant, the bare base domain, or a refusal.
    #[derive(Debug, PartialEq)]
    enum Outcome {
        Tenant(&'static str),
        Landing,
        Refused(HostError),
    }
    use Outcome::{Landing, Refused, Tenant};

    fn label(e: LabelError) -> Outcome {
        Refused(HostError::Label(e))
    }

    fn outcome(host: &str, base: &BaseDomain) -> Outcome {
        match subdomain_slug(host, base) {
            Ok(Some(slug)) => Tenant(Box::leak(slug.as_str().to_owned().into_boxed_str())),
            Ok(None) => Landing,
            Err(e) => Refused(e),
        }
    }

    #[test]
    fn hosts_resolve_or_are_refused_exactly_as_the_table_says() -> Result<(), ResolveError> {
        let base = BaseDomain::parse("example.com")?;
        let long_label = format!("{}.example.com", "a".repeat(64));
        let max_label = format!("{}.example.com", "a".repeat(63));
        let long_name = format!("{}example.com", "abcdefghi.".repeat(25));
        let huge = "a".repeat(10_000);
        let table: Vec<(&str, Outcome)> = vec![
            // accepted
            ("acme.example.com", Tenant("acme")),
            ("tenant-1.example.com", Tenant("tenant-1")),
            ("tenant-1.example.com:8080", Tenant("tenant-1")),
            ("tenant-1.example.com:1", Tenant("tenant-1")),
            ("tenant-1.example.com:65535", Tenant("tenant-1")),
            ("tenant-1.example.com.", Tenant("tenant-1")),
            ("tenant-1.example.com.:443", Tenant("tenant-1")),
            ("0.example.com", Tenant("0")),
            ("007.example.com", Tenant("007")),
            ("a-b-c.example.com", Tenant("a-b-c")),
            (
                &max_label,
                Tenant(Box::leak("a".repeat(63).into_boxed_str())),
            ),
            // the bare base domain: no tenant, not an error
            ("example.com", Landing),
            ("example.com:8080", Landing),
            ("example.com.", Landing),
            // ports
            ("tenant-1.example.com:", Refused(HostError::InvalidPort)),
            ("tenant-1.example.com:0", Refused(HostError::InvalidPort)),
            ("tenant-1.example.com:080", Refused(HostError::InvalidPort)),
            ("tenant-1.example.com:+80", Refused(HostError::InvalidPort)),
            ("tenant-1.example.com:-80", Refused(HostError::InvalidPort)),
            (
                "tenant-1.example.com:65536",
                Refused(HostError::InvalidPort),
            ),
            (
                "tenant-1.example.com:999999",
                Refused(HostError::InvalidPort),
            ),
            ("tenant-1.example.com:80a", Refused(HostError::InvalidPort)),
            ("tenant-1.example.com:0x50", Refused(HostError::InvalidPort)),
            // empty and long
            ("", Refused(HostError::Empty)),
            (".example.com", Refused(HostError::EmptyLabel)),
            ("tenant-1..example.com", Refused(HostError::EmptyLabel)),
            ("tenant-1.example.com..", Refused(HostError::EmptyLabel)),
            (".", Refused(HostError::EmptyLabel)),
            (":8080", Refused(HostError::EmptyLabel)),
            (&long_label, label(LabelError::TooLong { len: 64 })),
            (&long_name, Refused(HostError::TooLong { len: 261 })),
            (&huge, Refused(HostError::TooLong { len: 10_000 })),
            // case, IDN and punycode
            ("Tenant-1.example.com", label(LabelError::UpperCase)),
            ("tenant-1.EXAMPLE.com", label(LabelError::UpperCase)),
            ("TENANT-1.EXAMPLE.COM", label(LabelError::UpperCase)),
            ("tenänt.example.com", label(LabelError::NonAscii)),
            ("tenant-1.exämple.com", label(LabelError::NonAscii)),
            (
                "xn--tnant-1-bxa.example.com",
                label(LabelError::ReservedHyphens),
            ),
            ("te\u{200b}nant.example.com", label(LabelError::NonAscii)),
            ("tenant\u{ff0e}1.example.com", label(LabelError::NonAscii)),
            // label shape
            ("-tenant.example.com", label(LabelError::EdgeHyphen)),
            ("tenant-.example.com", label(LabelError::EdgeHyphen)),
            (
                "ten_ant.example.com",
                label(LabelError::InvalidCharacter { ch: '_' }),
            ),
            (
                "ten+ant.example.com",
                label(LabelError::InvalidCharacter { ch: '+' }),
            ),
            (
                "tenant*.example.com",
                label(LabelError::InvalidCharacter { ch: '*' }),
            ),
            (
                "ten'ant.example.com",
                label(LabelError::InvalidCharacter { ch: '\'' }),
            ),
            (
                "ten/ant.example.com",
                label(LabelError::InvalidCharacter { ch: '/' }),
            ),
            // structure
            (
                "a.b.example.com",
                Refused(HostError::ExtraLabels { count: 2 }),
            ),
            (
                "www.tenant-1.example.com",
                Refused(HostError::ExtraLabels { count: 2 }),
            ),
            ("tenant-1.example.org", Refused(HostError::ForeignDomain)),
            ("tenant-1.notexample.com", Refused(HostError::ForeignDomain)),
            ("tenant-1example.com", Refused(HostError::ForeignDomain)),
            ("example.com.evil.net", Refused(HostError::ForeignDomain)),
            ("com", Refused(HostError::ForeignDomain)),
            // smuggling
            (
                "tenant-1.example.com\0",
                Refused(HostError::ControlCharacter),
            ),
            (
                "tenant-1\0.example.com",
                Refused(HostError::ControlCharacter),
            ),
            (
                "tenant-1.example.com\r\nX-Evil: 1",
                Refused(HostError::ControlCharacter),
            ),
            (
                "tenant-1.example.com\t",
                Refused(HostError::ControlCharacter),
            ),
            (
                "\x7ftenant.example.com",
                Refused(HostError::ControlCharacter),
            ),
            (" tenant-1.example.com", Refused(HostError::Whitespace)),
            ("tenant-1.example.com ", Refused(HostError::Whitespace)),
            ("tenant-1.example.com\u{a0}", Refused(HostError::Whitespace)),
            ("tenant%2d1.example.com", Refused(HostError::PercentEncoded)),
            ("tenant-1%2eexample.com", Refused(HostError::PercentEncoded)),
            ("user@tenant-1.example.com", Refused(HostError::Userinfo)),
            (
                "tenant-2.example.com@tenant-1.example.com",
                Refused(HostError::Userinfo),
            ),
            // IP literals
            ("127.0.0.1", Refused(HostError::IpLiteral)),
            ("127.0.0.1:8080", Refused(HostError::IpLiteral)),
            ("2130706433", Refused(HostError::IpLiteral)),
            ("0x7f.0.0.1", Refused(HostError::IpLiteral)),
            ("[::1]", Refused(HostError::IpLiteral)),
            ("[::1]:8080", Refused(HostError::IpLiteral)),
            ("::1", Refused(HostError::IpLiteral)),
            ("fe80::1%25eth0", Refused(HostError::PercentEncoded)),
        ];
        assert!(table.len() >= 40, "the table must keep at least 40 hosts");
        for (host, expected) in table {
            assert_eq!(outcome(host, &base), expected, "host {host:?}");
        }
        Ok(())
    }

    #[test]
    fn localhost_works_as_a_single_label_base_domain() -> Result<(), ResolveError> {
        let base = BaseDomain::parse("localhost")?;
        assert_eq!(
            outcome("tenant-1.localhost:8080", &base),
            Tenant("tenant-1")
        );
        assert_eq!(outcome("localhost", &base), Landing);
        assert_eq!(outcome("localhost.:8080", &base), Landing);
        assert_eq!(
            outcome("tenant-1.localhostx", &base),
            Refused(HostError::ForeignDomain)
        );
        assert_eq!(
            outcome("a.tenant-1.localhost", &base),
            Refused(HostError::ExtraLabels { count: 2 })
        );
        Ok(())
    }

    #[test]
    fn base_domains_are_validated_once_and_strictly() {
        for ok in [
            "localhost",
            "example.com",
            "example.com.",
            "xn--bcher-kva.example",
            "a-1.b2",
        ] {
            assert!(BaseDomain::parse(ok).is_ok(), "{ok:?} should be accepted");
        }
        for bad in [
            "",
            ".",
            "Example.com",
            "example..com",
            ".example.com",
            "example.com:80",
            "127.0.0.1",
            "[::1]",
            "exa mple.com",
            "exam_ple.com",
            "-example.com",
            "exämple.com",
            "example.com..",
        ] {
            assert!(BaseDomain::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    fn host_like() -> impl Strategy<Value = String> {
        let label = prop_oneof![
            "[a-z0-9\\-]{0,66}",
            "[a-z0-9\\-]{0,4}[a-zA-Z0-9_%@:.\\-\\[\\] \u{0}\u{e9}]{0,3}[a-z0-9\\-]{0,4}",
        ];
        let port = prop_oneof![Just(String::new()), "[:][0-9+\\-]{0,7}"];
        (label, prop_oneof![Just("."), Just("..")], port).prop_map(|(l, dot, p)| {
            let trailing = if l.len() % 3 == 0 { "." } else { "" };
            format!("{l}{dot}example.com{trailing}{p}")
        })
    }

    proptest! {
        #[test]
        fn parsing_never_panics_on_any_string(host in any::<String>()) {
            let base = BaseDomain::parse("example.com").map_err(|e| TestCaseError::fail(e.to_string()))?;
            let _ = subdomain_slug(&host, &base);
        }

        #[test]
        fn every_accepted_host_yields_a_valid_slug_that_it_really_contains(host in host_like()) {
            let base = BaseDomain::parse("example.com").map_err(|e| TestCaseError::fail(e.to_string()))?;
            if let Ok(Some(slug)) = subdomain_slug(&host, &base) {
                prop_assert!(slug.as_str().parse::<TenantSlug>().is_ok());
                let prefix = format!("{slug}.example.com");
                prop_assert!(host.starts_with(&prefix));
                prop_assert_ne!(slug.as_str().get(2..4), Some("--"));
            }
        }
    }
}
