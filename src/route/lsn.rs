//! [`Lsn`]: a position in the primary's write-ahead log.

use std::fmt;
use std::str::FromStr;

/// A write-ahead log position, as PostgreSQL prints it (`16/B374D848`): how far a primary
/// has written or a standby has replayed. Positions only grow, so they compare.
///
/// ```
/// use rls_tenancy::Lsn;
/// let lsn: Lsn = "16/B374D848".parse()?;
/// assert_eq!(lsn.to_string(), "16/B374D848");
/// assert!(lsn > "16/B374D847".parse()?);
/// assert!("16-B3".parse::<Lsn>().is_err());
/// # Ok::<(), rls_tenancy::LsnError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(u64);

/// A WAL position that is not of the form `X/Y` with hexadecimal halves.
///
/// ```
/// assert!("nope".parse::<rls_tenancy::Lsn>().unwrap_err().to_string().contains("X/Y"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a WAL position: expected two hexadecimal numbers as X/Y, like 16/B374D848")]
pub struct LsnError;

impl Lsn {
    /// The position as one number (bytes since the start of the log).
    ///
    /// ```
    /// assert_eq!("1/0".parse::<rls_tenancy::Lsn>()?.as_u64(), 1 << 32);
    /// # Ok::<(), rls_tenancy::LsnError>(())
    /// ```
    pub fn as_u64(self) -> u64 {
        self.0
    }

    /// The position `n` bytes from the start of the log.
    ///
    /// ```
    /// use rls_tenancy::Lsn;
    /// assert_eq!(Lsn::from_u64(1 << 32).to_string(), "1/0");
    /// ```
    pub fn from_u64(n: u64) -> Self {
        Self(n)
    }
}

impl FromStr for Lsn {
    type Err = LsnError;

    fn from_str(s: &str) -> Result<Self, LsnError> {
        let (high, low) = s.split_once('/').ok_or(LsnError)?;
        let half = |part: &str| {
            if part.is_empty() || part.len() > 8 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(LsnError);
            }
            u32::from_str_radix(part, 16).map_err(|_| LsnError)
        };
        Ok(Self((u64::from(half(high)?) << 32) | u64::from(half(low)?)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}
