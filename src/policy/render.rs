//! Renders `policies/tenant_isolation.sql` for one table.

use super::{Ident, TenantTable, TenantVariable};

/// The policy template, compiled in from `policies/tenant_isolation.sql`.
const TEMPLATE: &str = include_str!("../../policies/tenant_isolation.sql");

/// The name every tenant isolation policy is created under.
pub const POLICY_NAME: &str = "tenant_isolation";

/// The SQL that enables and forces RLS on `table` and creates its isolation policy.
///
/// Only validated identifiers and the validated variable are spliced in, each quoted.
///
/// ```
/// use rls_tenancy::{Ident, TenantTable, TenantVariable, policy_sql};
/// let table = TenantTable {
///     name: Ident::parse("table", "notes")?,
///     column: Ident::parse("column", "account_id")?,
/// };
/// let sql = policy_sql(&Ident::parse("schema", "app")?, &table, &TenantVariable::default());
/// assert!(sql.contains("ALTER TABLE \"app\".\"notes\" FORCE ROW LEVEL SECURITY;"));
/// assert!(sql.contains("USING (\"account_id\" = nullif(current_setting('app.tenant_id', true), '')::bigint)"));
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
pub fn policy_sql(schema: &Ident, table: &TenantTable, variable: &TenantVariable) -> String {
    let body: String = TEMPLATE
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    body.replace(":table", &format!("{schema}.{}", table.name))
        .replace(":column", &table.column.to_string())
        .replace(":variable", &variable.to_string())
}

/// The predicate every policy must have, exactly as `pg_get_expr` prints it on PostgreSQL
/// 13 and later, for comparing with `pg_policies.qual` and `pg_policies.with_check`.
///
/// ```
/// use rls_tenancy::{Ident, TenantVariable, canonical_predicate};
/// let column = Ident::parse("column", "account_id")?;
/// assert_eq!(
///     canonical_predicate(&column, &TenantVariable::default()),
///     "(account_id = (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::bigint)"
/// );
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
pub fn canonical_predicate(column: &Ident, variable: &TenantVariable) -> String {
    format!(
        "({} = (NULLIF(current_setting('{}'::text, true), ''::text))::bigint)",
        column.as_str(),
        variable.as_str()
    )
}
