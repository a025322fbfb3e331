//! The guard: checks, before the application serves a single request, that the role it runs
//! as cannot get around row-level security. `rls-check` runs the same checks in CI.
//!
//! A report lists every [`Finding`] under a stable [`RuleId`], with a [`Severity`]
//! (`refuse` or `warn`), the object at fault, a sentence a DBA understands, and the SQL that
//! fixes it. [`crate::TenantPool::connect`] runs the guard by default and refuses to open on
//! any `refuse` finding ([`GuardError::Refused`]);
//! [`crate::TenantPoolOptions::skip_guard`] is the explicit, logged way out.
//!
//! # What it checks
//!
//! The inspected role (the connection's `current_user`, or [`GuardOptions::role`]) together
//! with every role it can become, at any depth, whatever INHERIT says, because `SET ROLE`
//! works either way:
//!
//! | family | rules |
//! |---|---|
//! | roles | `role-superuser`, `role-bypassrls`, `role-createrole`, `role-createdb`, `role-replication`, `role-member-of-privileged`, `role-member-of-predefined` |
//! | ownership | `owns-database`, `owns-schema`, `owns-object` (table, view, sequence, function, type in the schema) |
//! | privileges | `schema-create`, `database-temp`, `database-create`, `table-truncate`, `table-references`, `table-trigger`, `sequence-update`, `grant-option` |
//! | registry | `registry-privilege`: only the declared routing columns of the registry may be read, nothing written |
//! | policies | `rls-disabled`, `rls-not-forced`, `policy-missing`, `policy-not-canonical`, `policy-mix-leaks`, `policy-implicit-with-check` (warn) |
//! | views and functions | `view-not-security-invoker`, `security-definer-function`, `materialized-view-readable` (warn) |
//! | default privileges | `default-privilege` |
//! | settings | `tenant-variable-preset` |
//! | constraints | `unique-without-tenant`, `foreign-key-without-tenant` |
//! | tables outside row-level security | `unscoped-tenant-reference`, `undeclared-table-readable` (warn) |
//! | version | `server-version-below-floor` (warn) |
//!
//! A tenant table is a table declared in `policies/tenancy.toml`, or any table in the schema
//! that has a tenant column; the registry (`accounts`) is not one: it has no row-level
//! security by design, and the `registry` family checks it instead.
//!
//! Privileges are read from the access control lists themselves (`aclexplode`): a grant to
//! the role, to a role it can become, or to PUBLIC. What an owner may do is reported once,
//! as ownership; what a superuser may do, once, as `role-superuser`.
//!
//! # Speed
//!
//! Each family is one set-based catalog query over all objects (about ten round trips in
//! all, inside one read-only repeatable-read transaction), never one query per table: the
//! check stays fast on schemas with thousands of tables (`cargo bench --bench guard`).
//!
//! ```no_run
//! use rls_tenancy::guard::{self, GuardOptions};
//! # async fn demo() -> rls_tenancy::Result<()> {
//! let url = "postgres://app_runtime:pw@127.0.0.1/app".parse()?;
//! let report = guard::check_url(&url, &GuardOptions::new(rls_tenancy::TenancyDeclaration::from_file("policies/tenancy.toml")?)).await?;
//! print!("{report}");
//! if report.is_refused() {
//!     std::process::exit(1);
//! }
//! # Ok(()) }
//! ```

mod catalog;
mod constraints;
mod defaults;
mod error;
mod finding;
mod options;
mod ownership;
mod policies;
mod privileges;
mod registry;
mod report;
mod roles;
mod settings;
mod unscoped;
mod version;
mod views_functions;

use sqlx::{Connection, PgConnection};

pub use error::GuardError;
pub(crate) use error::Result;
pub use finding::{Finding, RuleId, Severity};
pub use options::{GuardOptions, ServerVersion};
pub use report::GuardReport;

use crate::connect::{self, DatabaseUrl};
use catalog::Session;
use options::Resolved;

/// What every rule family needs: the options and the session facts.
#[derive(Debug)]
struct Ctx<'a> {
    options: &'a GuardOptions,
    resolved: &'a Resolved,
    session: &'a Session,
}

impl Ctx<'_> {
    /// The value bound as `$1` in every family query: the named role, or `NULL` for
    /// `current_user`.
    fn role_param(&self) -> Option<&str> {
        self.options.inspected_role()
    }

    /// The inspected role's name.
    fn role(&self) -> &str {
        &self.session.role
    }

    /// The guarded schema's name.
    fn schema(&self) -> &str {
        self.resolved.schema.as_str()
    }

    /// The parameters `$3` to `$6` of [`catalog::tenant_tables!`]: declared table names, their
    /// columns, every tenant column name, and the registry table.
    fn tenant_table_params(&self) -> (Vec<String>, Vec<String>, Vec<String>, String) {
        let decl = &self.resolved.declaration;
        let declared: Vec<_> = if self.resolved.requires_declared_tables {
            decl.tenant_tables().iter().collect()
        } else {
            Vec::new()
        };
        let mut columns: Vec<String> = decl
            .tenant_tables()
            .iter()
            .map(|t| t.column.as_str().to_owned())
            .collect();
        columns.sort();
        columns.dedup();
        (
            declared
                .iter()
                .map(|t| t.name.as_str().to_owned())
                .collect(),
            declared
                .iter()
                .map(|t| t.column.as_str().to_owned())
                .collect(),
            columns,
            decl.registry().table.as_str().to_owned(),
        )
    }
}

