//! The schema mode's `search_path` must come from the tenant transaction only: preset for the
//! role or the database (`ALTER ROLE/DATABASE ... SET search_path`), it is what every
//! statement outside a tenant transaction resolves unqualified names with, and what a
//! connection starts with after a pooler hands it on. The tenant transaction sets its own,
//! transaction-locally; nothing else may.

use sqlx::PgConnection;

use super::Ctx;
use super::Result;
use super::catalog::{role_settings, with_closure};
use super::finding::{Finding, RuleId, quote_ident};
use crate::policy::Strategy;

#[derive(sqlx::FromRow)]
struct Preset {
    /// The database the setting is for, `None` for all.
    database: Option<String>,
    /// The role the setting is for, `None` for all.
    role: Option<String>,
    value: String,
}

pub(super) async fn check(conn: &mut PgConnection, ctx: &Ctx<'_>) -> Result<Vec<Finding>> {
    if ctx.resolved.declaration.strategy() != Strategy::Schema {
        return Ok(Vec::new());
    }
    let rows: Vec<Preset> = sqlx::query_as(with_closure!(
        "SELECT CASE WHEN s.setdatabase = 0 THEN NULL ELSE d.datname::text END AS database,
                CASE WHEN s.setrole = 0 THEN NULL ELSE r.rolname::text END AS role,
                substr(cfg, strpos(cfg, '=') + 1) AS value",
        role_settings!(),
        "
            AND lower(split_part(cfg, '=', 1)) = 'search_path'
          ORDER BY 1, 2"
    ))
    .bind(ctx.role_param())
    .fetch_all(&mut *conn)
    .await?;
    let why = "in the schema mode each tenant transaction sets search_path itself; a preset one decides where unqualified names go outside a tenant transaction";
    Ok(rows
        .iter()
        .map(|row| {
            let value = &row.value;
            let (object, whom, fix) = match (&row.role, &row.database) {
                (Some(r), Some(d)) => (
                    format!("role {r} in database {d}"),
                    format!("role {r} in database {d}"),
                    format!(
                        "ALTER ROLE {} IN DATABASE {} RESET search_path;",
                        quote_ident(r),
                        quote_ident(d)
                    ),
                ),
                (Some(r), None) => (
                    format!("role {r}"),
                    format!("role {r}"),
                    format!("ALTER ROLE {} RESET search_path;", quote_ident(r)),
                ),
                (None, Some(d)) => (
                    format!("database {d}"),
                    format!("database {d}"),
                    format!("ALTER DATABASE {} RESET search_path;", quote_ident(d)),
                ),
                (None, None) => (
                    "every role in every database".to_owned(),
                    "every role in every database".to_owned(),
                    "ALTER ROLE ALL RESET search_path;".to_owned(),
                ),
            };
            Finding::new(
                RuleId::SearchPathPreset,
                object,
                format!("search_path is preset to {value:?} for {whom}: {why}"),
                fix,
            )
        })
        .collect())
}
