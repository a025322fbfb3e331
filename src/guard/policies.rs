//! Row-level security on tenant tables: enabled, forced, and every policy that applies to the
//! role either the canonical tenant predicate or held in by a canonical restrictive policy.
//!
//! PostgreSQL lets a row through when any permissive policy and every restrictive policy
//! that applies pass. So a permissive policy that is not the canonical predicate
//! (`USING (true)`, an `OR` escape, a `CASE` that opens up when the variable is unset) leaks,
//! command by command, unless a restrictive policy with the canonical predicate covers that
//! command too.

use sqlx::PgConnection;

use super::Ctx;
use super::catalog::{tenant_tables, with_closure};
use super::finding::{Finding, RuleId, quote_ident, quote_qualified};
use super::{GuardError, Result};
use crate::policy::{Ident, POLICY_NAME};

/// One tenant table with one of its policies (or none): the query's row.
#[derive(sqlx::FromRow)]
struct Row {
    name: String,
    column_name: Option<String>,
    rls_enabled: bool,
    rls_forced: bool,
    policy: Option<String>,
    permissive: Option<bool>,
    cmd: Option<String>,
    applies: Option<bool>,
    qual: Option<String>,
    with_check: Option<String>,
}

/// A tenant table and its policies.
struct Table {
    name: String,
    column_name: Option<String>,
    rls_enabled: bool,
    rls_forced: bool,
    policies: Vec<Policy>,
}

#[derive(Debug)]
struct Policy {
    name: String,
    permissive: bool,
    /// `*` (ALL), `r` (SELECT), `a` (INSERT), `w` (UPDATE), `d` (DELETE).
    cmd: String,
    /// Whether it applies to the inspected role (PUBLIC, the role, or a role it can become).
    applies: bool,
    qual: Option<String>,
    with_check: Option<String>,
}

/// The commands a policy can govern, with what PostgreSQL checks for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Select,
    Insert,
    Update,
    Delete,
}

const COMMANDS: [Command; 4] = [
    Command::Select,
    Command::Insert,
    Command::Update,
    Command::Delete,
];

impl Command {
    fn sql(self) -> &'static str {
        match self {
            Command::Select => "SELECT",
            Command::Insert => "INSERT",
            Command::Update => "UPDATE",
            Command::Delete => "DELETE",
        }
    }
}

impl Policy {
    fn covers(&self, command: Command) -> bool {
        match self.cmd.as_str() {
            "*" => true,
            "r" => command == Command::Select,
            "a" => command == Command::Insert,
            "w" => command == Command::Update,
            "d" => command == Command::Delete,
            _ => false,
        }
    }

    /// The check on new rows: WITH CHECK, or for ALL and UPDATE without one, USING.
    fn effective_check(&self) -> Option<&str> {
        match (&self.with_check, self.cmd.as_str()) {
            (Some(check), _) => Some(check),
            (None, "*" | "w") => self.qual.as_deref(),
            (None, _) => None,
        }
    }

    /// Whether this policy confines `command` to the tenant, on every row it reads and writes.
    fn is_canonical_for(&self, command: Command, canonical: &str) -> bool {
        let qual_ok = self.qual.as_deref() == Some(canonical);
        let check_ok = self.effective_check() == Some(canonical);
        match command {
            Command::Select | Command::Delete => qual_ok,
            Command::Insert => check_ok,
            Command::Update => qual_ok && check_ok,
        }
    }
}

