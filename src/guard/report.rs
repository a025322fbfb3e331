//! [`GuardReport`]: the findings of one guard run, as text for people and JSON for tools.

use std::fmt;

use serde::Serialize;

use super::finding::{Finding, Severity};

/// What the guard found, sorted by severity, rule and object.
///
/// Its [`fmt::Display`] is the text report (grouped by severity, each finding with its
/// object, its fix, and the faults it stands for when one cause broke several rules);
/// [`GuardReport::to_json`] is the same for tools.
///
/// ```
/// use rls_tenancy::guard::{Finding, GuardReport, RuleId};
/// let report = GuardReport::new("app_runtime", "app", "app", "15.20", vec![Finding::new(
///     RuleId::RlsNotForced,
///     "table app.users",
///     "row-level security on table app.users is not forced",
///     "ALTER TABLE \"app\".\"users\" FORCE ROW LEVEL SECURITY;",
/// )]);
/// assert!(report.is_refused());
/// assert!(report.to_string().contains("REFUSE (1)"));
/// assert_eq!(report.to_json()["refuse"][0]["rule"], "rls-not-forced");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GuardReport {
    role: String,
    database: String,
    schema: String,
    server_version: String,
    findings: Vec<Finding>,
}

impl GuardReport {
    /// A report on `role` in `database`, schema `schema`, on `server_version`.
    ///
    /// ```
    /// # use rls_tenancy::guard::GuardReport;
    /// let report = GuardReport::new("app_runtime", "app", "app", "15.20", Vec::new());
    /// assert!(!report.is_refused());
    /// ```
    pub fn new(
        role: impl Into<String>,
        database: impl Into<String>,
        schema: impl Into<String>,
        server_version: impl Into<String>,
        mut findings: Vec<Finding>,
    ) -> Self {
        findings.sort_by(|a, b| {
            (a.severity, a.rule, &a.object, &a.message)
                .cmp(&(b.severity, b.rule, &b.object, &b.message))
        });
        findings.dedup();
        Self {
            role: role.into(),
            database: database.into(),
            schema: schema.into(),
            server_version: server_version.into(),
            findings,
        }
    }

    /// Every finding, refusals first.
    ///
    /// ```
    /// # use rls_tenancy::guard::GuardReport;
    /// assert!(GuardReport::new("r", "d", "s", "15.20", Vec::new()).findings().is_empty());
    /// ```
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The findings that refuse start-up.
    ///
    /// ```
    /// # use rls_tenancy::guard::GuardReport;
    /// assert_eq!(GuardReport::new("r", "d", "s", "15.20", Vec::new()).refusals().count(), 0);
    /// ```
    pub fn refusals(&self) -> impl Iterator<Item = &Finding> {
        self.of(Severity::Refuse)
    }

