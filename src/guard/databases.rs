//! [`check_databases`]: the guard over the database strategy's control database and every
//! tenant database the registry places, reported per database, and over what else the role
//! can connect to on each server.

use std::fmt;

use serde_json::json;

use super::reach::{Control, unplaced};
use super::{Finding, GuardOptions, GuardReport, Result, check_url};
use crate::connect::{self, DatabaseUrl, Server, ServerSet};
use crate::placement::{PlacedDatabase, placed_databases};

/// The guard's report on the control database and on each tenant database, and on each server
/// the databases of the deployment that hold no tenant but that the role can connect to
/// (`database-connect-unplaced`); a database or server that could not be checked (unreachable,
/// not configured) is listed with the reason.
#[derive(Debug)]
pub struct DatabasesCheck {
    /// The control database (the registry).
    pub control: GuardReport,
    /// Each tenant database, sorted by slug: its report, or why it could not be checked.
    pub tenants: Vec<(PlacedDatabase, std::result::Result<GuardReport, String>)>,
    /// Each server, in the order configured: the databases of the deployment (owned by the
    /// control database's owner) that hold no tenant and that the role can connect to, one
    /// finding each; or why the server could not be checked.
    pub servers: Vec<(String, std::result::Result<Vec<Finding>, String>)>,
}

impl DatabasesCheck {
    /// Whether any database has a `refuse` finding, or a server a database the role should
    /// not reach (`rls-check` exits 1).
    pub fn is_refused(&self) -> bool {
        self.control.is_refused()
            || self
                .tenants
                .iter()
                .any(|(_, r)| r.as_ref().is_ok_and(GuardReport::is_refused))
            || self
                .servers
                .iter()
                .any(|(_, r)| r.as_ref().is_ok_and(|found| !found.is_empty()))
    }

    /// Whether some tenant database or server could not be checked (`rls-check` exits 2 when
    /// nothing is refused).
    pub fn has_unchecked(&self) -> bool {
        self.tenants.iter().any(|(_, r)| r.is_err()) || self.servers.iter().any(|(_, r)| r.is_err())
    }

    /// One JSON document: the control database's report, each tenant database's (or its
    /// error), and the counts.
    pub fn to_json(&self) -> serde_json::Value {
        let tenants: Vec<serde_json::Value> = self
            .tenants
            .iter()
            .map(|(placed, report)| {
                let mut entry = json!({
                    "slug": placed.slug,
                    "server": placed.server,
                    "database": placed.database.as_str(),
                });
                match report {
                    Ok(report) => entry["report"] = report.to_json(),
                    Err(error) => entry["error"] = json!(error),
                }
                entry
            })
            .collect();
        let servers: Vec<serde_json::Value> = self
            .servers
            .iter()
            .map(|(server, reach)| match reach {
                Ok(findings) => json!({ "server": server, "refuse": findings }),
                Err(error) => json!({ "server": server, "error": error }),
            })
            .collect();
        json!({
            "control": self.control.to_json(),
            "tenants": tenants,
            "servers": servers,
            "summary": {
                "databases": self.tenants.len() + 1,
                "refused": self.refused_count(),
                "unchecked": self.tenants.iter().filter(|(_, r)| r.is_err()).count(),
                "unplaced_databases": self.unplaced_count(),
            },
        })
    }

    /// How many databases of the deployment that hold no tenant the role can connect to.
    fn unplaced_count(&self) -> usize {
        self.servers
            .iter()
            .filter_map(|(_, r)| r.as_ref().ok())
            .map(Vec::len)
            .sum()
    }

    fn refused_count(&self) -> usize {
        usize::from(self.control.is_refused())
            + self
                .tenants
                .iter()
                .filter(|(_, r)| r.as_ref().is_ok_and(GuardReport::is_refused))
                .count()
    }
}

impl fmt::Display for DatabasesCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "== control database ==\n{}", self.control)?;
        for (placed, report) in &self.tenants {
            match report {
                Ok(report) => writeln!(f, "\n== tenant {placed} ==\n{report}")?,
                Err(error) => writeln!(f, "\n== tenant {placed} ==\nNOT CHECKED: {error}")?,
            }
        }
        for (server, reach) in &self.servers {
            writeln!(f, "\n== server {server}: databases that hold no tenant ==")?;
            match reach {
                Ok(findings) if findings.is_empty() => writeln!(
                    f,
                    "ok: the role can connect to no database of the deployment that holds no tenant"
                )?,
                Ok(findings) => {
                    writeln!(f, "REFUSE ({})", findings.len())?;
                    for finding in findings {
                        writeln!(f, "  {finding}")?;
                        writeln!(f, "      object: {}", finding.object)?;
                        writeln!(f, "      fix:    {}", finding.fix_sql)?;
                    }
                }
                Err(error) => writeln!(f, "NOT CHECKED: {error}")?,
            }
        }
        write!(
            f,
            "\ndatabases: {} checked, {} refused, {} not checked; {} database(s) holding no tenant reachable",
            self.tenants.len() + 1 - self.tenants.iter().filter(|(_, r)| r.is_err()).count(),
            self.refused_count(),
            self.tenants.iter().filter(|(_, r)| r.is_err()).count(),
            self.unplaced_count(),
        )
    }
}

