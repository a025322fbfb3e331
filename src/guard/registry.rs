//! The tenant registry (`accounts`) and its domains table: routing data without row-level
//! security by design, so the role may `SELECT` their declared routing columns and nothing
//! else.

use sqlx::PgConnection;

use super::Ctx;
use super::Result;
use super::catalog::{Membership, with_closure};
use super::cause::{Cause, Revoke};
use super::finding::{Finding, RuleId, quote_ident, quote_qualified};

#[derive(sqlx::FromRow)]
struct Grant {
    /// `None` for a table-wide grant.
    column_name: Option<String>,
    /// `None` for PUBLIC.
    grantee: Option<String>,
    via: Vec<String>,
    privilege: String,
}

pub(super) async fn check(conn: &mut PgConnection, ctx: &Ctx<'_>) -> Result<Vec<Finding>> {
    let registry = ctx.resolved.declaration.registry();
    let readable: Vec<&str> = registry
        .readable_columns
        .iter()
        .map(|c| c.as_str())
        .collect();
    let mut findings = check_table(
        conn,
        ctx,
        registry.table.as_str(),
        &readable,
        "the tenant registry",
    )
    .await?;
    if let Some(domains) = &registry.domains {
        let readable = [
            domains.domain_column.as_str(),
            domains.tenant_column.as_str(),
            domains.primary_column.as_str(),
        ];
        findings.extend(
            check_table(
                conn,
                ctx,
                domains.table.as_str(),
                &readable,
                "the registry's domains table",
            )
            .await?,
        );
    }
    Ok(findings)
}

/// The grants on routing table `name` beyond `SELECT` on its `readable` columns.
async fn check_table(
    conn: &mut PgConnection,
    ctx: &Ctx<'_>,
    name: &str,
    readable: &[&str],
    kind: &str,
) -> Result<Vec<Finding>> {
    let rows: Vec<Grant> = sqlx::query_as(with_closure!(
        ",
        registry AS (
            SELECT c.oid, c.relacl, c.relowner FROM pg_catalog.pg_class c
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $2 AND c.relname = $3
        ),
        acl (column_name, grantee, privilege, owner) AS (
            SELECT NULL::name, a.grantee, a.privilege_type, r.relowner
              FROM registry r, aclexplode(r.relacl) a
            UNION ALL
            SELECT at.attname, a.grantee, a.privilege_type, r.relowner
              FROM registry r
              JOIN pg_catalog.pg_attribute at ON at.attrelid = r.oid
                   AND at.attnum > 0 AND NOT at.attisdropped,
                   aclexplode(at.attacl) a
        )
        SELECT acl.column_name::text, g.rolname::text AS grantee,
               coalesce(reach.via, '{}') AS via, acl.privilege
          FROM acl
          LEFT JOIN reach ON reach.role = acl.grantee
          LEFT JOIN pg_catalog.pg_roles g ON g.oid = acl.grantee
         WHERE (acl.grantee = 0 OR reach.role IS NOT NULL)
           AND acl.grantee <> acl.owner
           AND acl.privilege IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE')
           AND NOT (acl.privilege = 'SELECT'
                    AND coalesce(acl.column_name::text = ANY ($4::text[]), false))
         ORDER BY acl.column_name NULLS FIRST, acl.privilege"
    ))
    .bind(ctx.role_param())
    .bind(ctx.schema())
    .bind(name)
    .bind(readable)
    .fetch_all(&mut *conn)
    .await?;
    let table = format!("{}.{name}", ctx.schema());
    let table_sql = quote_qualified(ctx.schema(), name);
    let allowed = readable.join(", ");
    Ok(rows
        .iter()
        .map(|row| {
            let membership = Membership {
                target: ctx.role(),
                role: row.grantee.as_deref(),
                via: &row.via,
            };
            let (what, privilege_sql) = match &row.column_name {
                Some(column) => (
                    format!("{} on column {column}", row.privilege),
                    format!("{} ({})", row.privilege, quote_ident(column)),
                ),
                None => (
                    format!("{} on every column", row.privilege),
                    row.privilege.clone(),
                ),
            };
            let revoke = Revoke {
                head: "REVOKE".to_owned(),
                privilege: privilege_sql.clone(),
                keyword: "TABLE",
                object: Some(table_sql.clone()),
                grantee: membership.grantee_sql(),
            };
            Finding::new(
                RuleId::RegistryPrivilege,
                format!("table {table}"),
                format!(
                    "{} has {what} of {kind} {table}, which has no row-level security: only SELECT on {allowed} is allowed",
                    membership.holder()
                ),
                format!(
                    "REVOKE {privilege_sql} ON TABLE {table_sql} FROM {};",
                    membership.grantee_sql()
                ),
            )
            .caused_by(Cause::grant(
                membership.grantee_name(),
                &format!("schema {}", ctx.schema()),
                revoke,
            ))
        })
        .collect())
}
