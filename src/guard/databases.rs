//! [`check_databases`]: the guard over the database strategy's control database and every
//! tenant database the registry places, reported per database.

use std::fmt;

use serde_json::json;

use super::{GuardOptions, GuardReport, Result, check_url};
use crate::connect::{self, DatabaseUrl, ServerSet};
use crate::placement::{PlacedDatabase, placed_databases};

/// The guard's report on the control database and on each tenant database; a tenant
/// database that could not be checked (its server unreachable or not configured) is listed
/// with the reason.
#[derive(Debug)]
pub struct DatabasesCheck {
    /// The control database (the registry).
    pub control: GuardReport,
    /// Each tenant database, sorted by slug: its report, or why it could not be checked.
    pub tenants: Vec<(PlacedDatabase, std::result::Result<GuardReport, String>)>,
}

impl DatabasesCheck {
    /// Whether any database has a `refuse` finding (`rls-check` exits 1).
    pub fn is_refused(&self) -> bool {
        self.control.is_refused()
            || self
                .tenants
                .iter()
                .any(|(_, r)| r.as_ref().is_ok_and(GuardReport::is_refused))
    }

    /// Whether some tenant database could not be checked (`rls-check` exits 2 when nothing
    /// is refused).
    pub fn has_unchecked(&self) -> bool {
        self.tenants.iter().any(|(_, r)| r.is_err())
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
        json!({
            "control": self.control.to_json(),
            "tenants": tenants,
            "summary": {
                "databases": self.tenants.len() + 1,
                "refused": self.refused_count(),
                "unchecked": self.tenants.iter().filter(|(_, r)| r.is_err()).count(),
            },
        })
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
        write!(
            f,
            "\ndatabases: {} checked, {} refused, {} not checked",
            self.tenants.len() + 1 - self.tenants.iter().filter(|(_, r)| r.is_err()).count(),
            self.refused_count(),
            self.tenants.iter().filter(|(_, r)| r.is_err()).count(),
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
    drop(conn);
    let placed = placed?;
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
    Ok(DatabasesCheck {
        control: control_report,
        tenants,
    })
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
