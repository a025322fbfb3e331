//! The guard: checks, before the application serves a single request, that the role it runs
//! as cannot get around row-level security. `rls-check` runs the same checks in CI.
//!
//! A report lists every [`Finding`] under a stable [`RuleId`], with a [`Severity`]
//! (`refuse` or `warn`), the object at fault, a sentence a DBA understands, and the SQL that
//! fixes it. [`crate::TenantPool::connect`] runs the guard by default and refuses to open on
//! any `refuse` finding ([`GuardError::Refused`]);
//! [`crate::TenantPoolOptions::skip_guard`] is the explicit way out, logged as a warning on
//! every pool it opens. [`crate::TenantPoolOptions::deploy_role_writer`] (seeding through each
//! tenant's policy) is logged the same way and still refuses a superuser or `BYPASSRLS` login.
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
//! | policies | `rls-disabled`, `rls-not-forced`, `policy-missing`, `policy-not-canonical`, `policy-mix-leaks`, `policy-not-for-role` (only restrictive policies, or policies for other roles: empty pages), `policy-implicit-with-check` (warn) |
//! | views and functions | `view-not-security-invoker`, `security-definer-function`, `leakproof-function` (outside `pg_catalog`) |
//! | materialized views | `materialized-view-readable` (over anything but declared global tables) |
//! | default privileges | `default-privilege` (refused rights, or PUBLIC access to every new table) |
//! | settings | `tenant-variable-preset`, `search-path-preset` (the schema mode: `search_path` set by `ALTER ROLE/DATABASE ... SET`) |
//! | constraints | `unique-without-tenant`, `foreign-key-without-tenant` |
//! | tables outside row-level security, in any schema | `unscoped-tenant-reference`, `foreign-table-readable`, `trigger-writes-unscoped-table`, `undeclared-table-readable` |
//! | triggers on tenant tables | `trigger-notifies`, `security-definer-function` (trigger functions need no `EXECUTE`) |
//! | version | `server-version-below-floor` (warn) |
//! | tenant servers (`rls-check --strategy database`) | `database-connect-unplaced`: a database of the deployment that holds no tenant (the template, a leftover) the role can connect to |
//!
//! A tenant table is a table declared in `policies/tenancy.toml`, any table in the schema that
//! has a tenant column, or a table with a tenant column in any other schema the role can reach
//! (a copy of tenant data in `public` leaks as well); the registry (`accounts`) is not one: it
//! has no row-level security by design, and the `registry` family checks it instead. Tables
//! every tenant may read whole are declared with `[[global_table]]`; any other readable table
//! is refused.
//!
//! Privileges are read from the access control lists themselves (`aclexplode`): a grant to
//! the role, to a role it can become, or to PUBLIC. What an owner may do is reported once,
//! as ownership; what a superuser (or `pg_read_all_data`) may do, once, as the role finding.
//!
//! # One cause, one finding
//!
//! One broad `GRANT`, one role membership or one tenant table never set up for row-level
//! security breaks many rules at once. Findings are tagged with their cause, and a cause with
//! several findings is reported as one [`Finding`] naming it, with one fix for the whole of
//! it and each fault listed in [`Finding::consequences`].
//!
//! # Speed
//!
//! Each family is one set-based catalog query over all objects (about a dozen round trips in
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
mod cause;
mod constraints;
mod databases;
mod defaults;
mod error;
mod finding;
mod matviews;
mod options;
mod ownership;
mod policies;
mod privileges;
mod reach;
mod registry;
mod report;
mod roles;
mod search_path;
mod settings;
mod triggers;
mod unscoped;
mod version;
mod views_functions;

use sqlx::{Connection, PgConnection};

pub use databases::{DatabasesCheck, check_databases};
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

    /// The declared global tables of the guarded schema (none when it is not the
    /// declaration's schema, as for tenant tables).
    fn global_table_names(&self) -> Vec<String> {
        if !self.resolved.requires_declared_tables {
            return Vec::new();
        }
        self.resolved
            .declaration
            .global_tables()
            .iter()
            .map(|t| t.name.as_str().to_owned())
            .collect()
    }

    /// A query over [`catalog::tenant_tables!`] with its parameters `$1` to `$6` bound: the
    /// role, the schema, declared table names, their columns, every tenant column name, and
    /// the routing tables (the registry and its domains table). A family binds its own parameters from `$7` on.
    fn tenant_tables_query<O>(
        &self,
        sql: &'static str,
    ) -> sqlx::query::QueryAs<'static, sqlx::Postgres, O, sqlx::postgres::PgArguments>
    where
        O: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let (names, columns, tenant_columns, registry) = self.tenant_table_params();
        sqlx::query_as(sql)
            .bind(self.role_param().map(str::to_owned))
            .bind(self.schema().to_owned())
            .bind(names)
            .bind(columns)
            .bind(tenant_columns)
            .bind(registry)
    }

    /// The parameters `$3` to `$6` of [`catalog::tenant_tables!`]: declared table names, their
    /// columns, every tenant column name, and the routing tables (the registry and its
    /// domains table).
    fn tenant_table_params(&self) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>) {
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
            std::iter::once(&decl.registry().table)
                .chain(decl.registry().domains.iter().map(|d| &d.table))
                .map(|t| t.as_str().to_owned())
                .collect(),
        )
    }
}

/// Runs every check on `conn`, inspecting the connection's own role (or
/// [`GuardOptions::role`]), and returns the report. Changes nothing: the queries run in a
/// read-only transaction (a savepoint when `conn` is already in one), rolled back at the end.
///
/// # Errors
/// [`GuardError::MissingRole`] when the named role does not exist, [`GuardError::MissingSchema`] when
/// the schema does not, [`GuardError::Declaration`] when a declared table or column is missing
/// or of the wrong type, or the database's error.
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
    // Expressions deparse (pg_get_expr) with every name qualified that is not in pg_catalog,
    // whatever the role's search_path: the policies are compared with the canonical text.
    // Undone with the rollback below, savepoint included.
    sqlx::query("SET LOCAL search_path = pg_catalog")
        .execute(&mut *tx)
        .await?;
    let session =
        Session::read(&mut tx, options.inspected_role(), resolved.schema.as_str()).await?;
    if resolved.requires_declared_tables {
        if options.is_tenant_database() {
            crate::policy::verify_tenant_tables(&mut tx, &resolved.declaration).await??;
        } else {
            crate::policy::verify(&mut tx, &resolved.declaration).await??;
        }
    }
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
    findings.extend(matviews::check(&mut tx, &ctx).await?);
    findings.extend(defaults::check(&mut tx, &ctx).await?);
    findings.extend(settings::check(&mut tx, &ctx).await?);
    findings.extend(search_path::check(&mut tx, &ctx).await?);
    findings.extend(constraints::check(&mut tx, &ctx).await?);
    findings.extend(unscoped::check(&mut tx, &ctx).await?);
    findings.extend(triggers::check(&mut tx, &ctx).await?);
    findings.extend(version::check(&ctx));
    tx.rollback().await?;
    let findings = cause::group(findings);
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

/// Refuses a login that row-level security does not apply to (`SUPERUSER`, `BYPASSRLS`): what
/// the deploy-role writer checks, since its rows must still pass each tenant's policy.
pub(crate) async fn enforce_writer(conn: &mut PgConnection) -> Result<()> {
    let findings = roles::bypasses(conn).await?;
    if findings.is_empty() {
        return Ok(());
    }
    Err(GuardError::Refused { findings })
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
