//! What the inspected role can reach on a tenant server besides its tenants' databases (the
//! database strategy): rule `database-connect-unplaced`.

use sqlx::PgConnection;

use super::finding::quote_ident;
use super::{Finding, Result, RuleId};

/// The control database as the servers see it: its name, its owner (the deploy role, which
/// owns every tenant database and the template too) and when its server started (the same on
/// every connection to one server: how a tenant server is told to be the control's own).
#[derive(Debug)]
pub(super) struct Control {
    name: String,
    owner: String,
    server_started: String,
}

impl Control {
    /// Reads it on a connection to the control database.
    pub(super) async fn read(conn: &mut PgConnection) -> Result<Self> {
        let (name, owner, server_started) = sqlx::query_as(
            "SELECT d.datname::text, pg_catalog.pg_get_userbyid(d.datdba)::text,
                    pg_catalog.pg_postmaster_start_time()::text
               FROM pg_catalog.pg_database d
              WHERE d.datname = pg_catalog.current_database()",
        )
        .fetch_one(conn)
        .await?;
        Ok(Self {
            name,
            owner,
            server_started,
        })
    }
}

/// The databases of the server `conn` is on that `role` (the connection's own role when
/// `None`) can connect to, that the deploy role owns, and that hold no tenant: neither one of
/// `placed` (the registry's databases on this server) nor the control database. One finding
/// each, naming `server`.
pub(super) async fn unplaced(
    conn: &mut PgConnection,
    server: &str,
    role: Option<&str>,
    control: &Control,
    placed: &[&str],
) -> Result<Vec<Finding>> {
    let rows: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT d.datname::text, me.role,
                pg_catalog.has_database_privilege('public', d.oid, 'CONNECT')
           FROM pg_catalog.pg_database d,
                (SELECT coalesce($1, current_user::text) AS role) me
          WHERE d.datallowconn
            AND pg_catalog.pg_get_userbyid(d.datdba) = $2
            AND NOT d.datname = ANY($3::text[])
            AND NOT (d.datname = $4 AND pg_catalog.pg_postmaster_start_time()::text = $5)
            AND pg_catalog.has_database_privilege(me.role, d.oid, 'CONNECT')
          ORDER BY 1",
    )
    .bind(role)
    .bind(&control.owner)
    .bind(placed)
    .bind(&control.name)
    .bind(&control.server_started)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(database, role, public)| {
            let (via, from) = if public {
                (
                    " (through PUBLIC)",
                    format!("PUBLIC, {}", quote_ident(&role)),
                )
            } else {
                ("", quote_ident(&role))
            };
            Finding::new(
                RuleId::DatabaseConnectUnplaced,
                format!("database {database} on server {server}"),
                format!(
                    "role {role} can connect to database {database} on server {server}{via}, which the deploy role {owner} owns and no tenant is placed in (the template tenant databases are cloned from, or what an interrupted create, drop or move left): the application's key and the role's grants are there; revoke its CONNECT, or drop it if it is a leftover",
                    owner = control.owner,
                ),
                format!(
                    "REVOKE CONNECT ON DATABASE {} FROM {from};",
                    quote_ident(&database)
                ),
            )
        })
        .collect())
}
