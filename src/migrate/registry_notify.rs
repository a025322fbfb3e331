//! The registry's change notice: a trigger on the registry table that sends the slugs of
//! changed rows on [`REGISTRY_CHANNEL`], so that every process's
//! [`TenantRegistry`](crate::TenantRegistry) drops them from its cache at once (a suspended,
//! deleted or renamed tenant stops resolving within a second, not after the cache's TTL).

use sqlx::{AssertSqlSafe, PgConnection};

use super::MigrateError;
use crate::policy::{Ident, TenancyDeclaration};
use crate::resolve::REGISTRY_CHANNEL;

/// Installs (or replaces: idempotent) the notify function and trigger on the registry.
/// The function runs as whoever changes the registry (not `SECURITY DEFINER`) and nobody
/// else may call it; the payload is a slug, routing data every process may know.
pub(super) async fn install_registry_notify(
    conn: &mut PgConnection,
    decl: &TenancyDeclaration,
) -> Result<(), MigrateError> {
    let schema = decl.schema();
    let registry = decl.registry();
    let (table, slug) = (&registry.table, &registry.slug_column);
    let function = format!("{schema}.rls_registry_notify");
    let sql = format!(
        "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    PERFORM pg_notify('{REGISTRY_CHANNEL}', OLD.{slug}::text);
  END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN
    PERFORM pg_notify('{REGISTRY_CHANNEL}', NEW.{slug}::text);
  END IF;
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION {function}() FROM PUBLIC;
CREATE OR REPLACE TRIGGER rls_registry_notify
  AFTER INSERT OR UPDATE OR DELETE ON {schema}.{table}
  FOR EACH ROW EXECUTE FUNCTION {function}();"
    );
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await?;
    if let Some(domains) = &registry.domains {
        install_domains_notify(conn, decl, &domains.table, &domains.domain_column).await?;
    }
    Ok(())
}

/// The domains table's trigger: it notifies the changed domain, which every listener takes
/// as "forget every domain" (a domain is never a slug's shape alone: see the listener).
async fn install_domains_notify(
    conn: &mut PgConnection,
    decl: &TenancyDeclaration,
    table: &Ident,
    domain: &Ident,
) -> Result<(), MigrateError> {
    let schema = decl.schema();
    let function = format!("{schema}.rls_domains_notify");
    let sql = format!(
        "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    PERFORM pg_notify('{REGISTRY_CHANNEL}', 'domain:' || OLD.{domain}::text);
  END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN
    PERFORM pg_notify('{REGISTRY_CHANNEL}', 'domain:' || NEW.{domain}::text);
  END IF;
  RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION {function}() FROM PUBLIC;
CREATE OR REPLACE TRIGGER rls_domains_notify
  AFTER INSERT OR UPDATE OR DELETE ON {schema}.{table}
  FOR EACH ROW EXECUTE FUNCTION {function}();"
    );
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await?;
    Ok(())
}
