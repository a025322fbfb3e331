//! [`TenantContext`]: how the tenant of a transaction reaches the database, and the
//! predicate every policy compares the tenant column with.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Ident, TenantKey, TenantVariable, quote_literal};
use crate::tenant::{KeyType, TenantId};

/// How the policies learn a transaction's tenant: `signed` (the default for new installs)
/// or `plain`, as `rls-migrate --tenant-context` spells them.
///
/// - `Signed`: the tenant pool signs the tenant with the [`TenantKey`] in the message that
///   begins the transaction; the policies accept it only through `rls_tenancy.tenant()`,
///   which checks that proof. SQL running inside the transaction cannot switch tenants.
/// - `Plain`: the policies read the tenant setting directly. Any SQL inside the transaction
///   that calls `set_config` can switch tenants; for teams that want no key.
///
/// ```
/// use rls_tenancy::TenantContextMode;
/// assert_eq!("plain".parse::<TenantContextMode>()?, TenantContextMode::Plain);
/// assert_eq!(TenantContextMode::default().to_string(), "signed");
/// assert!("off".parse::<TenantContextMode>().is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TenantContextMode {
    /// The tenant needs the application's signature.
    #[default]
    Signed,
    /// The tenant is whatever the setting holds.
    Plain,
}

impl fmt::Display for TenantContextMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Signed => "signed",
            Self::Plain => "plain",
        })
    }
}

impl FromStr for TenantContextMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "signed" => Ok(Self::Signed),
            "plain" => Ok(Self::Plain),
            other => Err(format!(
                "unknown tenant context {other:?}: use signed or plain"
            )),
        }
    }
}

/// The tenant setting (default `app.tenant_id`) and the key type it is cast to.
///
/// The policies read the setting; a tenant transaction sets it, transaction-locally, in its
/// `BEGIN` round trip. Migrations, the pool and the guard must agree on it.
///
/// ```
/// use rls_tenancy::{Ident, KeyType, TenantContext, TenantVariable};
/// let context = TenantContext::new(TenantVariable::default(), KeyType::Uuid);
/// let column = Ident::parse("column", "org_id")?;
/// assert_eq!(
///     context.canonical_predicate(&column),
///     "(org_id = (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::uuid)"
/// );
/// # Ok::<(), rls_tenancy::IdentError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantContext {
    variable: TenantVariable,
    key_type: KeyType,
    signed: bool,
}

impl TenantContext {
    /// The context for `variable` holding keys of `key_type`.
    ///
    /// ```
    /// # use rls_tenancy::{KeyType, TenantContext, TenantVariable};
    /// let context = TenantContext::new(TenantVariable::parse("myapp.tenant")?, KeyType::BigInt);
    /// # Ok::<(), rls_tenancy::IdentError>(())
    /// ```
    pub fn new(variable: TenantVariable, key_type: KeyType) -> Self {
        Self {
            variable,
            key_type,
            signed: false,
        }
    }

    /// The same context with its mode (a plain context unless told otherwise).
    ///
    /// ```
    /// use rls_tenancy::{Ident, TenantContext, TenantContextMode};
    /// let context = TenantContext::default().with_mode(TenantContextMode::Signed);
    /// assert_eq!(context.mode(), TenantContextMode::Signed);
    /// assert_eq!(
    ///     context.canonical_predicate(&Ident::parse("column", "account_id")?),
    ///     "(account_id = (( SELECT rls_tenancy.tenant('app.tenant_id'::text) AS tenant))::bigint)"
    /// );
    /// # Ok::<(), rls_tenancy::IdentError>(())
    /// ```
    pub fn with_mode(mut self, mode: TenantContextMode) -> Self {
        self.signed = mode == TenantContextMode::Signed;
        self
    }

    /// Whether the policies need a signed tenant.
    ///
    /// ```
    /// # use rls_tenancy::{TenantContext, TenantContextMode};
    /// assert_eq!(TenantContext::default().mode(), TenantContextMode::Plain);
    /// ```
    pub fn mode(&self) -> TenantContextMode {
        if self.signed {
            TenantContextMode::Signed
        } else {
            TenantContextMode::Plain
        }
    }

