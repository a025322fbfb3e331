//! What the guard reports: one [`Finding`] per fault, each under a stable [`RuleId`].

use std::fmt;

use serde::Serialize;

use super::cause::Cause;

/// How serious a finding is.
///
/// ```
/// use rls_tenancy::guard::{RuleId, Severity};
/// assert_eq!(RuleId::RoleSuperuser.severity(), Severity::Refuse);
/// assert_eq!(RuleId::ServerVersionBelowFloor.severity(), Severity::Warn);
/// assert_eq!(Severity::Refuse.to_string(), "refuse");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The wall is not standing: the tenant pool refuses to open and `rls-check` exits 1.
    Refuse,
    /// Worth fixing, but no tenant can reach another tenant's rows through it.
    Warn,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Refuse => "refuse",
            Severity::Warn => "warn",
        })
    }
}

/// Declares [`RuleId`] with its stable id, severity and one-line summary in one place.
macro_rules! rules {
    ($($(#[$doc:meta])* $variant:ident = $id:literal, $severity:ident, $summary:literal;)*) => {
        /// Every check the guard makes. The id (`role-superuser`, ...) is stable: CI scripts,
        /// allowlists and the tests refer to it.
        ///
        /// ```
        /// use rls_tenancy::guard::RuleId;
        /// assert_eq!(RuleId::PolicyNotCanonical.as_str(), "policy-not-canonical");
        /// assert_eq!("policy-not-canonical".parse::<RuleId>(), Ok(RuleId::PolicyNotCanonical));
        /// assert!(RuleId::ALL.len() > 25);
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[non_exhaustive]
        pub enum RuleId {
            $($(#[$doc])* $variant,)*
        }

        impl RuleId {
            /// Every rule, in report order.
            pub const ALL: &'static [RuleId] = &[$(RuleId::$variant,)*];

            /// The stable id, as printed in reports.
            ///
            /// ```
            /// # use rls_tenancy::guard::RuleId;
            /// assert_eq!(RuleId::RlsNotForced.as_str(), "rls-not-forced");
            /// ```
            pub fn as_str(self) -> &'static str {
                match self { $(RuleId::$variant => $id,)* }
            }

            /// Whether a finding under this rule refuses start-up or only warns.
            ///
            /// ```
            /// # use rls_tenancy::guard::{RuleId, Severity};
            /// assert_eq!(RuleId::TableTruncate.severity(), Severity::Refuse);
            /// ```
            pub fn severity(self) -> Severity {
                match self { $(RuleId::$variant => Severity::$severity,)* }
            }

            /// What the rule checks, in one line.
            ///
            /// ```
            /// # use rls_tenancy::guard::RuleId;
            /// assert!(RuleId::RoleBypassRls.summary().contains("BYPASSRLS"));
            /// ```
            pub fn summary(self) -> &'static str {
                match self { $(RuleId::$variant => $summary,)* }
            }
        }

        impl std::str::FromStr for RuleId {
            type Err = ();

            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($id => Ok(RuleId::$variant),)* _ => Err(()) }
            }
        }
    };
}

