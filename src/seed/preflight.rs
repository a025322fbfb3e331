//! Checks made before anything is written: the schema is migrated with RLS forced, the role
//! is the deploy role (not one that bypasses RLS), and which seeded accounts already exist.

use std::collections::BTreeSet;

use sqlx::PgConnection;

use super::{Result, SeedError};
use crate::policy::Ident;

/// The registry and the tenant tables rls-seed writes, in the reference schema.
pub(super) const REGISTRY: &str = "app.accounts";
pub(super) const TENANT_TABLES: [&str; 4] =
    ["app.users", "app.projects", "app.tasks", "app.subtasks"];

/// Refuses a database that lacks a table, or whose tenant tables do not force RLS: seeding
/// must go through the policies, never around them.
pub(super) async fn check_migrated(conn: &mut PgConnection) -> Result<()> {
    for table in std::iter::once(REGISTRY).chain(TENANT_TABLES) {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&mut *conn)
            .await?;
        if !exists {
            return Err(SeedError::NotMigrated {
                what: format!("table {table}"),
            });
        }
    }
    for table in TENANT_TABLES {
        let forced: bool = sqlx::query_scalar(
            "SELECT c.relrowsecurity AND c.relforcerowsecurity
                    AND EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid)
               FROM pg_catalog.pg_class c
              WHERE c.oid = to_regclass($1)",
        )
        .bind(table)
        .fetch_one(&mut *conn)
        .await?;
        if !forced {
            return Err(SeedError::NotMigrated {
                what: format!("the forced row-level security policy on {table}"),
            });
        }
    }
    Ok(())
}

/// Refuses a superuser or `BYPASSRLS` role (the policies would not vet the rows) and a role
/// that cannot insert ids or advance the sequences (the runtime role, say).
pub(super) async fn check_role(conn: &mut PgConnection) -> Result<()> {
    let role = check_login(conn).await?;
    let unfit = |reason: String| SeedError::Role {
        role: role.clone(),
        reason,
    };
    for table in std::iter::once(REGISTRY).chain(TENANT_TABLES) {
        let (can_insert, can_reserve): (bool, bool) = sqlx::query_as(
            "SELECT has_column_privilege($1, 'id', 'INSERT'),
                    has_sequence_privilege(pg_get_serial_sequence($1, 'id'), 'USAGE, UPDATE')",
        )
        .bind(table)
        .fetch_one(&mut *conn)
        .await?;
        if !can_insert || !can_reserve {
            return Err(unfit(format!(
                "it may not insert ids into {table} or advance its id sequence"
            )));
        }
    }
    Ok(())
}

/// Refuses a superuser or `BYPASSRLS` login: row-level security would not vet its rows.
/// Returns the role's name.
pub(super) async fn check_login(conn: &mut PgConnection) -> Result<String> {
    let (role, bypasses): (String, bool) = sqlx::query_as(
        "SELECT rolname::text, rolsuper OR rolbypassrls
           FROM pg_catalog.pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut *conn)
    .await?;
    if bypasses {
        return Err(SeedError::Role {
            role,
            reason:
                "it is a superuser or has BYPASSRLS, so row-level security would not vet the rows"
                    .into(),
        });
    }
    Ok(role)
}

/// The indexes below `accounts` whose slug (`tenant-N`) already exists.
pub(super) async fn existing_indexes(
    conn: &mut PgConnection,
    accounts: u64,
) -> Result<BTreeSet<u64>> {
    let slugs: Vec<String> = sqlx::query_scalar(
        "SELECT slug FROM app.accounts WHERE slug ~ '^tenant-(0|[1-9][0-9]{0,18})$'",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(slugs
        .iter()
        .filter_map(|slug| slug.strip_prefix("tenant-")?.parse::<u64>().ok())
        .filter(|index| *index < accounts)
        .collect())
}

/// Under the schema strategy: refuses a database whose registry cannot name a tenant's schema
/// to the runtime role (`rls-migrate --strategy schema` grants that), a runtime role that does
/// not exist (each new schema's tables are granted to it), and a role that may not create
/// schemas.
pub(super) async fn check_schema_strategy(conn: &mut PgConnection, runtime: &Ident) -> Result<()> {
    let runtime_exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)")
            .bind(runtime.as_str())
            .fetch_one(&mut *conn)
            .await?;
    if !runtime_exists {
        return Err(SeedError::InvalidOption {
            option: "--runtime-role",
            reason: format!(
                "role {runtime} does not exist: name the role the application connects as (rls-migrate's --runtime-role)"
            ),
        });
    }
    let (has_column, runtime_reads, may_create): (bool, bool, bool) = sqlx::query_as(
        "SELECT a.attname IS NOT NULL,
                a.attname IS NOT NULL AND has_column_privilege($1, a.attrelid, a.attnum, 'SELECT'),
                has_database_privilege(current_database(), 'CREATE')
           FROM (SELECT 1) AS one
           LEFT JOIN pg_catalog.pg_attribute a
                  ON a.attrelid = to_regclass($2) AND a.attname = 'schema_name' AND NOT a.attisdropped",
    )
    .bind(runtime.as_str())
    .bind(REGISTRY)
    .fetch_one(&mut *conn)
    .await?;
    if !has_column || !runtime_reads {
        return Err(SeedError::NotMigratedForSchemas {
            what: match has_column {
                false => format!("{REGISTRY} has no schema_name column"),
                true => format!("role {runtime} may not read {REGISTRY}.schema_name"),
            },
        });
    }
    if !may_create {
        let role: String = sqlx::query_scalar("SELECT current_user::text")
            .fetch_one(&mut *conn)
            .await?;
        return Err(SeedError::Role {
            role,
            reason: "it may not create schemas in this database, and the schema strategy gives each account its own".into(),
        });
    }
    Ok(())
}
