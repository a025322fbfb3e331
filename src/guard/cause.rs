//! Root causes: one broad `GRANT`, one role membership, or one table never set up for
//! row-level security can break many rules at once. The families tag each finding with its
//! [`Cause`]; [`group`] then reports every cause that has more than one finding as a single
//! finding that names the cause, carries one fix for all of it, and lists each fault as a
//! consequence. A cause with a single finding keeps that finding as it is.

use std::collections::BTreeMap;

use super::finding::Finding;

/// What a finding follows from, and how to fix that at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cause {
    /// Findings with the same key share the cause.
    key: String,
    /// The cause, as the grouped finding's object (`grants to role app_runtime in schema app`).
    object: String,
    /// The cause in words, the grouped finding's message before its count of consequences.
    message: String,
    /// This finding's share of a merged `REVOKE`, when the fix is one.
    revoke: Option<Revoke>,
}

/// One privilege to take back: the parts of a `REVOKE` that [`group`] merges with others of
/// the same cause into as few statements as possible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Revoke {
    /// `REVOKE`, `REVOKE GRANT OPTION FOR`, or `ALTER DEFAULT PRIVILEGES ... REVOKE`.
    pub(crate) head: String,
    /// `TRUNCATE`, or `SELECT ("name")` for a column.
    pub(crate) privilege: String,
    /// `TABLE`, `SEQUENCE`, `DATABASE`, `SCHEMA`, `FUNCTION`, or `TABLES` for default
    /// privileges.
    pub(crate) keyword: &'static str,
    /// The quoted object; `None` for default privileges.
    pub(crate) object: Option<String>,
    /// The quoted grantee, or `PUBLIC`.
    pub(crate) grantee: String,
}

impl Cause {
    /// Privileges granted to `grantee` (`PUBLIC` or a role name) on objects in `scope`
    /// (`schema app`, `the database`): one broad GRANT, or several, taken back together.
    pub(crate) fn grant(grantee: &str, scope: &str, revoke: Revoke) -> Self {
        let holder = if grantee == "PUBLIC" {
            "PUBLIC".to_owned()
        } else {
            format!("role {grantee}")
        };
        Self {
            key: format!("grant\u{0}{grantee}\u{0}{scope}"),
            object: format!("grants to {holder} on {scope}"),
            message: format!(
                "{holder} was granted privileges on {scope} that the guard refuses (a broad GRANT such as GRANT ALL grants them all at once)"
            ),
            revoke: Some(revoke),
        }
    }

    /// Default privileges of `creator` in `scope` for `grantee`.
    pub(crate) fn default_privileges(
        creator: &str,
        scope: &str,
        grantee: &str,
        revoke: Revoke,
    ) -> Self {
        Self {
            key: format!("default\u{0}{creator}\u{0}{scope}\u{0}{grantee}"),
            object: format!("default privileges of role {creator}"),
            message: format!(
                "the default privileges of role {creator} {scope} give {grantee} rights the guard refuses on every new object"
            ),
            revoke: Some(revoke),
        }
    }

    /// Membership of `target` in `first`, the first role on its way to whatever the finding
    /// reached: revoking it takes away everything that came through it.
    pub(crate) fn membership(target: &str, first: &str) -> Self {
        Self {
            key: format!("membership\u{0}{first}"),
            object: format!("membership of role {target} in role {first}"),
            message: format!(
                "role {target} is a member of role {first} and gets, through that one membership, what that role owns or holds"
            ),
            revoke: None,
        }
    }

    /// A tenant table on which row-level security was never set up.
    pub(crate) fn unprotected_table(table: &str) -> Self {
        Self {
            key: format!("table\u{0}{table}"),
            object: format!("table {table}"),
            message: format!(
                "row-level security on tenant table {table} is not set up as rls-migrate sets it up (enabled, forced, with the tenant policy)"
            ),
            revoke: None,
        }
    }
}

/// Reports each cause shared by several findings as one finding with those as its
/// consequences; findings without a cause, or alone with theirs, are kept as they are.
pub(crate) fn group(findings: Vec<Finding>) -> Vec<Finding> {
    let mut by_cause: BTreeMap<String, Vec<Finding>> = BTreeMap::new();
    let mut out = Vec::new();
    for finding in findings {
        match finding.cause().map(|c| c.key.clone()) {
            Some(key) => by_cause.entry(key).or_default().push(finding),
            None => out.push(finding),
        }
    }
    for (_, mut members) in by_cause {
        members
            .sort_by(|a, b| (a.severity, a.rule, &a.object).cmp(&(b.severity, b.rule, &b.object)));
        members.dedup();
        if members.len() == 1 {
            out.extend(members);
            continue;
        }
        out.push(grouped(members));
    }
    out
}

/// One finding for `members` (sorted, two or more) that share a cause.
fn grouped(members: Vec<Finding>) -> Finding {
    let first = &members[0];
    let cause = first
        .cause()
        .cloned()
        .unwrap_or_else(|| unreachable!("grouped by cause"));
    let revokes: Option<Vec<&Revoke>> = members
        .iter()
        .map(|m| m.cause().and_then(|c| c.revoke.as_ref()))
        .collect();
    let fix_sql = match revokes {
        Some(parts) => merge_revokes(&parts),
        None => distinct_fixes(&members),
    };
    let rules: Vec<String> = {
        let mut rules: Vec<String> = members.iter().map(|m| m.rule.to_string()).collect();
        rules.dedup();
        rules
    };
    let message = format!(
        "{}: {} faults follow from it ({}), listed below; the fix removes the cause",
        cause.message,
        members.len(),
        rules.join(", ")
    );
    Finding::new(first.rule, cause.object, message, fix_sql)
        .with_severity(first.severity)
        .with_consequences(members)
}

