//! The database mode's migrations: a tenant database holds the declaration's schema with the
//! tenant migrations applied (recorded in that schema's `_rls_migrations`), the same forced
//! policies and the runtime role's grants on its tenant tables, and the signed tenant context
//! with the application's keys, as the control database has them.

use sqlx::PgConnection;
use sqlx::migrate::Migrator;

use super::{MigrateError, MigrateOptions, grants, policies, schemas, signed};
use crate::policy::{TenancyDeclaration, TenantContextMode, quote_literal};

type Result<T, E = MigrateError> = std::result::Result<T, E>;

/// What migrating one tenant database did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DatabaseChanges {
    /// Versions of the tenant migrations applied by this run.
    pub(crate) applied: Vec<i64>,
    /// Tables whose policy was (re)installed by this run.
    pub(crate) policies: Vec<String>,
    /// The id of the tenant key this run installed, if it was new.
    pub(crate) key_installed: Option<String>,
}

/// Brings the tenant database `conn` is connected to up to date, inside the caller's
/// transaction, as the deploy role in `options`: creates the declaration's schema if need
/// be, applies the tenant migrations it lacks (with `search_path` set to that schema,
/// transaction-locally), installs or updates the signed context and keys (or removes it for
/// the plain context), installs the policies on `decl`'s tenant tables, grants the runtime
/// role DML on them and nothing else, and takes `TEMP`/`CREATE` back from `PUBLIC`.
///
/// # Errors
/// [`MigrateError::Migration`] when a migration fails or an applied one was changed since;
/// [`MigrateError::NoTenantKey`] under the signed context with no key installed or given;
/// else the database's error. The caller rolls back.
pub(crate) async fn migrate_database(
    conn: &mut PgConnection,
    migrator: &Migrator,
    decl: &TenancyDeclaration,
    options: &MigrateOptions,
) -> Result<DatabaseChanges> {
    let schema = decl.schema();
    let path = (
        quote_literal("search_path"),
        quote_literal(&schema.to_string()),
    );
    let applied = schemas::apply_tenant_migrations(conn, migrator, schema, &path).await?;
    let key_installed = match options.mode {
        TenantContextMode::Signed => {
            signed::install(
                conn,
                options.tenant_key.as_ref(),
                options.retire_old_keys,
                &options.runtime_role,
            )
            .await?
            .installed
        }
        TenantContextMode::Plain => None,
    };
    let context = options.context(decl);
    let policies = policies::install_policies(conn, schema, decl, &context).await?;
    if options.mode == TenantContextMode::Plain {
        signed::uninstall(conn).await?;
    }
    grants::grant_tenant_tables(conn, schema, decl, &options.runtime_role).await?;
    grants::revoke_public_defaults(conn).await?;
    Ok(DatabaseChanges {
        applied,
        policies,
        key_installed,
    })
}
