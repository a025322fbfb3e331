//! [`TenantContext`]: how the tenant of a transaction reaches the database, and the
//! predicate every policy compares the tenant column with.

use super::{Ident, TenantVariable, quote_literal};
use crate::tenant::{KeyType, TenantId};

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
        Self { variable, key_type }
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
        format!(
            "({} = (NULLIF(current_setting('{}'::text, true), ''::text))::{})",
            column.as_str(),
            self.variable.as_str(),
            self.key_type.sql_type()
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
