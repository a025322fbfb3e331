//! The tenant variable must be unset outside a tenant transaction: preset for the role or the
//! database (`ALTER ROLE/DATABASE ... SET`), or by the server's configuration or the client,
//! every statement outside a tenant transaction would see that tenant instead of none.

use sqlx::PgConnection;

use super::Ctx;
use super::Result;
use super::catalog::{role_settings, with_closure};
use super::finding::{Finding, RuleId, quote_ident};

#[derive(sqlx::FromRow)]
struct Preset {
    /// `catalog` (`pg_db_role_setting`) or `session` (the value this session started with).
    origin: String,
    /// For `catalog`: the database the setting is for, `None` for all.
    database: Option<String>,
    /// For `catalog`: the role the setting is for, `None` for all.
    role: Option<String>,
    value: String,
    /// For `session`: where the value came from (`configuration file`, `client`, ...), when
    /// `pg_settings` knows.
    source: Option<String>,
}

pub(super) async fn check(conn: &mut PgConnection, ctx: &Ctx<'_>) -> Result<Vec<Finding>> {
    let rows: Vec<Preset> = sqlx::query_as(with_closure!(
        "SELECT 'catalog' AS origin,
                CASE WHEN s.setdatabase = 0 THEN NULL ELSE d.datname::text END AS database,
                CASE WHEN s.setrole = 0 THEN NULL ELSE r.rolname::text END AS role,
                substr(cfg, strpos(cfg, '=') + 1) AS value, NULL::text AS source",
        role_settings!(),
        "
            AND lower(split_part(cfg, '=', 1)) = lower($2)
            AND substr(cfg, strpos(cfg, '=') + 1) <> ''
         UNION ALL
         SELECT 'session', NULL, NULL, current_setting($2, true),
                (SELECT ps.source FROM pg_catalog.pg_settings ps WHERE ps.name = lower($2))
          WHERE $3 AND coalesce(current_setting($2, true), '') <> ''"
    ))
    .bind(ctx.role_param())
    .bind(ctx.options.variable().as_str())
    .bind(ctx.session.is_session_role)
    .fetch_all(&mut *conn)
    .await?;
    let variable = ctx.options.variable().as_str();
    let role = ctx.role();
    let why =
        "statements outside a tenant transaction would see that tenant's rows instead of none";
    let in_catalog = rows.iter().any(|r| r.origin == "catalog");
    Ok(rows
        .iter()
        .filter(|row| row.origin == "catalog" || !in_catalog)
        .map(|row| {
            let value = &row.value;
            match (row.origin.as_str(), &row.role, &row.database) {
                ("catalog", Some(r), Some(d)) => Finding::new(
                    RuleId::TenantVariablePreset,
                    format!("role {r} in database {d}"),
                    format!("{variable} is preset to {value:?} for role {r} in database {d}: {why}"),
                    format!("ALTER ROLE {} IN DATABASE {} RESET {variable};", quote_ident(r), quote_ident(d)),
                ),
                ("catalog", Some(r), None) => Finding::new(
                    RuleId::TenantVariablePreset,
                    format!("role {r}"),
                    format!("{variable} is preset to {value:?} for role {r}: {why}"),
                    format!("ALTER ROLE {} RESET {variable};", quote_ident(r)),
                ),
                ("catalog", None, Some(d)) => Finding::new(
                    RuleId::TenantVariablePreset,
                    format!("database {d}"),
                    format!("{variable} is preset to {value:?} for database {d}: {why}"),
                    format!("ALTER DATABASE {} RESET {variable};", quote_ident(d)),
                ),
                ("catalog", None, None) => Finding::new(
                    RuleId::TenantVariablePreset,
                    "every role in every database".to_owned(),
                    format!("{variable} is preset to {value:?} for every role in every database: {why}"),
                    format!("ALTER ROLE ALL RESET {variable};"),
                ),
                _ => {
                    // Custom settings are placeholders, which pg_settings does not list.
                    let source = row.source.as_deref().map_or_else(
                        || "the client's connection options (PGOPTIONS, options=-c) or the server's configuration (postgresql.conf, ALTER SYSTEM)".to_owned(),
                        |source| format!("{source} settings"),
                    );
                    Finding::new(
                        RuleId::TenantVariablePreset,
                        format!("session of role {role}"),
                        format!("{variable} is {value:?} when a session of role {role} starts, preset by {source}: {why}"),
                        format!(
                            "-- remove {variable} from the connection's options and the server's configuration; for ALTER SYSTEM: ALTER SYSTEM RESET {variable};"
                        ),
                    )
                }
            }
        })
        .collect())
}
