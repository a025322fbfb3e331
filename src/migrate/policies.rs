//! Installs the isolation policy on every declared tenant table, changing only what differs.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, PgConnection};

use super::MigrateError;
use crate::policy::DeclarationError;

type Result<T, E = MigrateError> = std::result::Result<T, E>;
use crate::policy::{
    Ident, POLICY_NAME, TenancyDeclaration, TenantContext, TenantTable, policy_sql, quote_literal,
};

/// What the database holds for one tenant table, read from the catalogs.
pub(super) struct TableState {
    pub(super) rls_enabled: bool,
    pub(super) rls_forced: bool,
    /// Each policy as `name|permissive|cmd|roles|qual|with_check`.
    pub(super) policies: Vec<String>,
}

/// Makes the RLS state of every tenant table `decl` names, in `schema` (the declaration's own,
/// or a tenant's schema in the schema mode), canonical; returns the tables it changed.
pub(super) async fn install_policies(
    conn: &mut PgConnection,
    schema: &Ident,
    decl: &TenancyDeclaration,
    context: &TenantContext,
) -> Result<Vec<String>> {
    let tables: Vec<&str> = decl
        .tenant_tables()
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    let states: HashMap<String, TableState> = table_states(conn, &[schema.as_str()], &tables)
        .await?
        .into_iter()
        .map(|(_, table, state)| (table, state))
        .collect();
    let (sql, changed) = policy_fixes(schema, decl, context, states)?;
    if !sql.is_empty() {
        sqlx::raw_sql(AssertSqlSafe(sql.join(";\n")))
            .execute(&mut *conn)
            .await?;
    }
    Ok(changed)
}

/// The statements that make the RLS state of `decl`'s tenant tables in `schema` canonical,
/// given `states` (by table name, as [`table_states`] reads them), and the tables they
/// change (`schema.table`).
///
/// # Errors
/// [`DeclarationError::Mismatch`] for a declared table `states` lacks;
/// [`DeclarationError::Invalid`] for a stale policy whose name cannot be quoted.
pub(super) fn policy_fixes(
    schema: &Ident,
    decl: &TenancyDeclaration,
    context: &TenantContext,
    mut states: HashMap<String, TableState>,
) -> Result<(Vec<String>, Vec<String>)> {
    let (mut sql, mut changed) = (Vec::new(), Vec::new());
    for table in decl.tenant_tables() {
        let state =
            states
                .remove(table.name.as_str())
                .ok_or_else(|| DeclarationError::Mismatch {
                    what: format!(
                        "tenant table {}.{} does not exist",
                        schema.as_str(),
                        table.name.as_str()
                    ),
                })?;
        if is_canonical(&state, table, context) {
            continue;
        }
        for stale in state.policies.iter().filter_map(|p| p.split('|').next()) {
            let name = Ident::parse("policy", stale).map_err(|_| DeclarationError::Invalid {
                reason: format!(
                    "policy {stale:?} on {} has a name this tool cannot quote; drop it by hand",
                    table.name.as_str()
                ),
            })?;
            sql.push(format!("DROP POLICY {name} ON {schema}.{}", table.name));
        }
        sql.push(standalone(&policy_sql(schema, table, context)));
        tracing::info!(
            schema = schema.as_str(),
            table = table.name.as_str(),
            "installing the tenant isolation policy"
        );
        changed.push(format!("{}.{}", schema.as_str(), table.name.as_str()));
    }
    Ok((sql, changed))
}

/// `sql` run by a `DO` block's `EXECUTE`, as a statement of its own wherever it stands in a
/// script. A policy's stored expressions keep the byte offsets of their parse in the text sent,
/// and the "already current" check (`current`) decompiles one policy per distinct stored
/// tree: policies installed through scripts of many schemas at different offsets (908 trees
/// for 8,000 tables, measured, where 9 are expected) made that check 2.5 s at 2,000 schemas.
pub(crate) fn standalone(sql: &str) -> String {
    format!(
        "DO $rls_standalone$ BEGIN EXECUTE {}; END $rls_standalone$",
        quote_literal(sql)
    )
}

/// How a policy's name, kind, command and roles are spelled, `name|permissive|cmd|roles`, as
/// an SQL expression over `pg_catalog.pg_policy p`: the policy reads put its expressions after
/// it, and [`canonical_policy`] spells the expected policy the same way.
macro_rules! policy_head_sql {
    () => {
        "concat_ws('|', p.polname,
                   CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                   CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
                                 WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE'
                                 WHEN '*' THEN 'ALL' END,
                   (CASE WHEN p.polroles = '{0}'::oid[]
                         THEN string_to_array('public', '')::name[]
                         ELSE ARRAY(SELECT ro.rolname FROM pg_catalog.pg_roles ro
                                     WHERE ro.oid = ANY (p.polroles)
                                     ORDER BY ro.rolname)
                    END)::text)"
    };
}
pub(super) use policy_head_sql;

/// The RLS state of each of `tables` in each of `schemas` that exist: (schema, table, state),
/// in one statement.
pub(super) async fn table_states(
    conn: &mut PgConnection,
    schemas: &[&str],
    tables: &[&str],
) -> Result<Vec<(String, String, TableState)>> {
    // pg_policy by the table's oid, spelled as the pg_policies view spells it: the view,
    // joined by schema and table name, decompiled every policy of every schema (pg_get_expr)
    // for each table asked about: 0.7 s for 3 schemas, minutes for all, at 2,000 schemas.
    // The tables are found by name (to_regclass: the index on name and schema), not by a
    // join on names: once the statement's plan was generic, that join scanned all of
    // pg_class for every schema migrated (46 ms a schema at 2,000 schemas).
    let rows: Vec<(String, String, bool, bool, Vec<String>)> = sqlx::query_as(concat!(
        "SELECT n.nspname::text, c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
                coalesce(array_agg(concat_ws('|', ",
        policy_head_sql!(),
        ",
                                             pg_catalog.pg_get_expr(p.polqual, p.polrelid),
                                             pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid))
                                   ORDER BY p.polname)
                         FILTER (WHERE p.polname IS NOT NULL), '{}')
           FROM unnest($1::text[]) AS s(name)
          CROSS JOIN unnest($2::text[]) AS t(name)
           JOIN pg_catalog.pg_class c ON c.oid = to_regclass(format('%I.%I', s.name, t.name))
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_catalog.pg_policy p ON p.polrelid = c.oid
          WHERE c.relkind IN ('r', 'p')
          GROUP BY 1, 2, 3, 4"
    ))
    .bind(schemas)
    .bind(tables)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(schema, table, rls_enabled, rls_forced, policies)| {
            let state = TableState {
                rls_enabled,
                rls_forced,
                policies,
            };
            (schema, table, state)
        })
        .collect())
}

/// Whether `table`'s state is what [`install_policies`] would make it.
pub(super) fn is_canonical(
    state: &TableState,
    table: &TenantTable,
    context: &TenantContext,
) -> bool {
    state.rls_enabled && state.rls_forced && state.policies == [canonical_policy(table, context)]
}

/// The one policy [`install_policies`] puts on `table`, as [`table_states`] spells a policy:
/// `name|permissive|cmd|roles|qual|with_check`.
pub(super) fn canonical_policy(table: &TenantTable, context: &TenantContext) -> String {
    let predicate = context.canonical_predicate(&table.column);
    format!("{POLICY_NAME}|PERMISSIVE|ALL|{{public}}|{predicate}|{predicate}")
}
