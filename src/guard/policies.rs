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
use super::cause::Cause;
use super::finding::{Finding, RuleId, quote_ident, quote_qualified};
use super::{GuardError, Result};
use crate::policy::{
    Ident, POLICY_NAME, TenantContext, TenantContextMode, signed_context_installed,
};

/// One tenant table with one of its policies (or none): the query's row.
#[derive(sqlx::FromRow)]
struct Row {
    schema: String,
    name: String,
    column_name: Option<String>,
    rls_enabled: bool,
    rls_forced: bool,
    /// The commands the inspected role holds the privilege for (`SELECT`, `INSERT`, ...).
    held: Vec<String>,
    policy: Option<String>,
    permissive: Option<bool>,
    cmd: Option<String>,
    applies: Option<bool>,
    policy_roles: Option<Vec<String>>,
    qual: Option<String>,
    with_check: Option<String>,
}

/// A tenant table and its policies.
struct Table {
    schema: String,
    name: String,
    column_name: Option<String>,
    rls_enabled: bool,
    rls_forced: bool,
    held: Vec<String>,
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
    /// The roles it is for (`PUBLIC` for everyone).
    roles: Vec<String>,
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
    let rows: Vec<Row> = ctx.tenant_tables_query(with_closure!(
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
        SELECT t.schema, t.name, t.column_name, t.relrowsecurity AS rls_enabled,
               t.relforcerowsecurity AS rls_forced,
               -- What the role may run on the table, needed only when no permissive policy for
               -- ALL applies to it (the usual case skips four privilege checks per table).
               CASE WHEN EXISTS (SELECT 1 FROM policies a
                                  WHERE a.polrelid = t.oid AND a.polpermissive AND a.polcmd = '*'
                                    AND (0::oid = ANY (a.polroles)
                                         OR a.polroles && ARRAY(SELECT role FROM roles)))
                    THEN '{}'::text[] ELSE
               ARRAY(SELECT h.cmd FROM target CROSS JOIN LATERAL
                            (VALUES ('SELECT', has_any_column_privilege(target.oid, t.oid, 'SELECT')),
                                    ('INSERT', has_any_column_privilege(target.oid, t.oid, 'INSERT')),
                                    ('UPDATE', has_any_column_privilege(target.oid, t.oid, 'UPDATE')),
                                    ('DELETE', has_table_privilege(target.oid, t.oid, 'DELETE')))
                            AS h(cmd, held)
                      WHERE h.held) END AS held,
               p.polname::text AS policy, p.polpermissive AS permissive, p.polcmd::text AS cmd,
               0::oid = ANY (p.polroles) OR p.polroles && ARRAY(SELECT role FROM roles) AS applies,
               ARRAY(SELECT CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(r)::text END
                       FROM unnest(p.polroles) AS r) AS policy_roles,
               s.qual, s.with_check
          FROM tenant_tables t
          LEFT JOIN policies p ON p.polrelid = t.oid
          LEFT JOIN shapes s ON s.shape = p.shape
         ORDER BY t.schema, t.name, p.polname"
    ))
    .fetch_all(&mut *conn)
    .await?;
    let tables = group(rows);
    let (names, ..) = ctx.tenant_table_params();
    if let Some(missing) = names.iter().find(|n| {
        !tables
            .iter()
            .any(|t| t.schema == ctx.schema() && &t.name == *n)
    }) {
        return Err(GuardError::NotMigrated {
            what: format!("tenant table {}.{missing}", ctx.schema()),
        });
    }
    // The canonical predicate reads the signed tenant context where the database has it:
    // then a plain predicate on any table is a door that SQL inside a transaction can open.
    let mode = if signed_context_installed(&mut *conn).await? {
        TenantContextMode::Signed
    } else {
        TenantContextMode::Plain
    };
    let context = ctx.options.tenant_context().with_mode(mode);
    let mut findings = Vec::new();
    for table in &tables {
        findings.extend(table_findings(ctx, &context, table)?);
    }
    Ok(findings)
}

