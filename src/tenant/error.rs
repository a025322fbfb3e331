//! [`TenantError`]: a tenant id or slug that does not have the allowed shape.

use super::{KeyType, LabelError};

/// Why a tenant id or slug was refused. Always the caller's input: HTTP 400, exit code 2.
///
/// ```
/// use rls_tenancy::{TenantError, TenantId};
/// let err = "007".parse::<TenantId>().unwrap_err();
/// assert!(matches!(err, TenantError::InvalidTenantId { .. }));
/// assert!(err.to_string().contains("leading zeros"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TenantError {
    /// A tenant id that is neither a canonical positive 64-bit integer nor a canonical UUID.
    #[error(
        "invalid tenant id {input:?}: use the decimal digits of a positive 64-bit integer without sign or leading zeros, or a UUID in lowercase hyphenated form"
    )]
    InvalidTenantId {
        /// What was given, truncated for display.
        input: String,
    },

    /// A valid id of the other key type than the schema uses.
    #[error(
        "tenant id {input:?} is not a {expected} key: this schema's tenants are keyed by {expected}"
    )]
    WrongKeyType {
        /// What was given, truncated for display.
        input: String,
        /// The key type the declaration names.
        expected: KeyType,
    },

    /// A tenant slug that is not a single lowercase DNS label.
    #[error("invalid tenant slug {input:?}: {reason}")]
    InvalidTenantSlug {
        /// What was given, truncated for display.
        input: String,
        /// The rule it breaks.
        reason: LabelError,
    },
}

/// Shortens untrusted input before it is echoed in an error message.
///
/// ```
/// # use rls_tenancy::TenantId;
/// let long = "9".repeat(200);
/// let message = long.parse::<TenantId>().unwrap_err().to_string();
/// assert!(message.len() < 300);
/// ```
pub(crate) fn echo(input: &str) -> String {
    const MAX: usize = 64;
    let mut out: String = input.chars().take(MAX).collect();
    if input.chars().count() > MAX {
        out.push('…');
    }
    out
}
