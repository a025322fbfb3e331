//! Default privileges (`ALTER DEFAULT PRIVILEGES`): a right the guard refuses on existing
//! objects must not arrive with the next table, sequence or schema either.

use sqlx::PgConnection;

use super::Ctx;
use super::Result;
use super::catalog::{Membership, with_closure};
use super::finding::{Finding, RuleId, quote_ident};

#[derive(sqlx::FromRow)]
struct DefaultGrant {
    /// `TABLES`, `SEQUENCES`, `FUNCTIONS`, `TYPES` or `SCHEMAS`.
    objects: String,
    /// The role whose new objects get the privilege.
    creator: String,
    /// `None` for every schema.
    schema: Option<String>,
    /// `None` for PUBLIC.
    grantee: Option<String>,
    via: Vec<String>,
    privilege: String,
    grantable: bool,
}

pub(super) async fn check(conn: &mut PgConnection, ctx: &Ctx<'_>) -> Result<Vec<Finding>> {
    let rows: Vec<DefaultGrant> = sqlx::query_as(with_closure!(
        "SELECT CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES'
                     WHEN 'f' THEN 'FUNCTIONS' WHEN 'T' THEN 'TYPES' ELSE 'SCHEMAS' END AS objects,
                creator.rolname::text AS creator, n.nspname::text AS schema,
                g.rolname::text AS grantee, coalesce(reach.via, '{}') AS via,
                a.privilege_type AS privilege, a.is_grantable AS grantable
           FROM pg_catalog.pg_default_acl d
           JOIN pg_catalog.pg_roles creator ON creator.oid = d.defaclrole
           LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
           CROSS JOIN LATERAL aclexplode(d.defaclacl) a
           LEFT JOIN reach ON reach.role = a.grantee
           LEFT JOIN pg_catalog.pg_roles g ON g.oid = a.grantee
          WHERE (a.grantee = 0 OR reach.role IS NOT NULL)
            AND a.grantee <> d.defaclrole
            AND (a.is_grantable
                 OR (d.defaclobjtype = 'r' AND a.privilege_type IN ('TRUNCATE', 'REFERENCES', 'TRIGGER'))
                 OR (d.defaclobjtype = 'S' AND a.privilege_type = 'UPDATE')
                 OR (d.defaclobjtype = 'n' AND a.privilege_type = 'CREATE'))
          ORDER BY 2, 3, 1, 6"
    ))
    .bind(ctx.role_param())
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let membership = Membership {
                target: ctx.role(),
                role: row.grantee.as_deref(),
                via: &row.via,
            };
            let (scope, scope_sql) = match &row.schema {
                Some(schema) => (
                    format!("in schema {schema}"),
                    format!(" IN SCHEMA {}", quote_ident(schema)),
                ),
                None => ("in every schema".to_owned(), String::new()),
            };
            let objects = row.objects.to_lowercase();
            let option = if row.grantable { " WITH GRANT OPTION" } else { "" };
            let revoke_option = if row.grantable && !refused_privilege(row) {
                "GRANT OPTION FOR "
            } else {
                ""
            };
            Finding::new(
                RuleId::DefaultPrivilege,
                format!("default privileges of role {}", row.creator),
                format!(
                    "default privileges give {} {}{option} on every new {objects} role {} creates {scope}",
                    membership.holder(),
                    row.privilege,
                    row.creator
                ),
                format!(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {}{scope_sql} REVOKE {revoke_option}{} ON {} FROM {};",
                    quote_ident(&row.creator),
                    row.privilege,
                    row.objects,
                    membership.grantee_sql()
                ),
            )
        })
        .collect())
}

/// Whether the privilege itself (not only its grant option) is one the guard refuses.
fn refused_privilege(row: &DefaultGrant) -> bool {
    matches!(
        (row.objects.as_str(), row.privilege.as_str()),
        ("TABLES", "TRUNCATE" | "REFERENCES" | "TRIGGER")
            | ("SEQUENCES", "UPDATE")
            | ("SCHEMAS", "CREATE")
    )
}