fn table_findings(ctx: &Ctx<'_>, context: &TenantContext, table: &Table) -> Result<Vec<Finding>> {
    let name = format!("{}.{}", table.schema, table.name);
    let object = format!("table {name}");
    let table_sql = quote_qualified(&table.schema, &table.name);
    let column = table
        .column_name
        .as_deref()
        .ok_or_else(|| GuardError::NotMigrated {
            what: format!("the tenant column of table {name}"),
        })?;
    let canonical = context.canonical_predicate(&Ident::parse("column", column)?);
    let create_policy = format!(
        "CREATE POLICY {POLICY_NAME} ON {table_sql} AS PERMISSIVE FOR ALL TO PUBLIC USING {canonical} WITH CHECK {canonical};"
    );
    let unprotected = Cause::unprotected_table(&name);
    let mut findings = Vec::new();
    if !table.rls_enabled {
        findings.push(Finding::new(
            RuleId::RlsDisabled,
            &object,
            format!("row-level security is not enabled on tenant table {name}: every role with a grant sees every tenant's rows"),
            format!("ALTER TABLE {table_sql} ENABLE ROW LEVEL SECURITY;"),
        ).caused_by(unprotected.clone()));
    }
    if !table.rls_forced {
        findings.push(Finding::new(
            RuleId::RlsNotForced,
            &object,
            format!("row-level security is not forced on tenant table {name}: its owner, and anything running as its owner, sees every tenant's rows"),
            format!("ALTER TABLE {table_sql} FORCE ROW LEVEL SECURITY;"),
        ).caused_by(unprotected.clone()));
    }
    let policies = &table.policies;
    if policies.is_empty() {
        findings.push(Finding::new(
            RuleId::PolicyMissing,
            &object,
            format!("tenant table {name} has no policy: with row-level security on it shows no rows at all, with it off every tenant's rows"),
            create_policy.clone(),
        ).caused_by(unprotected));
    }
    let has_canonical = policies.iter().any(|p| {
        p.applies && p.permissive && COMMANDS.iter().all(|c| p.is_canonical_for(*c, &canonical))
    });
    if table.rls_enabled && !policies.is_empty() {
        findings.extend(unserved(ctx, table, &table_sql, &create_policy, &canonical));
    }
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

/// `policy-not-for-role`: the commands the role holds a privilege for on `table` that no
/// permissive policy applying to it lets through. With row-level security on, PostgreSQL then
/// shows the role no row and refuses every write: not a leak, but an application that serves
/// empty pages instead of failing, so the guard stops it at start-up.
fn unserved(
    ctx: &Ctx<'_>,
    table: &Table,
    table_sql: &str,
    create_policy: &str,
    canonical: &str,
) -> Option<Finding> {
    let permissive: Vec<&Policy> = table
        .policies
        .iter()
        .filter(|p| p.applies && p.permissive)
        .collect();
    let unserved: Vec<&str> = COMMANDS
        .into_iter()
        .filter(|c| table.held.iter().any(|h| h == c.sql()))
        .filter(|c| !permissive.iter().any(|p| p.covers(*c)))
        .map(Command::sql)
        .collect();
    if unserved.is_empty() {
        return None;
    }
    let name = format!("{}.{}", table.schema, table.name);
    let role = ctx.role();
    let others: Vec<&str> = table
        .policies
        .iter()
        .filter(|p| p.permissive && !p.applies)
        .flat_map(|p| p.roles.iter().map(String::as_str))
        .collect();
    let why = if permissive.is_empty() && !others.is_empty() {
        format!(
            "its permissive policies are only for {}, not for role {role} or PUBLIC",
            others.join(", ")
        )
    } else if permissive.is_empty() {
        format!(
            "it has only restrictive policies for role {role}, and a row needs at least one permissive policy to pass"
        )
    } else {
        format!(
            "no permissive policy for role {role} covers {}",
            unserved.join(", ")
        )
    };
    // A canonical policy that is only for the wrong role needs its role list changed, nothing
    // else; otherwise the canonical policy is added.
    let misdirected = table.policies.iter().find(|p| {
        p.permissive && !p.applies && COMMANDS.iter().all(|c| p.is_canonical_for(*c, canonical))
    });
    let fix = match misdirected {
        Some(policy) => format!(
            "ALTER POLICY {} ON {table_sql} TO PUBLIC;",
            quote_ident(&policy.name)
        ),
        None => create_policy.to_owned(),
    };
    Some(Finding::new(
        RuleId::PolicyNotForRole,
        format!("table {name}"),
        format!(
            "role {role} may {} tenant table {name}, but {why}: row-level security shows it no row and refuses its writes there, so the application would serve empty pages instead of failing",
            unserved.join(", ")
        ),
        fix,
    ))
}

/// Gathers the rows, ordered by table, into tables with their policies.
fn group(rows: Vec<Row>) -> Vec<Table> {
    let mut tables: Vec<Table> = Vec::new();
    for row in rows {
        if tables
            .last()
            .is_none_or(|t| t.schema != row.schema || t.name != row.name)
        {
            tables.push(Table {
                schema: row.schema.clone(),
                name: row.name.clone(),
                column_name: row.column_name.clone(),
                rls_enabled: row.rls_enabled,
                rls_forced: row.rls_forced,
                held: row.held.clone(),
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
                roles: row.policy_roles.unwrap_or_default(),
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
            roles: vec!["PUBLIC".into()],
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