pub(super) async fn check(conn: &mut PgConnection, ctx: &Ctx<'_>) -> Result<Vec<Finding>> {
    let (names, columns, tenant_columns, registry) = ctx.tenant_table_params();
    let rows: Vec<Row> = sqlx::query_as(with_closure!(
        tenant_tables!(),
        ",
        -- Deparsing (pg_get_expr) opens each table, which costs most on a new connection:
        -- each distinct policy shape is deparsed once. Two policies print the same when their
        -- stored trees are equal and the columns they reference have the same numbers and
        -- names; a whole-row reference prints the table's name, so it keeps a policy apart.
        -- Trees record where in the CREATE POLICY text each node was, so policies from one
        -- template fall into a few shapes (one per length of the table's name).
        policies AS (
            SELECT p.oid, p.polrelid, p.polname, p.polpermissive, p.polcmd, p.polroles,
                   md5(concat_ws('|', p.polqual::text, p.polwithcheck::text,
                       (SELECT string_agg(a.attnum || ' ' || a.attname, ',' ORDER BY a.attnum)
                          FROM pg_catalog.pg_depend d
                          JOIN pg_catalog.pg_attribute a
                            ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                         WHERE d.classid = 'pg_catalog.pg_policy'::regclass
                           AND d.objid = p.oid AND d.refobjsubid > 0),
                       CASE WHEN concat(p.polqual::text, p.polwithcheck::text) LIKE '%:varattno 0 %'
                            THEN p.polrelid::text END)) AS shape
              FROM pg_catalog.pg_policy p
             WHERE p.polrelid IN (SELECT oid FROM tenant_tables)
        ),
        representatives AS (SELECT shape, min(oid) AS oid FROM policies GROUP BY shape),
        shapes AS MATERIALIZED (
            SELECT r.shape, pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS qual,
                   pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
              FROM representatives r JOIN pg_catalog.pg_policy p ON p.oid = r.oid
        )
        SELECT t.name, t.column_name, t.relrowsecurity AS rls_enabled,
               t.relforcerowsecurity AS rls_forced,
               p.polname::text AS policy, p.polpermissive AS permissive, p.polcmd::text AS cmd,
               0::oid = ANY (p.polroles) OR p.polroles && ARRAY(SELECT role FROM roles) AS applies,
               s.qual, s.with_check
          FROM tenant_tables t
          LEFT JOIN policies p ON p.polrelid = t.oid
          LEFT JOIN shapes s ON s.shape = p.shape
         ORDER BY t.name, p.polname"
    ))
    .bind(ctx.role_param())
    .bind(ctx.schema())
    .bind(&names)
    .bind(&columns)
    .bind(&tenant_columns)
    .bind(&registry)
    .fetch_all(&mut *conn)
    .await?;
    let tables = group(rows);
    if let Some(missing) = names.iter().find(|n| !tables.iter().any(|t| &t.name == *n)) {
        return Err(GuardError::NotMigrated {
            what: format!("tenant table {}.{missing}", ctx.schema()),
        });
    }
    let mut findings = Vec::new();
    for table in &tables {
        findings.extend(table_findings(ctx, table)?);
    }
    Ok(findings)
}

fn table_findings(ctx: &Ctx<'_>, table: &Table) -> Result<Vec<Finding>> {
    let name = format!("{}.{}", ctx.schema(), table.name);
    let object = format!("table {name}");
    let table_sql = quote_qualified(ctx.schema(), &table.name);
    let column = table
        .column_name
        .as_deref()
        .ok_or_else(|| GuardError::NotMigrated {
            what: format!("the tenant column of table {name}"),
        })?;
    let canonical = ctx
        .options
        .tenant_context()
        .canonical_predicate(&Ident::parse("column", column)?);
    let create_policy = format!(
        "CREATE POLICY {POLICY_NAME} ON {table_sql} AS PERMISSIVE FOR ALL TO PUBLIC USING {canonical} WITH CHECK {canonical};"
    );
    let mut findings = Vec::new();
    if !table.rls_enabled {
        findings.push(Finding::new(
            RuleId::RlsDisabled,
            &object,
            format!("row-level security is not enabled on tenant table {name}: every role with a grant sees every tenant's rows"),
            format!("ALTER TABLE {table_sql} ENABLE ROW LEVEL SECURITY;"),
        ));
    }
    if !table.rls_forced {
        findings.push(Finding::new(
            RuleId::RlsNotForced,
            &object,
            format!("row-level security is not forced on tenant table {name}: its owner, and anything running as its owner, sees every tenant's rows"),
            format!("ALTER TABLE {table_sql} FORCE ROW LEVEL SECURITY;"),
        ));
    }
    let policies = &table.policies;
    if policies.is_empty() {
        findings.push(Finding::new(
            RuleId::PolicyMissing,
            &object,
            format!("tenant table {name} has no policy: with row-level security on it shows no rows at all, with it off every tenant's rows"),
            create_policy.clone(),
        ));
    }
    let has_canonical = policies.iter().any(|p| {
        p.applies && p.permissive && COMMANDS.iter().all(|c| p.is_canonical_for(*c, &canonical))
    });
    let applicable: Vec<&Policy> = policies.iter().filter(|p| p.applies).collect();
    let any_restrictive = applicable.iter().any(|p| !p.permissive);
    for policy in applicable.iter().filter(|p| p.permissive) {
        let open: Vec<Command> = COMMANDS
            .into_iter()
            .filter(|c| policy.covers(*c) && !policy.is_canonical_for(*c, &canonical))
            .collect();
        let leaking: Vec<&str> = open
            .iter()
            .filter(|c| {
                !applicable
                    .iter()
                    .any(|r| !r.permissive && r.covers(**c) && r.is_canonical_for(**c, &canonical))
            })
            .map(|c| c.sql())
            .collect();
        let policy_sql = quote_ident(&policy.name);
        let mut fix = format!("DROP POLICY {policy_sql} ON {table_sql};");
        if !has_canonical {
            fix.push(' ');
            fix.push_str(&create_policy);
        }
        if !leaking.is_empty() {
            let expression = describe(policy);
            let (rule, why) = if any_restrictive {
                (
                    RuleId::PolicyMixLeaks,
                    format!(
                        "its restrictive policies hold it in for {} but not for {}",
                        held(&open, &leaking),
                        leaking.join(", ")
                    ),
                )
            } else {
                (
                    RuleId::PolicyNotCanonical,
                    format!("{} lets through rows of other tenants", leaking.join(", ")),
                )
            };
            findings.push(Finding::new(
                rule,
                &object,
                format!(
                    "permissive policy {} on tenant table {name} is {expression}, not the canonical predicate {canonical}: {why}",
                    policy.name
                ),
                fix,
            ));
        } else if open.is_empty()
            && policy.with_check.is_none()
            && matches!(policy.cmd.as_str(), "*" | "w")
        {
            findings.push(Finding::new(
                RuleId::PolicyImplicitWithCheck,
                &object,
                format!(
                    "policy {} on tenant table {name} has no WITH CHECK: PostgreSQL applies its USING to new rows, which is safe, but say so explicitly",
                    policy.name
                ),
                format!("ALTER POLICY {policy_sql} ON {table_sql} WITH CHECK {canonical};"),
            ));
        }
    }
    Ok(findings)
}

/// Gathers the rows, ordered by table, into tables with their policies.
fn group(rows: Vec<Row>) -> Vec<Table> {
    let mut tables: Vec<Table> = Vec::new();
    for row in rows {
        if tables.last().is_none_or(|t| t.name != row.name) {
            tables.push(Table {
                name: row.name.clone(),
                column_name: row.column_name.clone(),
                rls_enabled: row.rls_enabled,
                rls_forced: row.rls_forced,
                policies: Vec::new(),
            });
        }
        if let (Some(table), Some(name), Some(permissive), Some(cmd), Some(applies)) = (
            tables.last_mut(),
            row.policy,
            row.permissive,
            row.cmd,
            row.applies,
        ) {
            table.policies.push(Policy {
                name,
                permissive,
                cmd,
                applies,
                qual: row.qual,
                with_check: row.with_check,
            });
        }
    }
    tables
}

/// The commands in `open` that restrictive policies do hold in.
fn held(open: &[Command], leaking: &[&str]) -> String {
    let held: Vec<&str> = open
        .iter()
        .map(|c| c.sql())
        .filter(|c| !leaking.contains(c))
        .collect();
    if held.is_empty() {
        "no command".to_owned()
    } else {
        held.join(", ")
    }
}

/// `USING (true) WITH CHECK (true)`, as the catalog prints it.
fn describe(policy: &Policy) -> String {
    let mut parts = Vec::new();
    if let Some(qual) = &policy.qual {
        parts.push(format!("USING {}", parenthesize(qual)));
    }
    match &policy.with_check {
        Some(check) => parts.push(format!("WITH CHECK {}", parenthesize(check))),
        None if policy.cmd == "a" => parts.push("without WITH CHECK".to_owned()),
        None => {}
    }
    parts.join(" ").replace('\n', " ")
}

fn parenthesize(expression: &str) -> String {
    if expression.starts_with('(') && expression.ends_with(')') {
        expression.to_owned()
    } else {
        format!("({expression})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CANONICAL: &str = "(account_id = x)";

    fn policy(permissive: bool, cmd: &str, qual: Option<&str>, with_check: Option<&str>) -> Policy {
        Policy {
            name: "p".into(),
            permissive,
            cmd: cmd.into(),
            applies: true,
            qual: qual.map(Into::into),
            with_check: with_check.map(Into::into),
        }
    }

    #[test]
    fn all_and_update_policies_fall_back_to_using_for_new_rows() {
        let all = policy(true, "*", Some(CANONICAL), None);
        assert!(COMMANDS.iter().all(|c| all.is_canonical_for(*c, CANONICAL)));
        let insert = policy(true, "a", None, None);
        assert!(!insert.is_canonical_for(Command::Insert, CANONICAL));
    }

    #[test]
    fn an_update_that_can_move_rows_out_is_not_canonical() {
        let update = policy(true, "w", Some(CANONICAL), Some("true"));
        assert!(!update.is_canonical_for(Command::Update, CANONICAL));
    }
}
