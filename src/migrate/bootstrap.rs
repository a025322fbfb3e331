//! The one-time setup a DBA runs as a superuser: the database and its two roles.

use crate::policy::{Ident, quote_literal};

/// The roles and database of one installation, for [`bootstrap_sql`].
#[derive(Debug, Clone)]
pub struct Bootstrap<'a> {
    /// The database to create, owned by the deploy role.
    pub database: &'a Ident,
    /// The role that runs migrations and owns the schema.
    pub deploy_role: &'a Ident,
    /// The role the application connects as: DML only, never owner, never bypasses RLS.
    pub runtime_role: &'a Ident,
    /// The deploy role's password.
    pub deploy_password: &'a str,
    /// The runtime role's password.
    pub runtime_password: &'a str,
}

/// The statements, one per element, that create the deploy role, the runtime role and the
/// database, as shown in the README. Passwords go in as quoted string literals.
///
/// ```
/// use rls_tenancy::{Bootstrap, Ident, bootstrap_sql};
/// let (db, deploy, runtime) = (
///     Ident::parse("database", "app")?,
///     Ident::parse("role", "app_deploy")?,
///     Ident::parse("role", "app_runtime")?,
/// );
/// let sql = bootstrap_sql(&Bootstrap {
///     database: &db, deploy_role: &deploy, runtime_role: &runtime,
///     deploy_password: "pw1", runtime_password: "it's",
/// });
/// assert!(sql[1].contains("PASSWORD 'it''s'"));
/// assert!(sql.iter().any(|s| s.contains("NOINHERIT NOBYPASSRLS")));
/// assert!(sql.iter().any(|s| s == "CREATE DATABASE \"app\" OWNER \"app_deploy\""));
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
pub fn bootstrap_sql(b: &Bootstrap<'_>) -> Vec<String> {
    vec![
        format!(
            "CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS",
            b.deploy_role,
            quote_literal(b.deploy_password)
        ),
        format!(
            "CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOBYPASSRLS",
            b.runtime_role,
            quote_literal(b.runtime_password)
        ),
        format!("CREATE DATABASE {} OWNER {}", b.database, b.deploy_role),
        format!("REVOKE ALL ON DATABASE {} FROM PUBLIC", b.database),
        format!(
            "GRANT CONNECT ON DATABASE {} TO {}",
            b.database, b.runtime_role
        ),
    ]
}
