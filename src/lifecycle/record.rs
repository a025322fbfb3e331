//! [`TenantRecord`]: one tenant as the registry holds it, and the `list` output.

use std::fmt::Write as _;

use serde::Serialize;

use crate::tenant::{TenantId, TenantScope, TenantSlug};

/// One tenant: its registry row (and, in the schema mode, its schema; in the database mode,
/// its server and database).
///
/// ```
/// use rls_tenancy::{TenantId, TenantRecord};
/// let record = TenantRecord {
///     id: TenantId::new(7)?,
///     slug: "acme".parse()?,
///     schema: Some("acme".into()),
///     server: None,
///     database: None,
///     domains: vec![],
///     active: true,
/// };
/// assert_eq!(
///     serde_json::to_string(&record)?,
///     r#"{"slug":"acme","id":7,"schema":"acme","domains":[],"active":true}"#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantRecord {
    /// The tenant's slug.
    pub slug: TenantSlug,
    /// The tenant's id.
    pub id: TenantId,
    /// Its schema in the schema mode; `None` in the other modes.
    pub schema: Option<String>,
    /// Its database's server in the database mode; `None` in the other modes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Its database in the database mode; `None` in the other modes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// The domains that route to it.
    pub domains: Vec<String>,
    /// Whether it is served (a suspended tenant is not: 404).
    pub active: bool,
}

impl TenantRecord {
    /// The tenant as a [`TenantScope`], to open its transactions with.
    ///
    /// ```
    /// # use rls_tenancy::{TenantId, TenantRecord};
    /// # let record = TenantRecord { id: TenantId::new(7)?, slug: "acme".parse()?, schema: None, server: None, database: None, domains: vec![], active: true };
    /// assert_eq!(record.scope().id(), TenantId::new(7)?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn scope(&self) -> TenantScope {
        TenantScope::new(self.id, self.slug.clone())
    }
}

/// The `list` output as text: one tenant a line, in columns, with a header. In the database
/// mode the place column is `server/database`.
///
/// ```
/// use rls_tenancy::{TenantId, TenantRecord, list_text};
/// let record = TenantRecord {
///     id: TenantId::new(7)?,
///     slug: "acme".parse()?,
///     schema: None,
///     server: None,
///     database: None,
///     domains: vec!["acme.example".into()],
///     active: false,
/// };
/// let text = list_text(&[record.clone()]);
/// assert_eq!(text.lines().nth(1), Some("acme  7   -       suspended  acme.example"));
/// let placed = TenantRecord { server: Some("eu1".into()), database: Some("app_tenant_acme".into()), ..record };
/// let text = list_text(&[placed]);
/// assert_eq!(text.lines().next(), Some("slug  id  server/database      state      domains"));
/// assert_eq!(text.lines().nth(1), Some("acme  7   eu1/app_tenant_acme  suspended  acme.example"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn list_text(records: &[TenantRecord]) -> String {
    let placed = records.iter().any(|r| r.server.is_some());
    let rows: Vec<[String; 5]> = records
        .iter()
        .map(|r| {
            let place = match (&r.server, &r.database, &r.schema) {
                (Some(server), Some(database), _) => format!("{server}/{database}"),
                (_, _, Some(schema)) => schema.clone(),
                _ => "-".to_owned(),
            };
            [
                r.slug.to_string(),
                r.id.to_string(),
                place,
                if r.active { "active" } else { "suspended" }.to_owned(),
                r.domains.join(","),
            ]
        })
        .collect();
    let place = if placed { "server/database" } else { "schema" };
    let header = ["slug", "id", place, "state", "domains"].map(str::to_owned);
    let mut widths = [0; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:width$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
