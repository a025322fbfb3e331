//! The schema mode's migrations: the application's tenant migrations, applied to each
//! tenant's own schema, with the same policies and grants as the shared schema's tenant
//! tables.
//!
//! Each tenant schema records what it has applied in its own `_rls_migrations` table
//! (version, description, checksum), so a rerun applies only what a schema is behind on.

use sqlx::migrate::{Migration, Migrator};
use sqlx::{AssertSqlSafe, PgConnection};

use super::{MigrateError, grants, policies};
use crate::placement::{SchemaName, search_path};
use crate::policy::{Ident, TenancyDeclaration, TenantContext};
use crate::policy::{policy_sql, quote_literal};

type Result<T, E = MigrateError> = std::result::Result<T, E>;

/// What migrating one tenant schema did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SchemaChanges {
    /// Versions applied by this run.
    pub(super) applied: Vec<i64>,
    /// Tables whose policy was (re)installed by this run.
    pub(super) policies: Vec<String>,
}

/// Brings `schema` up to date inside the caller's transaction: creates it if need be,
/// applies the tenant migrations it lacks with `search_path` set to it (transaction-locally),
/// installs the policies on `decl`'s tenant tables in it and grants the runtime role DML on
/// them.
///
/// # Errors
/// [`MigrateError::Migration`] when a migration fails or an applied one was changed since;
/// [`MigrateError::Declaration`] when a declared tenant table is missing from the schema;
/// else the database's error. The caller rolls back.
pub(crate) async fn migrate_schema(
    conn: &mut PgConnection,
    migrator: &Migrator,
    decl: &TenancyDeclaration,
    schema: &SchemaName,
    context: &TenantContext,
    runtime: &Ident,
) -> Result<SchemaChanges> {
    let path = search_path(schema, decl.schema());
    let applied = apply_tenant_migrations(conn, migrator, schema.ident(), &path).await?;
    let policies = policies::install_policies(conn, schema.ident(), decl, context).await?;
    grants::grant_tenant_tables(conn, schema.ident(), decl, runtime).await?;
    Ok(SchemaChanges { applied, policies })
}

/// Creates `schema` if need be, points `search_path` at `path` for the rest of the
/// caller's transaction, and applies the tenant migrations `schema`'s `_rls_migrations`
/// lacks, recording them there; returns their versions.
///
/// # Errors
/// [`MigrateError::Migration`] when a migration fails or an applied one was changed since;
/// else the database's error. The caller rolls back.
pub(super) async fn apply_tenant_migrations(
    conn: &mut PgConnection,
    migrator: &Migrator,
    schema: &Ident,
    path: &(String, String),
) -> Result<Vec<i64>> {
    sqlx::raw_sql(AssertSqlSafe(schema_prologue(
        schema,
        path,
        "IF NOT EXISTS ",
    )))
    .execute(&mut *conn)
    .await?;
    let recorded: Vec<(i64, Vec<u8>)> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT version, checksum FROM {schema}._rls_migrations ORDER BY version"
    )))
    .fetch_all(&mut *conn)
    .await?;
    let mut applied = Vec::new();
    for migration in pending(migrator, &recorded)? {
        sqlx::raw_sql(migration.sql.clone())
            .execute(&mut *conn)
            .await
            .map_err(|source| {
                MigrateError::Migration(sqlx::migrate::MigrateError::ExecuteMigration(
                    source,
                    migration.version,
                ))
            })?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {schema}._rls_migrations (version, description, checksum) VALUES ($1, $2, $3)"
        )))
        .bind(migration.version)
        .bind(migration.description.as_ref())
        .bind(migration.checksum.as_ref())
        .execute(&mut *conn)
        .await?;
        applied.push(migration.version);
    }
    Ok(applied)
}

/// A new tenant schema in one script, for the caller's transaction: the schema, the tenant
/// migrations with `search_path` set to it (transaction-locally), their records in its
/// `_rls_migrations`, and the policies on `decl`'s tenant tables; what [`migrate_schema`]
/// would do to a schema that does not exist yet, in one round trip (the grants follow, as
/// [`grants::grant_tenant_tables`]). Fails on a schema that exists.
pub(crate) fn new_schema_script(
    migrator: &Migrator,
    decl: &TenancyDeclaration,
    schema: &SchemaName,
    context: &TenantContext,
) -> String {
    let path = search_path(schema, decl.schema());
    let mut script = vec![schema_prologue(schema.ident(), &path, "")];
    let mut records = Vec::new();
    for migration in migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
    {
        script.push(migration.sql.as_str().to_owned());
        records.push(format!(
            "({}, {}, '\\x{}'::bytea)",
            migration.version,
            quote_literal(&migration.description),
            hex::encode(&migration.checksum),
        ));
    }
    if !records.is_empty() {
        script.push(format!(
            "INSERT INTO {schema}._rls_migrations (version, description, checksum) VALUES {}",
            records.join(", ")
        ));
    }
    for table in decl.tenant_tables() {
        script.push(policy_sql(schema.ident(), table, context));
    }
    // A migration may end in a comment: each part ends on a line of its own.
    script.join("\n;\n")
}

/// Creates `schema` (`if_not_exists`: `""` or `"IF NOT EXISTS "`), sets `search_path` to
/// `path` (the setting and its value, as literals) for the rest of the transaction, switches
/// JIT off for the rest of the transaction (the catalog reads that follow, the grants' above
/// all, are small, but with thousands of schemas their plans cost enough to be JIT-compiled:
/// 5.7 s of compiling for a 38 ms read, measured at 1,200 schemas) and creates the schema's
/// migration records table.
fn schema_prologue(
    schema: &Ident,
    (path, value): &(String, String),
    if_not_exists: &str,
) -> String {
    format!(
        "CREATE SCHEMA {if_not_exists}{schema};
         SELECT set_config({path}, {value}, true);
         SELECT set_config('jit', 'off', true);
         CREATE TABLE {if_not_exists}{schema}._rls_migrations (
             version      bigint PRIMARY KEY,
             description  text NOT NULL,
             checksum     bytea NOT NULL,
             installed_on timestamptz NOT NULL DEFAULT now()
         )"
    )
}

/// The up-migrations of `migrator` that `recorded` lacks, in order; an applied migration
/// whose file changed since is refused.
fn pending<'m>(migrator: &'m Migrator, recorded: &[(i64, Vec<u8>)]) -> Result<Vec<&'m Migration>> {
    let mut pending = Vec::new();
    for migration in migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
    {
        match recorded
            .iter()
            .find(|(version, _)| *version == migration.version)
        {
            Some((_, checksum)) if *checksum != *migration.checksum => {
                return Err(sqlx::migrate::MigrateError::VersionMismatch(migration.version).into());
            }
            Some(_) => {}
            None => pending.push(migration),
        }
    }
    Ok(pending)
}
