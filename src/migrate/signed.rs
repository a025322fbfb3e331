//! Installs the signed tenant context (`policies/signed_context.sql`) and the application's
//! keys, retires old keys, or removes it all for the plain context.

use sqlx::{AssertSqlSafe, PgConnection};

use super::MigrateError;
use crate::policy::{Ident, SIGNED_CONTEXT_SQL, TenantKey};

type Result<T, E = MigrateError> = std::result::Result<T, E>;

/// What installing the signed context changed, by key id (never the key).
#[derive(Debug, Default)]
pub(super) struct KeyChanges {
    /// The id of the key installed by this run, if it was new.
    pub(super) installed: Option<String>,
    /// The ids of the keys removed by this run.
    pub(super) retired: Vec<String>,
    /// The ids of the keys the database accepts after this run.
    pub(super) accepted: Vec<String>,
}

/// Creates or replaces the signed context's schemas, tables and functions and lets `runtime`
/// call the two functions, unless `installed` (the database holds this version already, see
/// `installed`); installs `key` when the database does not have it yet (other keys stay
/// accepted: a rotation); with `retire_others`, removes every key but `key`.
///
/// # Errors
/// [`MigrateError::NoTenantKey`] when no key would be accepted afterwards, or when asked to
/// retire keys without naming the one to keep.
pub(super) async fn install(
    conn: &mut PgConnection,
    key: Option<&TenantKey>,
    retire_others: bool,
    runtime: &Ident,
    installed: bool,
) -> Result<KeyChanges> {
    if !installed {
        sqlx::raw_sql(SIGNED_CONTEXT_SQL)
            .execute(&mut *conn)
            .await?;
    }
    let token_key = TenantKey::generate();
    let (inner, outer) = token_key.blocks();
    sqlx::query(
        "INSERT INTO rls_tenancy_secret.token_key (inner_block, outer_block) VALUES ($1, $2)
         ON CONFLICT (only_row) DO NOTHING",
    )
    .bind(&inner[..])
    .bind(&outer[..])
    .execute(&mut *conn)
    .await?;
    let mut changes = KeyChanges::default();
    if let Some(key) = key {
        let (inner, outer) = key.blocks();
        let inserted = sqlx::query(
            "INSERT INTO rls_tenancy_secret.tenant_keys (key_id, inner_block, outer_block)
             VALUES ($1, $2, $3) ON CONFLICT (key_id) DO NOTHING",
        )
        .bind(key.id())
        .bind(&inner[..])
        .bind(&outer[..])
        .execute(&mut *conn)
        .await?;
        if inserted.rows_affected() == 1 {
            tracing::info!(key_id = %key.id(), "installed a tenant key");
            changes.installed = Some(key.id());
        }
    }
    if retire_others {
        let keep = key.ok_or(MigrateError::NoTenantKey {
            reason: "--retire-old-keys needs --tenant-key-file with the key to keep",
        })?;
        changes.retired = sqlx::query_scalar(
            "DELETE FROM rls_tenancy_secret.tenant_keys WHERE key_id <> $1 RETURNING key_id",
        )
        .bind(keep.id())
        .fetch_all(&mut *conn)
        .await?;
        changes.retired.sort();
        for id in &changes.retired {
            tracing::info!(key_id = %id, "retired a tenant key");
        }
    }
    changes.accepted =
        sqlx::query_scalar("SELECT key_id FROM rls_tenancy_secret.tenant_keys ORDER BY key_id")
            .fetch_all(&mut *conn)
            .await?;
    if changes.accepted.is_empty() {
        return Err(MigrateError::NoTenantKey {
            reason: "the signed tenant context needs a key and the database has none: pass --tenant-key-file PATH (created there when absent), or --tenant-context plain",
        });
    }
    if !installed {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "GRANT USAGE ON SCHEMA rls_tenancy TO {runtime};
             GRANT EXECUTE ON FUNCTION rls_tenancy.enter(text, text, text, bigint, bigint, text), rls_tenancy.tenant(text) TO {runtime}"
        )))
        .execute(&mut *conn)
        .await?;
    }
    Ok(changes)
}

/// Drops the signed context, keys and all, once the policies no longer call it: the plain
/// context. The `rls_tenancy` schema stays, with the release check every context uses.
/// Returns whether there was one.
pub(super) async fn uninstall(conn: &mut PgConnection) -> Result<bool> {
    let present: bool = sqlx::query_scalar(
        "SELECT to_regnamespace('rls_tenancy_secret') IS NOT NULL
             OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
                          JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                         WHERE n.nspname = 'rls_tenancy' AND p.proname IN ('enter', 'tenant'))",
    )
    .fetch_one(&mut *conn)
    .await?;
    if present {
        sqlx::raw_sql(
            "DROP FUNCTION IF EXISTS rls_tenancy.enter(text, text, text, bigint, bigint, text), rls_tenancy.tenant(text);
             DROP SCHEMA IF EXISTS rls_tenancy_secret CASCADE",
        )
        .execute(&mut *conn)
        .await?;
        tracing::info!("removed the signed tenant context");
    }
    Ok(present)
}

/// Gives a database cloned from a template a token key of its own (the template's is every
/// clone's otherwise), so that the name of its secret setting is its own. Only for a
/// database no session has used yet: sessions fold the name into their plans. Nothing to do
/// without the signed context.
pub(crate) async fn renew_token_key(conn: &mut PgConnection) -> Result<()> {
    let signed: bool =
        sqlx::query_scalar("SELECT to_regclass('rls_tenancy_secret.token_key') IS NOT NULL")
            .fetch_one(&mut *conn)
            .await?;
    if !signed {
        return Ok(());
    }
    let token_key = TenantKey::generate();
    let (inner, outer) = token_key.blocks();
    sqlx::query("UPDATE rls_tenancy_secret.token_key SET inner_block = $1, outer_block = $2")
        .bind(&inner[..])
        .bind(&outer[..])
        .execute(&mut *conn)
        .await?;
    Ok(())
}
