//! The SQL every rule family shares, and what the guard learns about the session first.
//!
//! Every family is one set-based catalog query, never one query per object. Each starts with
//! [`with_closure!`]'s common table expressions, so `$1` is always the inspected role's name
//! (`NULL` for `current_user`).

use sqlx::PgConnection;

use super::options::ServerVersion;
use super::{GuardError, Result};

/// Prefixes a query with the shared common table expressions:
///
/// - `target`: the inspected role (`$1`, or `current_user` when `$1` is `NULL`);
/// - `closure (role, path)`: every role the target can become, at any depth, through
///   `pg_auth_members`, whatever INHERIT says (`SET ROLE` works either way), with the path;
/// - `reach (role, via, is_target)`: each of those once, by its shortest path, with the
///   names of the roles in between;
/// - `roles`: their oids; `user_schemas`: every schema but the system ones;
/// - `sees_all (yes)`: whether one of them is a superuser or `pg_read_all_data` /
///   `pg_write_all_data`, which reach every table: the role rules report that once, so the
///   families that look for readable tables skip what only it makes readable.
///
/// The query appended must continue the `WITH` list (start with `,`) or be a `SELECT`.
macro_rules! with_closure {
    ($($sql:expr),+ $(,)?) => {
        concat!(
            "WITH RECURSIVE target AS (
                SELECT r.oid FROM pg_catalog.pg_roles r
                 WHERE r.rolname = coalesce($1::text, current_user::text)
            ),
            closure (role, path) AS (
                SELECT t.oid, ARRAY[t.oid] FROM target t
                UNION ALL
                SELECT m.roleid, c.path || m.roleid
                  FROM closure c
                  JOIN pg_catalog.pg_auth_members m ON m.member = c.role
                 WHERE m.roleid <> ALL (c.path)
            ),
            reach AS (
                SELECT DISTINCT ON (c.role) c.role,
                       ARRAY(SELECT v.rolname::text
                               FROM unnest(c.path[2:cardinality(c.path) - 1])
                                    WITH ORDINALITY AS u(oid, i)
                               JOIN pg_catalog.pg_roles v ON v.oid = u.oid
                              ORDER BY u.i) AS via,
                       cardinality(c.path) = 1 AS is_target
                  FROM closure c
                 ORDER BY c.role, cardinality(c.path)
            ),
            roles AS (SELECT role FROM reach),
            sees_all AS (
                SELECT EXISTS (SELECT 1 FROM roles x JOIN pg_catalog.pg_roles r ON r.oid = x.role
                                WHERE r.rolsuper
                                   OR r.rolname IN ('pg_read_all_data', 'pg_write_all_data')) AS yes
            ),
            user_schemas AS (
                SELECT n.oid, n.nspname, n.nspowner, n.nspacl
                  FROM pg_catalog.pg_namespace n
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
                   AND n.nspname NOT LIKE 'pg\\_toast%'
                   AND n.nspname NOT LIKE 'pg\\_temp\\_%'
            )
            ",
            $($sql),+
        )
    };
}
pub(super) use with_closure;

/// Continues [`with_closure!`]: the settings of `pg_db_role_setting` that apply to the
/// inspected role (or every role) in this database (or every database), one row per
/// `name=value` as `cfg`, with `d` the database and `r` the role (both NULL for "all").
macro_rules! role_settings {
    () => {
        "
           FROM pg_catalog.pg_db_role_setting s
           LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
           LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
           CROSS JOIN LATERAL unnest(s.setconfig) cfg
          WHERE (s.setdatabase = 0 OR d.datname = current_database())
            AND (s.setrole = 0 OR s.setrole IN (SELECT oid FROM target))"
    };
}
pub(super) use role_settings;

/// Continues [`with_closure!`] with `tenant_tables (oid, schema, name, column_name, attnum)`:
/// the tables of schema `$2` that are declared (names `$3`, columns `$4`, pairwise) or have a
/// tenant column (any of `$5`), less the routing tables `$6` (the registry and its domains
/// table); and the tables of every other schema
/// that have a tenant column and that the role holds a privilege on, since a copy of tenant
/// data there leaks just as well. `USAGE` on the schema is not required: a `security_invoker`
/// view in a schema the role can use reads the table without it.
macro_rules! tenant_tables {
    () => {
        ",
        declared (name, column_name) AS (SELECT * FROM unnest($3::text[], $4::text[])),
        tenant_tables AS (
            SELECT c.oid, n.nspname::text AS schema, c.relname::text AS name,
                   c.relrowsecurity, c.relforcerowsecurity,
                   d.name IS NOT NULL AS declared,
                   tc.attname::text AS column_name, tc.attnum
              FROM pg_catalog.pg_class c
              JOIN user_schemas n ON n.oid = c.relnamespace
              LEFT JOIN declared d ON n.nspname = $2 AND d.name = c.relname::text
              LEFT JOIN LATERAL (
                    SELECT a.attname, a.attnum FROM pg_catalog.pg_attribute a
                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                       AND (a.attname::text = d.column_name
                            OR (d.name IS NULL AND a.attname::text = ANY ($5::text[])))
                     ORDER BY a.attnum LIMIT 1
              ) tc ON true
             WHERE c.relkind IN ('r', 'p')
               AND NOT (n.nspname = $2 AND c.relname::text = ANY ($6::text[]))
               AND (d.name IS NOT NULL OR tc.attname IS NOT NULL)
               AND (n.nspname = $2
                    OR (NOT (SELECT yes FROM sees_all)
                        AND EXISTS (SELECT 1 FROM roles r
                                     WHERE has_any_column_privilege(r.role, c.oid,
                                               'SELECT, INSERT, UPDATE, REFERENCES')
                                        OR has_table_privilege(r.role, c.oid,
                                               'DELETE, TRUNCATE, TRIGGER'))))
        )
        "
    };
}
pub(super) use tenant_tables;