    /// The findings that only warn.
    ///
    /// ```
    /// # use rls_tenancy::guard::GuardReport;
    /// assert_eq!(GuardReport::new("r", "d", "s", "15.20", Vec::new()).warnings().count(), 0);
    /// ```
    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.of(Severity::Warn)
    }

    /// Whether any finding refuses start-up (`rls-check` exits 1).
    ///
    /// ```
    /// # use rls_tenancy::guard::GuardReport;
    /// assert!(!GuardReport::new("r", "d", "s", "15.20", Vec::new()).is_refused());
    /// ```
    pub fn is_refused(&self) -> bool {
        self.refusals().next().is_some()
    }

    /// The inspected role.
    ///
    /// ```
    /// # use rls_tenancy::guard::GuardReport;
    /// assert_eq!(GuardReport::new("app_runtime", "d", "s", "15.20", Vec::new()).role(), "app_runtime");
    /// ```
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The report as JSON: the context, a count per severity, and the findings grouped by
    /// severity (`refuse`, `warn`), each with `rule`, `severity`, `object`, `message`,
    /// `fix_sql`, and `consequences` (the same fields) when it stands for several faults.
    ///
    /// ```
    /// # use rls_tenancy::guard::GuardReport;
    /// let json = GuardReport::new("r", "d", "s", "15.20", Vec::new()).to_json();
    /// assert_eq!(json["summary"]["refuse"], 0);
    /// assert_eq!(json["role"], "r");
    /// ```
    pub fn to_json(&self) -> serde_json::Value {
        let group = |severity| {
            self.of(severity)
                .map(|f| serde_json::to_value(f).unwrap_or(serde_json::Value::Null))
                .collect::<Vec<_>>()
        };
        let (refuse, warn) = (group(Severity::Refuse), group(Severity::Warn));
        serde_json::json!({
            "role": self.role,
            "database": self.database,
            "schema": self.schema,
            "server_version": self.server_version,
            "summary": { "refuse": refuse.len(), "warn": warn.len() },
            "refuse": refuse,
            "warn": warn,
        })
    }

    /// The findings themselves, for [`crate::Error::GuardRefused`].
    pub(crate) fn into_refusals(self) -> Vec<Finding> {
        self.findings
            .into_iter()
            .filter(|f| f.severity == Severity::Refuse)
            .collect()
    }

    fn of(&self, severity: Severity) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.severity == severity)
    }
}

impl fmt::Display for GuardReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "role {} on database {} (PostgreSQL {}), schema {}",
            self.role, self.database, self.server_version, self.schema
        )?;
        for severity in [Severity::Refuse, Severity::Warn] {
            let findings: Vec<&Finding> = self.of(severity).collect();
            if findings.is_empty() {
                continue;
            }
            writeln!(f)?;
            writeln!(
                f,
                "{} ({})",
                severity.to_string().to_uppercase(),
                findings.len()
            )?;
            for finding in findings {
                writeln!(f, "  {finding}")?;
                writeln!(f, "      object: {}", finding.object)?;
                writeln!(f, "      fix:    {}", finding.fix_sql)?;
                if !finding.consequences.is_empty() {
                    writeln!(f, "      consequences:")?;
                    for consequence in &finding.consequences {
                        writeln!(f, "        - {consequence} ({})", consequence.object)?;
                    }
                }
            }
        }
        writeln!(f)?;
        let (refuse, warn) = (self.refusals().count(), self.warnings().count());
        if refuse == 0 {
            write!(
                f,
                "ok: nothing lets this role get around row-level security ({warn} warning{})",
                plural(warn)
            )
        } else {
            write!(
                f,
                "refused: {refuse} finding{} to fix before the application may start ({warn} warning{})",
                plural(refuse),
                plural(warn)
            )
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::RuleId;

    fn finding(rule: RuleId, object: &str) -> Finding {
        Finding::new(rule, object, format!("{object} is wrong"), "SELECT 1;")
    }

    #[test]
    fn text_groups_refusals_before_warnings_and_counts_them() {
        let report = GuardReport::new(
            "rt",
            "db",
            "app",
            "15.20",
            vec![
                finding(RuleId::ServerVersionBelowFloor, "server"),
                finding(RuleId::RoleSuperuser, "role rt"),
                finding(RuleId::RoleSuperuser, "role rt"),
            ],
        );
        let text = report.to_string();
        let (refuse, warn) = (text.find("REFUSE (1)"), text.find("WARN (1)"));
        assert!(
            refuse.is_some() && warn.is_some() && refuse < warn,
            "{text}"
        );
        assert!(
            text.ends_with(
                "refused: 1 finding to fix before the application may start (1 warning)"
            )
        );
        assert_eq!(report.findings().len(), 2, "duplicates are reported once");
    }

    #[test]
    fn a_clean_report_says_ok_and_has_empty_groups() {
        let report = GuardReport::new("rt", "db", "app", "15.20", Vec::new());
        assert!(
            report
                .to_string()
                .ends_with("ok: nothing lets this role get around row-level security (0 warnings)")
        );
        assert_eq!(report.to_json()["refuse"], serde_json::json!([]));
    }
}
