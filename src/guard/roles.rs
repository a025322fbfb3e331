//! Role attributes and memberships: superuser, BYPASSRLS, CREATEROLE, CREATEDB, REPLICATION,
//! and predefined roles that read or write everything, held directly or through membership.

use sqlx::PgConnection;

use super::Ctx;
use super::Result;
use super::catalog::{Membership, with_closure};
use super::finding::{Finding, RuleId, quote_ident};

/// Predefined roles that get around row-level security or the server's file system, with
/// what each does.
const PREDEFINED: &[(&str, &str)] = &[
    (
        "pg_read_all_data",
        "reads every table, view and sequence without a grant",
    ),
    (
        "pg_write_all_data",
        "writes every table, view and sequence without a grant",
    ),
    (
        "pg_read_server_files",
        "reads any file the server can read, its data files included",
    ),
    (
        "pg_write_server_files",
        "writes any file the server can write",
    ),
    (
        "pg_execute_server_program",
        "runs programs on the database server as its operating-system user",
    ),
];

#[derive(sqlx::FromRow)]
struct RoleRow {
    name: String,
    via: Vec<String>,
    is_target: bool,
    rolsuper: bool,
    rolbypassrls: bool,
    rolcreaterole: bool,
    rolcreatedb: bool,
    rolreplication: bool,
}

pub(super) async fn check(conn: &mut PgConnection, ctx: &Ctx<'_>) -> Result<Vec<Finding>> {
    let rows: Vec<RoleRow> = sqlx::query_as(with_closure!(
        "SELECT r.rolname::text AS name, reach.via, reach.is_target,
                r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb, r.rolreplication
           FROM reach JOIN pg_catalog.pg_roles r ON r.oid = reach.role
          ORDER BY r.rolname"
    ))
    .bind(ctx.role_param())
    .fetch_all(&mut *conn)
    .await?;
    let mut findings = Vec::new();
    for row in &rows {
        if row.is_target {
            findings.extend(own_attributes(row));
        } else {
            findings.extend(inherited(ctx.role(), row));
        }
    }
    Ok(findings)
}

/// The attributes the role holds itself, each its own rule.
fn own_attributes(row: &RoleRow) -> Vec<Finding> {
    let role = &row.name;
    let object = format!("role {role}");
    let quoted = quote_ident(role);
    let rules = [
        (
            row.rolsuper,
            RuleId::RoleSuperuser,
            "is a superuser: row-level security never applies to it, so it sees and writes every tenant's rows",
            "NOSUPERUSER",
        ),
        (
            row.rolbypassrls,
            RuleId::RoleBypassRls,
            "has BYPASSRLS: row-level security never applies to it, so it sees and writes every tenant's rows",
            "NOBYPASSRLS",
        ),
        (
            row.rolcreaterole,
            RuleId::RoleCreateRole,
            "has CREATEROLE: it can create roles and grant itself membership in roles that own the tenant tables",
            "NOCREATEROLE",
        ),
        (
            row.rolcreatedb,
            RuleId::RoleCreateDb,
            "has CREATEDB: it can create databases of its own, outside every policy",
            "NOCREATEDB",
        ),
        (
            row.rolreplication,
            RuleId::RoleReplication,
            "has REPLICATION: a replication connection streams every tenant's rows past row-level security",
            "NOREPLICATION",
        ),
    ];
    rules
        .into_iter()
        .filter(|(has, ..)| *has)
        .map(|(_, rule, why, fix)| {
            Finding::new(
                rule,
                &object,
                format!("role {role} {why}"),
                format!("ALTER ROLE {quoted} {fix};"),
            )
        })
        .collect()
}

/// What a role the target can become brings with it.
fn inherited(target: &str, row: &RoleRow) -> Vec<Finding> {
    let membership = Membership {
        target,
        role: Some(&row.name),
        via: &row.via,
    };
    let path = if row.via.is_empty() {
        String::new()
    } else {
        format!(" through {}", row.via.join(", "))
    };
    let fix = membership.cut_membership_sql().unwrap_or_default();
    let object = format!("role {target}");
    let mut findings = Vec::new();
    let attributes: Vec<&str> = [
        (row.rolsuper, "SUPERUSER"),
        (row.rolbypassrls, "BYPASSRLS"),
        (row.rolcreaterole, "CREATEROLE"),
        (row.rolcreatedb, "CREATEDB"),
        (row.rolreplication, "REPLICATION"),
    ]
    .into_iter()
    .filter_map(|(has, name)| has.then_some(name))
    .collect();
    if !attributes.is_empty() {
        findings.push(Finding::new(
            RuleId::RoleMemberOfPrivileged,
            &object,
            format!(
                "role {target} is a member of role {}{path}, which has {}: SET ROLE {} gets around row-level security, whatever INHERIT says",
                row.name,
                attributes.join(", "),
                row.name
            ),
            fix.clone(),
        ));
    }
    if let Some((_, what)) = PREDEFINED.iter().find(|(name, _)| *name == row.name) {
        findings.push(Finding::new(
            RuleId::RoleMemberOfPredefined,
            &object,
            format!(
                "role {target} is a member of the predefined role {}{path}, which {what}",
                row.name
            ),
            fix,
        ));
    }
    findings
}