/// Who is inspected, where, on what server: read once before the rule families run.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The inspected role's name.
    pub(crate) role: String,
    /// Whether the inspected role is the session's own `current_user`.
    pub(crate) is_session_role: bool,
    /// `current_database()`.
    pub(crate) database: String,
    /// `server_version` as the server prints it.
    pub(crate) server_version: String,
    /// `server_version_num`, parsed.
    pub(crate) version: ServerVersion,
}

impl Session {
    /// Reads the session facts; fails when the named role or the schema does not exist.
    pub(crate) async fn read(
        conn: &mut PgConnection,
        role: Option<&str>,
        schema: &str,
    ) -> Result<Self> {
        let row: Option<(String, bool, String, String, i32, bool)> = sqlx::query_as(
            "SELECT r.rolname::text, r.rolname = current_user, current_database()::text,
                    current_setting('server_version'),
                    current_setting('server_version_num')::int,
                    EXISTS (SELECT 1 FROM pg_catalog.pg_namespace n WHERE n.nspname = $2)
               FROM pg_catalog.pg_roles r
              WHERE r.rolname = coalesce($1::text, current_user::text)",
        )
        .bind(role)
        .bind(schema)
        .fetch_optional(&mut *conn)
        .await?;
        let Some((name, is_session_role, database, server_version, num, schema_exists)) = row
        else {
            return Err(GuardError::MissingRole {
                role: role.unwrap_or("current_user").to_owned(),
            });
        };
        if !schema_exists {
            return Err(GuardError::MissingSchema {
                schema: schema.to_owned(),
                database,
            });
        }
        Ok(Self {
            role: name,
            is_session_role,
            database,
            server_version,
            version: ServerVersion::from_version_num(u32::try_from(num).unwrap_or(0)),
        })
    }
}

/// How the inspected role reaches a role it can become, for messages and fixes.
#[derive(Debug, Clone)]
pub(crate) struct Membership<'a> {
    /// The inspected role.
    pub(crate) target: &'a str,
    /// The role it reaches (`None` for PUBLIC).
    pub(crate) role: Option<&'a str>,
    /// The roles in between, in order.
    pub(crate) via: &'a [String],
}

impl Membership<'_> {
    /// `role app_runtime`, `role mid (which app_runtime can become)`, or `PUBLIC`.
    pub(crate) fn holder(&self) -> String {
        match self.role {
            None => "PUBLIC".to_owned(),
            Some(role) if role == self.target => format!("role {role}"),
            Some(role) if self.via.is_empty() => {
                format!("role {role}, which {} is a member of,", self.target)
            }
            Some(role) => format!(
                "role {role}, which {} can become through {},",
                self.target,
                self.via.join(", ")
            ),
        }
    }

    /// The grantee to name in a `REVOKE ... FROM`, quoted, or `PUBLIC`.
    pub(crate) fn grantee_sql(&self) -> String {
        self.role
            .map_or_else(|| "PUBLIC".to_owned(), super::finding::quote_ident)
    }

    /// The membership the role came through, as a cause: `None` when it is the target itself
    /// or PUBLIC.
    pub(crate) fn cause(&self) -> Option<super::cause::Cause> {
        let role = self.role.filter(|r| *r != self.target)?;
        let first = self.via.first().map_or(role, String::as_str);
        Some(super::cause::Cause::membership(self.target, first))
    }

    /// The name to group grants by: the role that holds the grant, or `PUBLIC`.
    pub(crate) fn grantee_name(&self) -> &str {
        self.role.unwrap_or("PUBLIC")
    }

    /// The `REVOKE` that cuts the first link from the target towards `role`, if it is not the
    /// target itself.
    pub(crate) fn cut_membership_sql(&self) -> Option<String> {
        let role = self.role.filter(|r| *r != self.target)?;
        let first = self.via.first().map_or(role, String::as_str);
        Some(format!(
            "REVOKE {} FROM {};",
            super::finding::quote_ident(first),
            super::finding::quote_ident(self.target)
        ))
    }
}