rules! {
    /// The role is a superuser: row-level security does not apply to it at all.
    RoleSuperuser = "role-superuser", Refuse, "the role is not SUPERUSER";
    /// The role has `BYPASSRLS`.
    RoleBypassRls = "role-bypassrls", Refuse, "the role does not have BYPASSRLS";
    /// The role has `CREATEROLE`: it can create a role that bypasses RLS.
    RoleCreateRole = "role-createrole", Refuse, "the role does not have CREATEROLE";
    /// The role has `CREATEDB`: it can create databases it owns.
    RoleCreateDb = "role-createdb", Refuse, "the role does not have CREATEDB";
    /// The role has `REPLICATION`: it can stream every row of the cluster.
    RoleReplication = "role-replication", Refuse, "the role does not have REPLICATION";
    /// The role can become (directly or through other roles, whatever INHERIT says) a role
    /// that is superuser or has BYPASSRLS, CREATEROLE, CREATEDB or REPLICATION.
    RoleMemberOfPrivileged = "role-member-of-privileged", Refuse,
        "the role is not a member, at any depth, of a role with SUPERUSER, BYPASSRLS, CREATEROLE, CREATEDB or REPLICATION";
    /// The role can become a predefined role that reads or writes all data, reads or writes
    /// server files, or runs server programs.
    RoleMemberOfPredefined = "role-member-of-predefined", Refuse,
        "the role is not a member, at any depth, of pg_read_all_data, pg_write_all_data, pg_read_server_files, pg_write_server_files or pg_execute_server_program";
    /// The role (or a role it can become) owns the database.
    OwnsDatabase = "owns-database", Refuse, "the role does not own the database";
    /// The role (or a role it can become) owns a schema.
    OwnsSchema = "owns-schema", Refuse, "the role does not own any schema";
    /// The role (or a role it can become) owns a table, view, sequence, function or type in
    /// the guarded schema: an owner can disable RLS and drop policies.
    OwnsObject = "owns-object", Refuse,
        "the role does not own any table, view, sequence, function or type in the schema";
    /// The role, or PUBLIC, has `CREATE` on a schema.
    SchemaCreate = "schema-create", Refuse, "the role has no CREATE on any schema";
    /// The role, or PUBLIC, has `TEMP` on the database.
    DatabaseTemp = "database-temp", Refuse, "the role has no TEMP on the database";
    /// The role, or PUBLIC, has `CREATE` on the database.
    DatabaseCreate = "database-create", Refuse, "the role has no CREATE on the database";
    /// The role, or PUBLIC, has `TRUNCATE` on a table: TRUNCATE ignores row-level security.
    TableTruncate = "table-truncate", Refuse, "the role has no TRUNCATE on any table";
    /// The role, or PUBLIC, has `REFERENCES` on a table or column.
    TableReferences = "table-references", Refuse, "the role has no REFERENCES on any table";
    /// The role, or PUBLIC, has `TRIGGER` on a table.
    TableTrigger = "table-trigger", Refuse, "the role has no TRIGGER on any table";
    /// The role, or PUBLIC, has `UPDATE` on a sequence (`setval`).
    SequenceUpdate = "sequence-update", Refuse, "the role has no UPDATE on any sequence";
    /// The role, or PUBLIC, holds a privilege WITH GRANT OPTION: it can grant onward.
    GrantOption = "grant-option", Refuse, "the role holds no privilege WITH GRANT OPTION";
    /// The role, or PUBLIC, can read more than the routing columns of the tenant registry,
    /// or write it.
    RegistryPrivilege = "registry-privilege", Refuse,
        "the role may only SELECT the registry's declared routing columns";
    /// A tenant table does not have row-level security enabled.
    RlsDisabled = "rls-disabled", Refuse, "every tenant table has ROW LEVEL SECURITY enabled";
    /// A tenant table does not force row-level security on its owner.
    RlsNotForced = "rls-not-forced", Refuse, "every tenant table has ROW LEVEL SECURITY forced";
    /// A tenant table has no policy at all.
    PolicyMissing = "policy-missing", Refuse, "every tenant table has a policy";
    /// A permissive policy that applies to the role is not the canonical tenant predicate,
    /// and no restrictive policy holds it in.
    PolicyNotCanonical = "policy-not-canonical", Refuse,
        "every permissive policy is the canonical tenant predicate";
    /// Restrictive policies hold a non-canonical permissive policy in for some commands but
    /// not for all of them.
    PolicyMixLeaks = "policy-mix-leaks", Refuse,
        "restrictive policies cover every command a non-canonical permissive policy opens";
    /// A tenant table has policies, but for a command the role holds the privilege for none
    /// of the permissive ones applies to the role (only restrictive policies, or policies for
    /// other roles): the application would see no rows and serve empty pages.
    PolicyNotForRole = "policy-not-for-role", Refuse,
        "for every command the role may run on a tenant table, a permissive policy applies to the role";
    /// A permissive policy for writes has no explicit WITH CHECK (PostgreSQL reuses USING,
    /// which is canonical, so no row leaks).
    PolicyImplicitWithCheck = "policy-implicit-with-check", Warn,
        "every policy for writes states its WITH CHECK explicitly";
    /// A view the role can read runs with its owner's rights (not `security_invoker`).
    ViewNotSecurityInvoker = "view-not-security-invoker", Refuse,
        "every view the role can read is security_invoker";
    /// A `SECURITY DEFINER` function the role can execute is not on the allowlist.
    SecurityDefinerFunction = "security-definer-function", Refuse,
        "every SECURITY DEFINER function the role can execute is allowlisted";
    /// A `LEAKPROOF` function outside `pg_catalog` the role can execute: the planner runs it
    /// on rows before the policy filters them, so one that raises or logs its argument leaks
    /// other tenants' values through the error message.
    LeakproofFunction = "leakproof-function", Refuse,
        "the role can execute no LEAKPROOF function outside pg_catalog";
    /// A materialized view over tenant data (or over any table that is not a declared global
    /// table) the role can read: it holds whatever rows its owner saw, and row-level security
    /// does not apply to materialized views.
    MaterializedViewReadable = "materialized-view-readable", Refuse,
        "the role can read no materialized view over anything but declared global tables";
    /// A foreign table the role can read: the remote server answers as whatever user the
    /// mapping names, past every policy of this database.
    ForeignTableReadable = "foreign-table-readable", Refuse,
        "the role can read no foreign table";
    /// Default privileges hand the role or PUBLIC a right the guard refuses, or open every
    /// new table to PUBLIC.
    DefaultPrivilege = "default-privilege", Refuse,
        "default privileges grant the role no TRUNCATE, REFERENCES, TRIGGER, sequence UPDATE, schema CREATE or grant option, and PUBLIC no access to new tables";
    /// The tenant variable is preset for the role, the database, or the session.
    TenantVariablePreset = "tenant-variable-preset", Refuse,
        "the tenant variable is never preset outside a tenant transaction";
    /// In the schema mode, `search_path` is preset for the role or the database (`ALTER
    /// ROLE/DATABASE ... SET`): outside a tenant transaction, unqualified names would reach
    /// the schema it names.
    SearchPathPreset = "search-path-preset", Refuse,
        "in the schema mode, search_path is never preset for the role or the database";
    /// A unique index on a tenant table lacks the tenant column while the role can write its
    /// columns: a duplicate-key error tells one tenant what another has.
    UniqueWithoutTenant = "unique-without-tenant", Refuse,
        "every unique index the role can write on a tenant table includes the tenant column";
    /// A foreign key between tenant tables does not pair the tenant columns.
    ForeignKeyWithoutTenant = "foreign-key-without-tenant", Refuse,
        "every foreign key between tenant tables pairs their tenant columns";
    /// A table the role can read or write references tenant rows (a foreign key into a
    /// tenant table or the registry, or into another such table) but is not a tenant table:
    /// no row-level security guards its rows.
    UnscopedTenantReference = "unscoped-tenant-reference", Refuse,
        "no table the role can read or write references tenant rows without being a tenant table";
    /// A table the role can read, in any schema, is neither a tenant table, the registry nor a
    /// declared global table (`[[global_table]]` in `policies/tenancy.toml`).
    UndeclaredTableReadable = "undeclared-table-readable", Refuse,
        "every table the role can read is a tenant table, the registry or a declared global table";
    /// A trigger or rule on a tenant table writes into a table the role can read that is not a
    /// tenant table: the rows it copies there are open to every tenant.
    TriggerWritesUnscopedTable = "trigger-writes-unscoped-table", Refuse,
        "no trigger or rule on a tenant table writes into a table the role can read without row-level security";
    /// A trigger on a tenant table runs a function that calls `NOTIFY` or `pg_notify`: any
    /// session may `LISTEN`, no privilege needed, and hears what it sends.
    TriggerNotifies = "trigger-notifies", Refuse,
        "no trigger on a tenant table sends notifications";
    /// Under the database strategy: the role can connect to a database on a tenant server that
    /// the deploy role owns but that holds no tenant (the template tenant databases are cloned
    /// from, or what an interrupted create, drop or move left), where the application's key
    /// and the role's grants are installed: rows written there reach every tenant cloned from
    /// the template, and a session held there blocks every clone.
    DatabaseConnectUnplaced = "database-connect-unplaced", Refuse,
        "the role can connect to no database of the deployment that holds no tenant";
    /// The server's minor release is older than the floor of known row-level security fixes.
    ServerVersionBelowFloor = "server-version-below-floor", Warn,
        "the server has every known row-level security fix";
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RuleId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// One fault: which rule, how serious, on what, in words, and the SQL that fixes it.
///
/// `fix_sql` is advice for a DBA to review and run as the object's owner or a superuser; the
/// guard never executes it.
///
/// ```
/// use rls_tenancy::guard::{Finding, RuleId, Severity};
/// let finding = Finding::new(
///     RuleId::RoleBypassRls,
///     "role app_runtime",
///     "role app_runtime has BYPASSRLS, so row-level security never applies to it",
///     "ALTER ROLE \"app_runtime\" NOBYPASSRLS;",
/// );
/// assert_eq!(finding.severity, Severity::Refuse);
/// assert_eq!(
///     finding.to_string(),
///     "[role-bypassrls] role app_runtime has BYPASSRLS, so row-level security never applies to it"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule that found it.
    pub rule: RuleId,
    /// The rule's severity.
    pub severity: Severity,
    /// The object at fault, e.g. `role app_runtime`, `table app.users`.
    pub object: String,
    /// What is wrong and why it matters, in one sentence.
    pub message: String,
    /// The SQL that fixes it, for a DBA to review and run.
    pub fix_sql: String,
    /// When one cause (a broad `GRANT`, a role membership, a table never set up for row-level
    /// security) breaks several rules, the guard reports the cause once: this finding names
    /// it and carries one fix, and each fault it causes is listed here. Empty otherwise.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub consequences: Vec<Finding>,
    #[serde(skip)]
    cause: Option<Cause>,
}

