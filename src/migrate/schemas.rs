//! The schema mode's migrations: the application's tenant migrations, applied to each
//! tenant's own schema, with the same policies and grants as the shared schema's tenant
//! tables.
//!
//! What each tenant schema has applied is recorded in one table of the shared schema
//! ([`records`]), so a rerun applies only what a schema is behind on. [`migrate_schema`]
//! migrates one schema; `rls-migrate` migrates many a few per transaction (`batch`).

use sqlx::migrate::{Migration, Migrator};
use sqlx::{AssertSqlSafe, PgConnection};

use super::records::{self, SchemaRecords};
use super::{MigrateError, grants, policies};
use crate::placement::{SchemaName, search_path};
use crate::policy::policy_sql;
use crate::policy::{Ident, TenancyDeclaration, TenantContext};

type Result<T, E = MigrateError> = std::result::Result<T, E>;

/// What migrating one tenant schema did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SchemaChanges {
    /// Versions applied by this run.
    pub(super) applied: Vec<i64>,
    /// Tables whose policy was (re)installed by this run.
    pub(super) policies: Vec<String>,
    /// Whether the runtime role's grants were changed (given or taken back) by this run.
    pub(super) grants: bool,
}

/// Brings `schema` up to date inside the caller's transaction: creates it if need be,
/// applies the tenant migrations it lacks with `search_path` set to it (transaction-locally),
/// records them in the shared schema, installs the policies on `decl`'s tenant tables in it
/// and grants the runtime role DML on them.
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
    let shared = decl.schema();
    let found = records::read(conn, shared, &[schema.as_str()])
        .await?
        .remove(schema.as_str())
        .unwrap_or_default();
    let pending = pending(migrator, &found.recorded)?;
    sqlx::raw_sql(AssertSqlSafe(prologue(decl, schema, &found)))
        .execute(&mut *conn)
        .await?;
    let mut applied = Vec::new();
    for migration in pending {
        let record = records::insert_sql(shared, schema, &[migration]);
        run_migration(conn, migration, &record).await?;
        applied.push(migration.version);
    }
    let policies = policies::install_policies(conn, schema.ident(), decl, context).await?;
    let grants = grants::grant_tenant_tables(conn, schema.ident(), decl, runtime).await?;
    Ok(SchemaChanges {
        applied,
        policies,
        grants,
    })
}

/// What a tenant schema's migration starts with: the schema created if `found` says it does
/// not exist (and the records a dropped namesake left forgotten), `search_path` pointed at it
/// and JIT switched off for the rest of the transaction (see [`schema_prologue`]).
pub(super) fn prologue(
    decl: &TenancyDeclaration,
    schema: &SchemaName,
    found: &SchemaRecords,
) -> String {
    let (path, value) = search_path(schema, decl.schema());
    let create = if found.exists {
        String::new()
    } else {
        format!("{};\n", records::create_schema_sql(decl.schema(), schema))
    };
    format!(
        "{create}SELECT set_config({path}, {value}, true);
         SELECT set_config('jit', 'off', true)"
    )
}

/// Creates `schema` if need be, points `search_path` at `path` for the rest of the
/// caller's transaction, and applies the tenant migrations `schema`'s own `_rls_migrations`
/// lacks, recording them there; returns their versions. A tenant database keeps its records
/// so, in its own schema.
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
        let record = format!(
            "INSERT INTO {schema}._rls_migrations (version, description, checksum) VALUES ({})",
            records::values(migration)
        );
        run_migration(conn, migration, &record).await?;
        applied.push(migration.version);
    }
    Ok(applied)
}

/// Runs `migration`, then `record` (the statement that records it), in one round trip; a
/// failure of either is reported as the migration's.
async fn run_migration(conn: &mut PgConnection, migration: &Migration, record: &str) -> Result<()> {
    // A migration may end in a comment: the record starts on a line of its own.
    let script = format!("{}\n;\n{record}", migration.sql.as_str());
    sqlx::raw_sql(AssertSqlSafe(script))
        .execute(&mut *conn)
        .await
        .map_err(|source| {
            MigrateError::Migration(sqlx::migrate::MigrateError::ExecuteMigration(
                source,
                migration.version,
            ))
        })?;
    Ok(())
}

/// A new tenant schema in one script, for the caller's transaction: the schema, the tenant
/// migrations with `search_path` set to it (transaction-locally), their records in the shared
/// schema, and the policies on `decl`'s tenant tables; what [`migrate_schema`] would do to a
/// schema that does not exist yet, in one round trip (the grants follow, as
/// [`grants::grant_tenant_tables`]). Fails on a schema that exists.
pub(crate) fn new_schema_script(
    migrator: &Migrator,
    decl: &TenancyDeclaration,
    schema: &SchemaName,
    context: &TenantContext,
) -> String {
    let migrations = pending(migrator, &[]).unwrap_or_default();
    let mut script = vec![prologue(decl, schema, &SchemaRecords::default())];
    script.extend(migrations.iter().map(|m| m.sql.as_str().to_owned()));
    script.push(records::insert_sql(decl.schema(), schema, &migrations));
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
pub(super) fn pending<'m>(
    migrator: &'m Migrator,
    recorded: &[(i64, Vec<u8>)],
) -> Result<Vec<&'m Migration>> {
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
