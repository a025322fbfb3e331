//! The signed tenant context's database side: `policies/signed_context.sql`, the entry the
//! deploy role makes without the key file, and whether a database has it installed.

use sqlx::{PgConnection, Row};

use super::{TenantContext, quote_literal};
use crate::tenant::TenantId;

/// The schemas, key tables and functions of the signed tenant context, compiled in from
/// `policies/signed_context.sql`. Idempotent.
#[cfg(feature = "migrate")]
pub(crate) const SIGNED_CONTEXT_SQL: &str = include_str!("../../policies/signed_context.sql");

/// The `BEGIN` message's call that enters `id`'s signed context as the deploy role, which can
/// read the installed keys and so signs in the database with the newest one (seeding and
/// fixtures need no key file). The runtime role cannot read the keys: for it this fails.
pub(crate) fn owner_signed_entry(context: &TenantContext, id: TenantId) -> String {
    let variable = quote_literal(context.variable().as_str());
    let tenant = quote_literal(&id.to_string());
    let nonce: i64 = rand::random();
    format!(
        "(SELECT rls_tenancy.enter({variable}, {tenant}, k.key_id, {nonce}, k.issued_ms, \
         encode(rls_tenancy_secret.hmac(k.inner_block, k.outer_block, \
         concat_ws('|', 'v1', {variable}, {tenant}, {nonce}, k.issued_ms)), 'hex')) \
         FROM (SELECT key_id, inner_block, outer_block, \
         (extract(epoch FROM statement_timestamp()) * 1000)::bigint AS issued_ms \
         FROM rls_tenancy_secret.tenant_keys ORDER BY installed_at DESC, key_id LIMIT 1) k)"
    )
}

/// Whether the database has the signed tenant context (`rls_tenancy.tenant(text)`), read
/// from the catalogs, which every role may read, in one simple-query message: safe behind a
/// transaction-mode pooler outside a transaction (an extended-protocol statement's parse
/// and execution are two messages, which such a pooler may send to two server connections).
pub(crate) async fn signed_context_installed(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::raw_sql(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
                          JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                         WHERE n.nspname = 'rls_tenancy' AND p.proname = 'tenant')",
    )
    .fetch_one(conn)
    .await?
    .try_get(0)
}