impl Finding {
    /// A finding under `rule`, with the rule's severity.
    ///
    /// ```
    /// # use rls_tenancy::guard::{Finding, RuleId};
    /// let f = Finding::new(RuleId::RlsDisabled, "table app.x", "no RLS", "ALTER TABLE ...;");
    /// assert_eq!(f.rule, RuleId::RlsDisabled);
    /// ```
    pub fn new(
        rule: RuleId,
        object: impl Into<String>,
        message: impl Into<String>,
        fix_sql: impl Into<String>,
    ) -> Self {
        Self {
            rule,
            severity: rule.severity(),
            object: object.into(),
            message: message.into(),
            fix_sql: fix_sql.into(),
            consequences: Vec::new(),
            cause: None,
        }
    }

    /// Tags the finding with what it follows from, for [`super::cause::group`].
    pub(crate) fn caused_by(mut self, cause: Cause) -> Self {
        self.cause = Some(cause);
        self
    }

    /// What the finding follows from, if a family said.
    pub(crate) fn cause(&self) -> Option<&Cause> {
        self.cause.as_ref()
    }

    /// The same finding with `severity` (a grouped finding takes its gravest consequence's).
    pub(crate) fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// The same finding standing for `consequences`.
    pub(crate) fn with_consequences(mut self, consequences: Vec<Finding>) -> Self {
        self.consequences = consequences;
        self
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.rule, self.message)
    }
}

