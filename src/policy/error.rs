//! [`IdentError`] and [`DeclarationError`]: a name or a declaration that cannot be used.

use std::path::PathBuf;

/// A name that cannot be spliced into SQL: not a plain lowercase identifier.
///
/// ```
/// use rls_tenancy::{Ident, IdentError};
/// let err: IdentError = Ident::parse("table", "Robert'); DROP TABLE students;--").unwrap_err();
/// assert_eq!(err.what, "table");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid {what} {input:?}: use lowercase ASCII letters, digits and underscores, starting with a letter or underscore, at most 63 bytes"
)]
pub struct IdentError {
    /// What kind of identifier it was meant to be (`table`, `role`, `schema`, ...).
    pub what: &'static str,
    /// What was given, truncated for display.
    pub input: String,
}

/// A declaration (`policies/tenancy.toml`) that cannot be used as written.
///
/// ```
/// use rls_tenancy::{DeclarationError, TenancyDeclaration};
/// let err = TenancyDeclaration::parse("schema = \"app\"").unwrap_err();
/// assert!(matches!(err, DeclarationError::Invalid { .. }));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeclarationError {
    /// A name in the declaration is not a plain identifier.
    #[error("invalid declaration: {0}")]
    Ident(#[from] IdentError),

    /// The declaration is malformed or inconsistent.
    #[error("invalid declaration: {reason}; see the README's declaration reference")]
    Invalid {
        /// What is wrong with it.
        reason: String,
    },

    /// The declaration file could not be read.
    #[error("cannot read the declaration {}: {source}; pass --declaration with the path of your tenancy.toml", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The declaration names something the database does not have, or has with another type.
    #[error(
        "the declaration does not match the database: {what}; fix the declaration or migrate first"
    )]
    Mismatch {
        /// The table or column, and what is wrong with it.
        what: String,
    },
}

/// A tenant key file that cannot be used (see [`crate::TenantKey`]).
///
/// ```
/// use rls_tenancy::{TenantKey, TenantKeyError};
/// let err = TenantKey::from_file("/nonexistent/tenant.key").unwrap_err();
/// assert!(err.to_string().contains("/nonexistent/tenant.key"));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TenantKeyError {
    /// The key file could not be read.
    #[error("cannot read the tenant key file {}: {source}; pass the file rls-migrate --tenant-key-file created (--tenant-key-file or RLS_TENANT_KEY_FILE)", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The key file could not be created.
    #[error("cannot create the tenant key file {}: {source}; check that its directory exists and is writable", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The key file does not hold a key.
    #[error("the tenant key file {} does not hold a key (64 hexadecimal digits); restore it from your secret store, or let rls-migrate --tenant-key-file create a new one at a fresh path", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
    },
}