/// The distinct fixes of `members`, in order, as one script.
fn distinct_fixes(members: &[Finding]) -> String {
    let mut fixes: Vec<&str> = Vec::new();
    for member in members {
        if !fixes.contains(&member.fix_sql.as_str()) {
            fixes.push(&member.fix_sql);
        }
    }
    fixes.join(" ")
}

/// What one merged `REVOKE` shares: head, kind of object, grantee.
type StatementKey<'a> = (&'a str, &'a str, &'a str);

/// An object (`None` for default privileges) and the privileges to take back on it.
type ObjectPrivileges<'a> = (Option<&'a str>, Vec<&'a str>);

/// As few `REVOKE` statements as take back every part: one per head, kind of object, grantee
/// and set of privileges, naming every object that has that set.
fn merge_revokes(parts: &[&Revoke]) -> String {
    // (head, keyword, grantee) -> object -> privileges, each in first-seen order.
    let mut statements: Vec<(StatementKey<'_>, Vec<ObjectPrivileges<'_>>)> = Vec::new();
    for part in parts {
        let key = (part.head.as_str(), part.keyword, part.grantee.as_str());
        let index = match statements.iter().position(|(k, _)| *k == key) {
            Some(index) => index,
            None => {
                statements.push((key, Vec::new()));
                statements.len() - 1
            }
        };
        let objects = &mut statements[index].1;
        let object = part.object.as_deref();
        match objects.iter_mut().find(|(o, _)| *o == object) {
            Some((_, privileges)) => {
                if !privileges.contains(&part.privilege.as_str()) {
                    privileges.push(&part.privilege);
                }
            }
            None => objects.push((object, vec![part.privilege.as_str()])),
        }
    }
    let mut sql = Vec::new();
    for ((head, keyword, grantee), objects) in statements {
        let mut by_privileges: Vec<(Vec<&str>, Vec<Option<&str>>)> = Vec::new();
        for (object, privileges) in objects {
            match by_privileges.iter_mut().find(|(p, _)| *p == privileges) {
                Some((_, objects)) => objects.push(object),
                None => by_privileges.push((privileges, vec![object])),
            }
        }
        for (privileges, objects) in by_privileges {
            let on: Vec<&str> = objects.into_iter().flatten().collect();
            let target = if on.is_empty() {
                keyword.to_owned()
            } else {
                format!("{keyword} {}", on.join(", "))
            };
            sql.push(format!(
                "{head} {} ON {target} FROM {grantee};",
                privileges.join(", ")
            ));
        }
    }
    sql.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::RuleId;

    fn revoke(privilege: &str, object: &str) -> Revoke {
        Revoke {
            head: "REVOKE".into(),
            privilege: privilege.into(),
            keyword: "TABLE",
            object: Some(object.into()),
            grantee: "\"rt\"".into(),
        }
    }

    fn granted(rule: RuleId, privilege: &str, object: &str) -> Finding {
        Finding::new(rule, object, format!("{privilege} on {object}"), "x").caused_by(Cause::grant(
            "rt",
            "schema app",
            revoke(privilege, object),
        ))
    }

    #[test]
    fn privileges_from_one_grant_become_one_finding_with_one_merged_revoke() {
        let findings = group(vec![
            granted(RuleId::TableTruncate, "TRUNCATE", "a"),
            granted(RuleId::TableTrigger, "TRIGGER", "a"),
            granted(RuleId::TableTruncate, "TRUNCATE", "b"),
            granted(RuleId::TableTrigger, "TRIGGER", "b"),
            granted(RuleId::TableReferences, "REFERENCES", "c"),
        ]);
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let one = &findings[0];
        assert_eq!(one.rule, RuleId::TableTruncate);
        assert_eq!(one.consequences.len(), 5);
        assert_eq!(one.object, "grants to role rt on schema app");
        assert_eq!(
            one.fix_sql,
            "REVOKE TRUNCATE, TRIGGER ON TABLE a, b FROM \"rt\"; REVOKE REFERENCES ON TABLE c FROM \"rt\";"
        );
    }

    #[test]
    fn a_cause_with_one_finding_keeps_the_finding_and_no_cause_is_never_grouped() {
        let single = granted(RuleId::TableTruncate, "TRUNCATE", "a");
        let plain = Finding::new(RuleId::RoleSuperuser, "role rt", "superuser", "ALTER ROLE;");
        let findings = group(vec![single.clone(), plain.clone(), plain.clone()]);
        assert_eq!(findings, vec![plain.clone(), plain, single]);
    }

    #[test]
    fn findings_through_one_membership_share_its_single_fix() {
        let owned = |object: &str| {
            Finding::new(
                RuleId::OwnsObject,
                object,
                "owned",
                "REVOKE \"d\" FROM \"rt\";",
            )
            .caused_by(Cause::membership("rt", "d"))
        };
        let findings = group(vec![
            owned("table a"),
            owned("table b"),
            owned("sequence c"),
        ]);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].fix_sql, "REVOKE \"d\" FROM \"rt\";");
        assert!(
            findings[0].message.contains("3 faults follow"),
            "{}",
            findings[0].message
        );
    }
}