/// Quotes a catalog name for the `fix_sql` advice: always double-quoted, inner quotes doubled.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `schema.name`, each part quoted, for the `fix_sql` advice.
pub(crate) fn quote_qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// The grantees of a `REVOKE ... FROM`: the roles (`None` for PUBLIC) that hold the grant, or
/// `PUBLIC` and `role` when the catalog named none.
pub(crate) fn revoke_from(grantees: &[Option<String>], role: &str) -> String {
    if grantees.is_empty() {
        return format!("PUBLIC, {}", quote_ident(role));
    }
    grantees
        .iter()
        .map(|g| {
            g.as_deref()
                .map_or_else(|| "PUBLIC".to_owned(), quote_ident)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `"account_id", "email"`: the tenant column first, then the others without it, quoted.
pub(crate) fn with_tenant_first(tenant: &str, columns: &[&str]) -> String {
    std::iter::once(tenant)
        .chain(columns.iter().copied().filter(|c| *c != tenant))
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `-- text`, a comment in the `fix_sql` advice that stays one: a line break in `text` (a
/// name or an expression from the catalog can hold one) would end the comment and turn the
/// rest into SQL that runs when the advice is pasted, so line breaks become spaces.
pub(crate) fn sql_comment(text: &str) -> String {
    format!("-- {}", one_line(text))
}

/// `text` with every control character (line breaks above all) replaced by a space.
pub(crate) fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_text_in_fix_advice_stays_inside_its_comment() {
        let advice = sql_comment("recreate: CREATE INDEX x ON t ((a || '\nDROP TABLE t; --'))");
        assert_eq!(advice.lines().count(), 1, "{advice}");
        assert!(advice.starts_with("-- "));
    }

    #[test]
    fn every_rule_id_round_trips_and_is_unique() {
        let mut seen = std::collections::HashSet::new();
        for rule in RuleId::ALL {
            assert_eq!(rule.as_str().parse::<RuleId>(), Ok(*rule));
            assert!(seen.insert(rule.as_str()), "duplicate id {rule}");
        }
        assert!("no-such-rule".parse::<RuleId>().is_err());
    }

    #[test]
    fn quoting_doubles_inner_quotes() {
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
        assert_eq!(quote_qualified("app", "users"), "\"app\".\"users\"");
    }
}