/// Runs the guard on the control database at `control` and on every tenant database its
/// registry places, each reached through its server in `servers` (the URLs of the role to
/// inspect, usually the runtime role), with `options` (its declaration under the database
/// strategy). Tenant databases are checked one after another; one that cannot be reached is
/// reported and the others are still checked.
///
/// # Errors
/// As [`check_url`] for the control database; [`super::GuardError::Placement`] when the
/// registry's placement columns cannot be read.
///
/// ```no_run
/// use rls_tenancy::guard::{self, GuardOptions};
/// # async fn demo(servers: &rls_tenancy::ServerSet) -> rls_tenancy::Result<()> {
/// let decl = rls_tenancy::TenancyDeclaration::from_file("policies/tenancy.toml")?
///     .with_strategy(rls_tenancy::Strategy::Database);
/// let url = "postgres://app_runtime:pw@control/app".parse()?;
/// let check = guard::check_databases(&url, servers, &GuardOptions::new(decl)).await?;
/// print!("{check}");
/// # Ok(()) }
/// ```
pub async fn check_databases(
    control: &DatabaseUrl,
    servers: &ServerSet,
    options: &GuardOptions,
) -> Result<DatabasesCheck> {
    let control_report = check_url(control, options).await?;
    let mut conn = connect::connect(control).await?;
    let placed = placed_databases(&mut conn, options.declaration()).await;
    let control_side = Control::read(&mut conn).await;
    drop(conn);
    let (placed, control_side) = (placed?, control_side?);
    let tenant_options = options.clone().tenant_database();
    let mut tenants = Vec::with_capacity(placed.len());
    for tenant in placed {
        let report = match tenant_url(servers, &tenant) {
            Ok(url) => check_url(&url, &tenant_options)
                .await
                .map_err(|e| e.to_string()),
            Err(error) => Err(error),
        };
        tenants.push((tenant, report));
    }
    let mut reach = Vec::with_capacity(servers.len());
    for server in servers.iter() {
        // Two names for one server (the same host and port) share its databases: a tenant
        // placed under either name is placed here.
        let here: Vec<&str> = tenants
            .iter()
            .filter(|(t, _)| {
                t.server == server.name().as_str()
                    || servers
                        .iter()
                        .find(|other| other.name().as_str() == t.server)
                        .is_some_and(|other| same_address(other, server))
            })
            .map(|(t, _)| t.database.as_str())
            .collect();
        let found = server_reach(server, &here, options.inspected_role(), &control_side)
            .await
            .map_err(|e| e.to_string());
        reach.push((server.name().to_string(), found));
    }
    Ok(DatabasesCheck {
        control: control_report,
        tenants,
        servers: reach,
    })
}

/// The `database-connect-unplaced` findings of `server`, whose tenant databases are `placed`:
/// read on a connection to one of those (the role can surely connect there), else to the
/// database its URL names.
async fn server_reach(
    server: &Server,
    placed: &[&str],
    role: Option<&str>,
    control: &Control,
) -> Result<Vec<Finding>> {
    let url = match placed.first() {
        Some(database) => server.url().with_database(database),
        None => server.url().clone(),
    };
    let mut conn = connect::connect(&url).await?;
    let found = unplaced(&mut conn, server.name().as_str(), role, control, placed).await;
    let _ = sqlx::Connection::close(conn).await;
    found
}

/// Whether `a` and `b` reach the same server (host and port).
fn same_address(a: &Server, b: &Server) -> bool {
    match (a.url().connect_options(), b.url().connect_options()) {
        (Ok(a), Ok(b)) => a.get_host() == b.get_host() && a.get_port() == b.get_port(),
        _ => false,
    }
}

/// The URL of `tenant`'s database on its server, or why there is none.
fn tenant_url(
    servers: &ServerSet,
    tenant: &PlacedDatabase,
) -> std::result::Result<DatabaseUrl, String> {
    let name = tenant
        .server
        .parse()
        .map_err(|e: connect::ConnectError| e.to_string())?;
    let server = servers.server(&name).map_err(|e| e.to_string())?;
    Ok(server.url().with_database(tenant.database.as_str()))
}
