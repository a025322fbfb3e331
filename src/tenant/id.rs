//! [`TenantId`]: a value that can only hold a valid tenant id.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, echo};

/// The id of a tenant: a positive `i64`, parsed strictly.
///
/// Parsing accepts ASCII digits only: no sign, no whitespace, no leading zero, no value
/// outside `1..=i64::MAX`. So `"1 OR 1=1"`, `"-1"`, `"0"`, `"007"` and `"+7"` are all refused.
///
/// ```
/// use rls_tenancy::TenantId;
/// let id: TenantId = "42".parse()?;
/// assert_eq!(id.get(), 42);
/// assert!("042".parse::<TenantId>().is_err());
/// assert!("-1".parse::<TenantId>().is_err());
/// assert!(TenantId::new(0).is_err());
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct TenantId(i64);

impl TenantId {
    /// Wraps an id that came from a trusted source (the database).
    ///
    /// # Errors
    /// [`Error::InvalidTenantId`] when `id` is not positive.
    ///
    /// ```
    /// use rls_tenancy::TenantId;
    /// assert_eq!(TenantId::new(7)?.get(), 7);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn new(id: i64) -> Result<Self, Error> {
        if id > 0 {
            Ok(Self(id))
        } else {
            Err(Error::InvalidTenantId {
                input: id.to_string(),
            })
        }
    }

    /// The id as an integer.
    ///
    /// ```
    /// # use rls_tenancy::TenantId;
    /// assert_eq!(TenantId::new(3)?.get(), 3);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn get(self) -> i64 {
        self.0
    }
}

impl FromStr for TenantId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidTenantId { input: echo(s) };
        let digits_only = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits_only || s.starts_with('0') {
            return Err(invalid());
        }
        let id: i64 = s.parse().map_err(|_| invalid())?;
        Self::new(id).map_err(|_| invalid())
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_positive_integers_parse() {
        for ok in ["1", "42", "9223372036854775807"] {
            assert!(ok.parse::<TenantId>().is_ok(), "{ok} should parse");
        }
        for bad in [
            "",
            "0",
            "00",
            "01",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1 OR 1=1",
            "9223372036854775808",
            "99999999999999999999999",
            "1e3",
            "0x10",
            "١",
        ] {
            assert!(bad.parse::<TenantId>().is_err(), "{bad:?} should be refused");
        }
    }
}