    /// The setting the policies read.
    ///
    /// ```
    /// # use rls_tenancy::TenantContext;
    /// assert_eq!(TenantContext::default().variable().as_str(), "app.tenant_id");
    /// ```
    pub fn variable(&self) -> &TenantVariable {
        &self.variable
    }

    /// The type the setting is cast to.
    ///
    /// ```
    /// # use rls_tenancy::{KeyType, TenantContext};
    /// assert_eq!(TenantContext::default().key_type(), KeyType::BigInt);
    /// ```
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The same context with another setting name.
    ///
    /// ```
    /// # use rls_tenancy::{TenantContext, TenantVariable};
    /// let context = TenantContext::default().with_variable(TenantVariable::parse("my.tenant")?);
    /// assert_eq!(context.variable().as_str(), "my.tenant");
    /// # Ok::<(), rls_tenancy::IdentError>(())
    /// ```
    pub fn with_variable(mut self, variable: TenantVariable) -> Self {
        self.variable = variable;
        self
    }

    /// The same context with another key type.
    ///
    /// ```
    /// # use rls_tenancy::{KeyType, TenantContext};
    /// assert_eq!(TenantContext::default().with_key_type(KeyType::Uuid).key_type(), KeyType::Uuid);
    /// ```
    pub fn with_key_type(mut self, key_type: KeyType) -> Self {
        self.key_type = key_type;
        self
    }

    /// The predicate every policy must have, exactly as `pg_get_expr` prints it on
    /// PostgreSQL 13 and later, for comparing with `pg_policies.qual` and `with_check`.
    ///
    /// ```
    /// use rls_tenancy::{Ident, TenantContext};
    /// let column = Ident::parse("column", "account_id")?;
    /// assert_eq!(
    ///     TenantContext::default().canonical_predicate(&column),
    ///     "(account_id = (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::bigint)"
    /// );
    /// # Ok::<(), rls_tenancy::IdentError>(())
    /// ```
    pub fn canonical_predicate(&self, column: &Ident) -> String {
        if self.signed {
            return format!(
                "({} = (( SELECT rls_tenancy.tenant('{}'::text) AS tenant))::{})",
                column.as_str(),
                self.variable.as_str(),
                self.key_type.sql_type()
            );
        }
        format!(
            "({} = (NULLIF(current_setting('{}'::text, true), ''::text))::{})",
            column.as_str(),
            self.variable.as_str(),
            self.key_type.sql_type()
        )
    }

    /// The tenant expression the policy template compares the tenant column with, before
    /// the cast to the key type; `variable` is the setting's name as a quoted literal.
    pub(crate) fn tenant_expression(&self, variable: &str) -> String {
        if self.signed {
            format!("(SELECT rls_tenancy.tenant({variable}))")
        } else {
            format!("nullif(current_setting({variable}, true), '')")
        }
    }

    /// The `BEGIN` message's call that enters `id`'s signed context: the HMAC under `key`
    /// of the variable, the tenant, a fresh random nonce and the time of issue (ms), as
    /// `rls_tenancy.enter` checks it.
    pub(crate) fn signed_entry(&self, id: TenantId, key: &TenantKey) -> String {
        let tenant = id.to_string();
        let nonce: i64 = rand::random();
        let issued_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
            });
        let signature = key.sign(&format!(
            "v1|{}|{tenant}|{nonce}|{issued_ms}",
            self.variable.as_str()
        ));
        format!(
            "rls_tenancy.enter({}, {}, {}, {nonce}, {issued_ms}, {})",
            quote_literal(self.variable.as_str()),
            quote_literal(&tenant),
            quote_literal(&key.id()),
            quote_literal(&signature)
        )
    }

    /// The transaction-local settings that put a transaction in `id`'s context, as
    /// `(name, value)` pairs of SQL string literals, for the one-round-trip `BEGIN`.
    pub(crate) fn settings(&self, id: TenantId) -> Vec<(String, String)> {
        vec![(
            quote_literal(self.variable.as_str()),
            quote_literal(&id.to_string()),
        )]
    }
}