/// Runs every check on `conn`, inspecting the connection's own role (or
/// [`GuardOptions::role`]), and returns the report. Changes nothing: the queries run in a
/// read-only transaction (a savepoint when `conn` is already in one), rolled back at the end.
///
/// # Errors
/// [`GuardError::MissingRole`] when the named role does not exist, [`GuardError::MissingSchema`] when
/// the schema does not, [`GuardError::NotMigrated`] when a declared tenant table is missing, or
/// the database's error.
///
/// ```no_run
/// use rls_tenancy::guard::{self, GuardOptions};
/// use sqlx::Connection;
/// # async fn demo() -> rls_tenancy::Result<()> {
/// let mut conn = sqlx::PgConnection::connect("postgres://app_runtime:pw@127.0.0.1/app").await?;
/// let report = guard::check(&mut conn, &GuardOptions::new(rls_tenancy::TenancyDeclaration::from_file("policies/tenancy.toml")?)).await?;
/// for finding in report.refusals() {
///     eprintln!("{finding}\n  fix: {}", finding.fix_sql);
/// }
/// # Ok(()) }
/// ```
#[tracing::instrument(skip_all, fields(role = options.inspected_role()))]
pub async fn check(conn: &mut PgConnection, options: &GuardOptions) -> Result<GuardReport> {
    let resolved = options.resolve()?;
    let mut tx = if conn.is_in_transaction() {
        conn.begin().await?
    } else {
        conn.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await?
    };
    let session =
        Session::read(&mut tx, options.inspected_role(), resolved.schema.as_str()).await?;
    let ctx = Ctx {
        options,
        resolved: &resolved,
        session: &session,
    };
    let mut findings = Vec::new();
    findings.extend(roles::check(&mut tx, &ctx).await?);
    findings.extend(ownership::check(&mut tx, &ctx).await?);
    findings.extend(privileges::check(&mut tx, &ctx).await?);
    findings.extend(registry::check(&mut tx, &ctx).await?);
    findings.extend(policies::check(&mut tx, &ctx).await?);
    findings.extend(views_functions::check(&mut tx, &ctx).await?);
    findings.extend(defaults::check(&mut tx, &ctx).await?);
    findings.extend(settings::check(&mut tx, &ctx).await?);
    findings.extend(constraints::check(&mut tx, &ctx).await?);
    findings.extend(unscoped::check(&mut tx, &ctx).await?);
    findings.extend(version::check(&ctx));
    tx.rollback().await?;
    let report = GuardReport::new(
        &session.role,
        &session.database,
        resolved.schema.as_str(),
        &session.server_version,
        findings,
    );
    tracing::debug!(
        refusals = report.refusals().count(),
        warnings = report.warnings().count(),
        "guard checked the role"
    );
    Ok(report)
}

/// Connects to `url` and runs [`check`]: what `rls-check` does.
///
/// # Errors
/// [`GuardError::Connect`] when the server is unreachable or refuses the login (the URL in the
/// message has its password hidden), else as [`check`].
///
/// ```no_run
/// use rls_tenancy::guard::{self, GuardOptions};
/// # async fn demo() -> rls_tenancy::Result<()> {
/// let url = "postgres://app_runtime:pw@127.0.0.1/app".parse()?;
/// let report = guard::check_url(&url, &GuardOptions::new(rls_tenancy::TenancyDeclaration::from_file("policies/tenancy.toml")?)).await?;
/// assert!(!report.is_refused(), "{report}");
/// # Ok(()) }
/// ```
pub async fn check_url(url: &DatabaseUrl, options: &GuardOptions) -> Result<GuardReport> {
    let mut conn = connect::connect(url).await?;
    let report = check(&mut conn, options).await;
    // Closing politely is best effort; the report is what matters.
    let _ = conn.close().await;
    report
}

/// Runs the guard for the tenant pool: `Ok` when nothing refuses (warnings are logged).
pub(crate) async fn enforce(conn: &mut PgConnection, options: &GuardOptions) -> Result<()> {
    let report = check(conn, options).await?;
    for warning in report.warnings() {
        tracing::warn!(rule = %warning.rule, fix = %warning.fix_sql, "{}", warning.message);
    }
    if report.is_refused() {
        return Err(GuardError::Refused {
            findings: report.into_refusals(),
        });
    }
    Ok(())
}
