//! Whether a database already holds this version's functions (the signed context's and the
//! release check's, with their grants), so that a migration with nothing to change writes
//! nothing.
//!
//! `CREATE OR REPLACE FUNCTION`, `GRANT` and `REVOKE` write a new catalog row every time,
//! even when nothing changes. Run before every clone of a tenant database's template, they
//! grew the template by two pages a clone (every later tenant database copies the dead rows:
//! ~40 MB a database after 1,700 of them), and a rerun of `rls-migrate` over thousands of
//! tenant databases rewrote every one. So the installation is marked, in the comment of the
//! `rls_tenancy` schema, with a fingerprint of what it installs (the scripts, the runtime
//! role, the tenant context) and a digest of what the catalogs then hold (each function's
//! definition, owner, settings and grants; the two schemas' and the secret tables' owners and
//! grants); it is skipped while both still match. A function replaced, a grant revoked or the
//! runtime role changed by hand changes the digest, and the next run installs everything
//! again.

use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, PgConnection};

use super::{MigrateError, MigrateOptions};
use crate::db::{RELEASE_CHECK_SQL, settings_functions};
use crate::policy::{SIGNED_CONTEXT_SQL, TenantContextMode};

/// The digest of the catalog rows the installation is made of, as one SQL expression.
const LIVE_DIGEST: &str = "(SELECT pg_catalog.md5(coalesce(pg_catalog.string_agg(part, '|' ORDER BY part), ''))
  FROM (SELECT 'n ' || n.nspname || ' ' || n.nspowner::regrole || ' ' || coalesce(n.nspacl::text, '') AS part
          FROM pg_catalog.pg_namespace n
         WHERE n.nspname IN ('rls_tenancy', 'rls_tenancy_secret')
        UNION ALL
        SELECT 'f ' || p.oid::regprocedure || ' ' || p.prorettype::regtype || ' ' || p.proowner::regrole
               || ' ' || coalesce(p.proacl::text, '') || ' ' || p.prosecdef || p.provolatile::text
               || p.proisstrict || p.prolang || ' ' || coalesce(pg_catalog.array_to_string(p.proconfig, ','), '')
               || ' ' || pg_catalog.md5(p.prosrc) || ' ' || coalesce(pg_catalog.md5(pg_catalog.pg_get_function_sqlbody(p.oid)), '')
               || ' ' || coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '')
          FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname IN ('rls_tenancy', 'rls_tenancy_secret')
        UNION ALL
        SELECT 'r ' || c.oid::regclass || ' ' || c.relkind::text || ' ' || c.relowner::regrole || ' '
               || coalesce(c.relacl::text, '') || ' ' || c.relrowsecurity || c.relforcerowsecurity
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname IN ('rls_tenancy', 'rls_tenancy_secret') AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        UNION ALL
        SELECT 'a ' || a.attrelid::regclass || '.' || a.attname || ' ' || a.atttypid::regtype || ' '
               || a.attgenerated::text || ' ' || coalesce(a.attacl::text, '')
          FROM pg_catalog.pg_attribute a
          JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'rls_tenancy_secret' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped) parts)";

/// The installation a migration run would make, and whether the database holds it already.
pub(super) struct InstalledFunctions {
    fingerprint: String,
    current: bool,
}

impl InstalledFunctions {
    /// Reads the mark of the `rls_tenancy` schema against what `options` would install: one
    /// round trip.
    pub(super) async fn read(
        conn: &mut PgConnection,
        options: &MigrateOptions,
    ) -> Result<Self, MigrateError> {
        let fingerprint = fingerprint(options);
        let current: bool = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT coalesce(pg_catalog.obj_description(pg_catalog.to_regnamespace('rls_tenancy'), 'pg_namespace')
                             = $1 || ' ' || {LIVE_DIGEST}, false)"
        )))
        .bind(&fingerprint)
        .fetch_one(&mut *conn)
        .await?;
        Ok(Self {
            fingerprint,
            current,
        })
    }

    /// Whether the database holds exactly what this run would install.
    pub(super) fn current(&self) -> bool {
        self.current
    }

    /// Marks what was just installed (the deploy role owns the schema). Nothing to do when
    /// the database was current.
    pub(super) async fn mark(&self, conn: &mut PgConnection) -> Result<(), MigrateError> {
        if self.current {
            return Ok(());
        }
        // The fingerprint is hexadecimal, the digest md5's: the literal needs no quoting.
        sqlx::raw_sql(AssertSqlSafe(format!(
            "DO $mark$ BEGIN
               EXECUTE pg_catalog.format('COMMENT ON SCHEMA rls_tenancy IS %L', '{}' || ' ' || {LIVE_DIGEST});
             END $mark$",
            self.fingerprint
        )))
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// SHA-256 of everything the installation depends on, in hexadecimal.
fn fingerprint(options: &MigrateOptions) -> String {
    let mut hash = Sha256::new();
    let signed = options.mode == TenantContextMode::Signed;
    for part in [
        if signed { "signed" } else { "plain" },
        if signed { SIGNED_CONTEXT_SQL } else { "" },
        RELEASE_CHECK_SQL,
        &settings_functions(),
        options.runtime_role.as_str(),
    ] {
        hash.update(part.len().to_le_bytes());
        hash.update(part.as_bytes());
    }
    hex::encode(hash.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DatabaseUrl;

    fn options(runtime: &str) -> Result<MigrateOptions, Box<dyn std::error::Error>> {
        let url: DatabaseUrl = "postgres://deploy@127.0.0.1/app".parse()?;
        Ok(MigrateOptions::new(url, runtime)?)
    }

    #[test]
    fn the_fingerprint_changes_with_the_runtime_role_and_the_context()
    -> Result<(), Box<dyn std::error::Error>> {
        let signed = fingerprint(&options("app_runtime")?);
        assert_eq!(signed.len(), 64);
        assert_eq!(signed, fingerprint(&options("app_runtime")?));
        assert_ne!(signed, fingerprint(&options("other_runtime")?));
        let plain = options("app_runtime")?.tenant_context(TenantContextMode::Plain);
        assert_ne!(signed, fingerprint(&plain));
        Ok(())
    }
}
