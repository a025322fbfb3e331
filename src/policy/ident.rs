//! The one helper that lets a name into DDL: validated, then quoted.

use std::fmt;

use super::IdentError;
use crate::tenant::echo;

/// An SQL identifier that is safe to splice into DDL: lowercase ASCII letters, digits and
/// underscores, starting with a letter or underscore, at most 63 bytes. Its [`fmt::Display`]
/// is the double-quoted form.
///
/// ```
/// use rls_tenancy::Ident;
/// let table = Ident::parse("table", "subtasks")?;
/// assert_eq!(table.to_string(), "\"subtasks\"");
/// assert!(Ident::parse("table", "sub\"tasks").is_err());
/// assert!(Ident::parse("role", "Robert'); DROP TABLE students;--").is_err());
/// # Ok::<(), rls_tenancy::IdentError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ident(String);

impl Ident {
    /// Validates `input` as an identifier of the kind `what` (used in the error message).
    ///
    /// # Errors
    /// [`IdentError`] when `input` is not of the allowed shape.
    ///
    /// ```
    /// # use rls_tenancy::Ident;
    /// assert_eq!(Ident::parse("schema", "app")?.as_str(), "app");
    /// # Ok::<(), rls_tenancy::IdentError>(())
    /// ```
    pub fn parse(what: &'static str, input: &str) -> Result<Self, IdentError> {
        let bytes = input.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || *b == b'_');
        let rest_ok = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
        if first_ok && rest_ok && bytes.len() <= 63 {
            Ok(Self(input.to_owned()))
        } else {
            Err(IdentError {
                what,
                input: echo(input),
            })
        }
    }

    /// The bare name, unquoted (for comparing with catalog values and binding as a parameter).
    ///
    /// ```
    /// # use rls_tenancy::Ident;
    /// assert_eq!(Ident::parse("column", "account_id")?.as_str(), "account_id");
    /// # Ok::<(), rls_tenancy::IdentError>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0)
    }
}

/// A Postgres setting name such as `app.tenant_id`: two identifiers joined by a dot.
/// Its [`fmt::Display`] is the single-quoted string literal used in `current_setting(...)`.
///
/// ```
/// use rls_tenancy::TenantVariable;
/// let var = TenantVariable::parse("app.tenant_id")?;
/// assert_eq!(var.to_string(), "'app.tenant_id'");
/// assert!(TenantVariable::parse("tenant_id").is_err());
/// assert!(TenantVariable::parse("app.x'; --").is_err());
/// # Ok::<(), rls_tenancy::IdentError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantVariable(String);

impl TenantVariable {
    /// The default setting name.
    pub const DEFAULT: &'static str = "app.tenant_id";

    /// Validates a setting name of the form `prefix.name`.
    ///
    /// # Errors
    /// [`IdentError`] when it is not two valid identifiers joined by one dot.
    ///
    /// ```
    /// # use rls_tenancy::TenantVariable;
    /// assert_eq!(TenantVariable::parse("myapp.tenant")?.as_str(), "myapp.tenant");
    /// # Ok::<(), rls_tenancy::IdentError>(())
    /// ```
    pub fn parse(input: &str) -> Result<Self, IdentError> {
        let invalid = || IdentError {
            what: "tenant variable",
            input: echo(input),
        };
        let (prefix, name) = input.split_once('.').ok_or_else(invalid)?;
        Ident::parse("tenant variable", prefix).map_err(|_| invalid())?;
        Ident::parse("tenant variable", name).map_err(|_| invalid())?;
        Ok(Self(input.to_owned()))
    }

    /// The bare setting name.
    ///
    /// ```
    /// # use rls_tenancy::TenantVariable;
    /// assert_eq!(TenantVariable::default().as_str(), "app.tenant_id");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TenantVariable {
    fn default() -> Self {
        Self(Self::DEFAULT.to_owned())
    }
}

impl fmt::Display for TenantVariable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.0)
    }
}

/// Quotes `value` as an SQL string literal (single quotes doubled; the server's
/// `standard_conforming_strings`, on by default since PostgreSQL 9.1, keeps backslashes
/// literal), for the few DDL statements that take no bind parameters (`PASSWORD '...'`).
pub(crate) fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}
