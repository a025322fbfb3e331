//! Renders `policies/tenant_isolation.sql` for one table.

use super::{Ident, TenantContext, TenantTable};

/// The policy template, compiled in from `policies/tenant_isolation.sql`.
const TEMPLATE: &str = include_str!("../../policies/tenant_isolation.sql");

/// The name every tenant isolation policy is created under.
pub const POLICY_NAME: &str = "tenant_isolation";

/// The SQL that enables and forces RLS on `table` and creates its isolation policy.
///
/// Only validated identifiers, the validated variable and the key type are spliced in, each
/// quoted.
///
/// ```
/// use rls_tenancy::{Ident, TenantContext, TenantTable, policy_sql};
/// let table = TenantTable {
///     name: Ident::parse("table", "notes")?,
///     column: Ident::parse("column", "account_id")?,
/// };
/// let sql = policy_sql(&Ident::parse("schema", "app")?, &table, &TenantContext::default());
/// assert!(sql.contains("ALTER TABLE \"app\".\"notes\" FORCE ROW LEVEL SECURITY;"));
/// assert!(sql.contains("USING (\"account_id\" = nullif(current_setting('app.tenant_id', true), '')::bigint)"));
/// # Ok::<(), rls_tenancy::IdentError>(())
/// ```
pub fn policy_sql(schema: &Ident, table: &TenantTable, context: &TenantContext) -> String {
    let body: String = TEMPLATE
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    body.replace(
        ":tenant",
        &context.tenant_expression(&context.variable().to_string()),
    )
    .replace(":table", &format!("{schema}.{}", table.name))
    .replace(":column", &table.column.to_string())
    .replace(":key_type", context.key_type().sql_type())
}
