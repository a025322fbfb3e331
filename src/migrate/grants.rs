//! Grants the runtime role exactly the privileges it needs, and takes back the rest.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, PgConnection};

use super::MigrateError;

type Result<T, E = MigrateError> = std::result::Result<T, E>;
use crate::policy::{Ident, TenancyDeclaration};

/// Resets and grants the runtime role's privileges: nothing on any table of the schema but
/// what the declaration names (tenant tables: `SELECT`, `DELETE`, column `INSERT` and
/// `UPDATE`; global tables: `SELECT` only; the registry: `SELECT` on its routing columns, and
/// on its domains table's),
/// no default privileges; revokes `TEMP` on the database and `CREATE` on the `public` schema
/// from `PUBLIC` where the deploy role owns them.
pub(super) async fn grant_runtime(
    conn: &mut PgConnection,
    decl: &TenancyDeclaration,
    runtime: &Ident,
) -> Result<()> {
    let schema = decl.schema();
    // As for a tenant schema (`schemas::schema_prologue`): no JIT for the catalog reads.
    sqlx::query("SELECT set_config('jit', 'off', true)")
        .execute(&mut *conn)
        .await?;
    let mut sql = tenant_table_grants(conn, schema, decl, runtime).await?;
    for table in decl.global_tables() {
        let target = format!("{schema}.{}", table.name);
        sql.push(format!("GRANT SELECT ON TABLE {target} TO {runtime}"));
    }
    let registry = decl.registry();
    let registry_table = format!("{schema}.{}", registry.table);
    sql.push(format!(
        "GRANT SELECT ({}) ON TABLE {registry_table} TO {runtime}",
        column_list(&registry.readable_columns)
    ));
    if let Some(domains) = &registry.domains {
        sql.push(format!(
            "GRANT SELECT ({}, {}, {}) ON TABLE {schema}.{} TO {runtime}",
            domains.domain_column, domains.tenant_column, domains.primary_column, domains.table
        ));
    }
    // No default privileges for the runtime role: a table a later migration creates is
    // unreachable until it is declared. Installs made before this took them back here.
    sql.push(format!(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE ALL ON TABLES FROM {runtime}"
    ));
    sql.push(format!(
        "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} REVOKE ALL ON SEQUENCES FROM {runtime}"
    ));
    sql.push("ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC".to_owned());
    sqlx::raw_sql(AssertSqlSafe(sql.join(";\n")))
        .execute(&mut *conn)
        .await?;
    revoke_public_defaults(conn).await
}

/// Grants the runtime role DML on `decl`'s tenant tables in `schema` (the declaration's own,
/// or a tenant's schema in the schema mode), and `USAGE` on the schema and on those tables'
/// own sequences, leaving it nothing else in the schema; what is in place already is not
/// granted again. One catalog read, then at most one round trip: none when the privileges
/// are exactly right (a rerun, a migration that added no column), only the missing grants
/// when nothing is held that should not be (a new schema, an added column), else the full
/// reset of [`tenant_table_grants`]. Returns whether it changed anything. Callers switch JIT
/// off first (`schemas::prologue`).
pub(crate) async fn grant_tenant_tables(
    conn: &mut PgConnection,
    schema: &Ident,
    decl: &TenancyDeclaration,
    runtime: &Ident,
) -> Result<bool> {
    let state = GrantState::read(conn, schema, decl, runtime).await?;
    let sql = state.statements(schema, runtime);
    if !sql.is_empty() {
        sqlx::raw_sql(AssertSqlSafe(sql.join(";\n")))
            .execute(&mut *conn)
            .await?;
    }
    Ok(!sql.is_empty())
}

/// The statements [`grant_tenant_tables`] would send for each of `schemas` that exists (none
/// for a schema whose grants are exactly right), from one catalog read for all of them.
pub(super) async fn tenant_grant_statements(
    conn: &mut PgConnection,
    schemas: &[&Ident],
    decl: &TenancyDeclaration,
    runtime: &Ident,
) -> Result<HashMap<String, Vec<String>>> {
    let mut states = GrantState::read_many(conn, schemas, decl, runtime).await?;
    let mut statements = HashMap::new();
    for schema in schemas {
        if let Some(state) = states.remove(schema.as_str()) {
            statements.insert(
                schema.as_str().to_owned(),
                state.statements(schema, runtime),
            );
        }
    }
    Ok(statements)
}

/// The statements that reset the runtime role's privileges in `schema` and grant what
/// `decl`'s tenant tables need (see [`grant_tenant_tables`]).
async fn tenant_table_grants(
    conn: &mut PgConnection,
    schema: &Ident,
    decl: &TenancyDeclaration,
    runtime: &Ident,
) -> Result<Vec<String>> {
    Ok(GrantState::read(conn, schema, decl, runtime)
        .await?
        .full(schema, runtime))
}

/// The runtime role's privileges in one schema as the catalogs hold them, against what the
/// declaration's tenant tables need, read in one statement.
#[derive(Default)]
struct GrantState {
    /// Something is granted (to the runtime role or to `PUBLIC`) that the grants would not
    /// give: a table not declared, TRUNCATE, a column the role may not write, a grant option.
    stray: bool,
    /// `PUBLIC` holds a privilege on the schema.
    public_on_schema: bool,
    /// The runtime role may create objects in the schema (never given; taken back).
    creates_in_schema: bool,
    /// The runtime role may use the schema.
    usage: bool,
    /// The tenant tables' own sequences, quoted and schema-qualified.
    sequences: Vec<String>,
    /// Those the runtime role may not use yet.
    missing_sequences: Vec<String>,
    tables: Vec<TableGrants>,
}

/// One declared tenant table's privileges: what the runtime role needs, and what it lacks.
struct TableGrants {
    table: Ident,
    /// All columns but generated and identity columns, and `id`.
    insertable: Vec<Ident>,
    /// Those, less the tenant column.
    updatable: Vec<Ident>,
    /// The role may `SELECT` and `DELETE`.
    read_delete: bool,
    missing_insert: Vec<Ident>,
    missing_update: Vec<Ident>,
}

impl GrantState {
    /// `schema`'s state (a schema that does not exist holds nothing).
    async fn read(
        conn: &mut PgConnection,
        schema: &Ident,
        decl: &TenancyDeclaration,
        runtime: &Ident,
    ) -> Result<Self> {
        Ok(Self::read_many(conn, &[schema], decl, runtime)
            .await?
            .remove(schema.as_str())
            .unwrap_or_default())
    }

    /// The state of each of `schemas` that exists, by name, in one statement.
    async fn read_many(
        conn: &mut PgConnection,
        schemas: &[&Ident],
        decl: &TenancyDeclaration,
        runtime: &Ident,
    ) -> Result<HashMap<String, Self>> {
        let names: Vec<&str> = schemas.iter().map(|s| s.as_str()).collect();
        let (tables, columns): (Vec<&str>, Vec<&str>) = decl
            .tenant_tables()
            .iter()
            .map(|t| (t.name.as_str(), t.column.as_str()))
            .unzip();
        let rows: Vec<GrantStateRow> = sqlx::query_as(GRANT_STATE)
            .bind(&names)
            .bind(&tables)
            .bind(&columns)
            .bind(runtime.as_str())
            .fetch_all(&mut *conn)
            .await?;
        rows.into_iter()
            .map(|row| {
                let state = Self {
                    stray: row.stray,
                    public_on_schema: row.public_on_schema,
                    creates_in_schema: row.creates_in_schema,
                    usage: row.usage,
                    sequences: row.sequences,
                    missing_sequences: row.missing_sequences,
                    tables: row
                        .tables
                        .0
                        .into_iter()
                        .map(TableGrants::try_from)
                        .collect::<Result<_>>()?,
                };
                Ok((row.schema, state))
            })
            .collect()
    }

    /// What [`grant_tenant_tables`] sends: the full reset when something stray is held,
    /// else only what is missing.
    fn statements(&self, schema: &Ident, runtime: &Ident) -> Vec<String> {
        if self.stray {
            self.full(schema, runtime)
        } else {
            self.missing(schema, runtime)
        }
    }

    /// Every statement: the schema's tables and sequences closed, the declared ones opened,
    /// in the caller's transaction, so nothing declared is ever closed in between.
    fn full(&self, schema: &Ident, runtime: &Ident) -> Vec<String> {
        let mut sql = vec![
            format!("REVOKE ALL ON SCHEMA {schema} FROM PUBLIC"),
            format!("REVOKE CREATE ON SCHEMA {schema} FROM {runtime}"),
            format!("GRANT USAGE ON SCHEMA {schema} TO {runtime}"),
            // Closed until declared: every table, view and sequence of the schema starts from
            // nothing (a table a migration created without a declaration, or one an older
            // install opened by default privileges, stays closed).
            format!("REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM PUBLIC, {runtime}"),
            format!("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM PUBLIC, {runtime}"),
        ];
        for table in &self.tables {
            table.grants(
                schema,
                runtime,
                true,
                &table.insertable,
                &table.updatable,
                &mut sql,
            );
        }
        if !self.sequences.is_empty() {
            sql.push(format!(
                "GRANT USAGE ON SEQUENCE {} TO {runtime}",
                self.sequences.join(", ")
            ));
        }
        sql
    }

    /// Only the grants the role lacks; valid when nothing is [`GrantState::stray`].
    fn missing(&self, schema: &Ident, runtime: &Ident) -> Vec<String> {
        let mut sql = Vec::new();
        if self.public_on_schema {
            sql.push(format!("REVOKE ALL ON SCHEMA {schema} FROM PUBLIC"));
        }
        if self.creates_in_schema {
            sql.push(format!("REVOKE CREATE ON SCHEMA {schema} FROM {runtime}"));
        }
        if !self.usage {
            sql.push(format!("GRANT USAGE ON SCHEMA {schema} TO {runtime}"));
        }
        for table in &self.tables {
            table.grants(
                schema,
                runtime,
                !table.read_delete,
                &table.missing_insert,
                &table.missing_update,
                &mut sql,
            );
        }
        if !self.missing_sequences.is_empty() {
            sql.push(format!(
                "GRANT USAGE ON SEQUENCE {} TO {runtime}",
                self.missing_sequences.join(", ")
            ));
        }
        sql
    }
}

impl TableGrants {
    /// Pushes the grants of `SELECT, DELETE` (when `read_delete`), `INSERT` on `insert` and
    /// `UPDATE` on `update`.
    fn grants(
        &self,
        schema: &Ident,
        runtime: &Ident,
        read_delete: bool,
        insert: &[Ident],
        update: &[Ident],
        sql: &mut Vec<String>,
    ) {
        let target = format!("{schema}.{}", self.table);
        if read_delete {
            sql.push(format!(
                "GRANT SELECT, DELETE ON TABLE {target} TO {runtime}"
            ));
        }
        for (privilege, columns) in [("INSERT", insert), ("UPDATE", update)] {
            if !columns.is_empty() {
                sql.push(format!(
                    "GRANT {privilege} ({}) ON TABLE {target} TO {runtime}",
                    column_list(columns)
                ));
            }
        }
    }
}

/// [`GRANT_STATE`]'s row.
#[derive(sqlx::FromRow)]
struct GrantStateRow {
    schema: String,
    stray: bool,
    public_on_schema: bool,
    creates_in_schema: bool,
    usage: bool,
    sequences: Vec<String>,
    missing_sequences: Vec<String>,
    tables: sqlx::types::Json<Vec<TableGrantsRow>>,
}

/// A [`TableGrants`] as the statement returns it, in JSON.
#[derive(serde::Deserialize)]
struct TableGrantsRow {
    table: String,
    insertable: Vec<String>,
    updatable: Vec<String>,
    read_delete: bool,
    missing_insert: Vec<String>,
    missing_update: Vec<String>,
}

impl TryFrom<TableGrantsRow> for TableGrants {
    type Error = MigrateError;

    fn try_from(row: TableGrantsRow) -> Result<Self> {
        let idents = |names: Vec<String>| -> Result<Vec<Ident>> {
            names
                .iter()
                .map(|n| Ok(Ident::parse("column", n)?))
                .collect()
        };
        Ok(Self {
            table: Ident::parse("table", &row.table)?,
            insertable: idents(row.insertable)?,
            updatable: idents(row.updatable)?,
            read_delete: row.read_delete,
            missing_insert: idents(row.missing_insert)?,
            missing_update: idents(row.missing_update)?,
        })
    }
}

/// The runtime role's privileges in each schema of `$1` that exists, whose tenant tables are
/// `$2` with tenant columns `$3`, for role `$4`: one row per schema (schema, stray,
/// public_on_schema, creates_in_schema, usage, sequences, missing_sequences, tables as JSON). Privileges are
/// read from the ACLs themselves (`aclexplode`), not through role membership, as the REVOKEs
/// and GRANTs write them.
const GRANT_STATE: &str = "
WITH declared AS (
    SELECT d.relname, d.tenant_column FROM unnest($2::text[], $3::text[]) AS d(relname, tenant_column)
), runtime AS (
    SELECT oid FROM pg_catalog.pg_roles WHERE rolname = $4
), ns AS (
    SELECT oid, nspname::text AS name, nspacl FROM pg_catalog.pg_namespace WHERE nspname = ANY($1::text[])
), rels AS (
    -- The schemas' relations found through their dependency on their schema (pg_depend's
    -- index on refobjid): pg_class has no index on relnamespace, and scanning it for one
    -- schema cost 27 of this statement's 34 ms with 2,000 tenant schemas. Every relation but
    -- a TOAST table, an index or a composite type records that dependency (heap.c), and none
    -- of those can hold a grant.
    SELECT ns.oid AS ns, c.oid, c.relname, c.relkind, c.relacl, d.tenant_column,
           d.relname IS NOT NULL AS declared
      FROM ns
      JOIN pg_catalog.pg_depend dn ON dn.refclassid = 'pg_catalog.pg_namespace'::regclass
                                  AND dn.refobjid = ns.oid
                                  AND dn.classid = 'pg_catalog.pg_class'::regclass
      JOIN pg_catalog.pg_class c ON c.oid = dn.objid AND c.relnamespace = ns.oid
      LEFT JOIN declared d ON d.relname = c.relname AND c.relkind IN ('r', 'p')
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
), owned AS MATERIALIZED (
    -- The declared tables' own sequences, looked up once per table (MATERIALIZED, as the
    -- aggregates below: inlined, the planner ran each lookup once per other relation).
    SELECT dep.objid AS oid
      FROM rels t
      CROSS JOIN LATERAL (SELECT dep.objid FROM pg_catalog.pg_depend dep
                           WHERE dep.refclassid = 'pg_catalog.pg_class'::regclass
                             AND dep.refobjid = t.oid
                             AND dep.classid = 'pg_catalog.pg_class'::regclass
                             AND dep.deptype IN ('a', 'i')
                          OFFSET 0) dep
     WHERE t.declared
), sequences AS (
    SELECT s.ns, s.oid, format('%I.%I', ns.name, s.relname) AS name
      FROM owned o
      JOIN rels s ON s.oid = o.oid AND s.relkind = 'S'
      JOIN ns ON ns.oid = s.ns
), acl AS (
    SELECT r.ns, r.oid, x.grantee, x.privilege_type, x.is_grantable
      FROM rels r, aclexplode(r.relacl) x
     WHERE x.grantee = 0 OR x.grantee = (SELECT oid FROM runtime)
), attrs AS (
    -- Each relation's columns, by the index on attrelid (OFFSET 0 keeps the lookup per
    -- relation instead of a scan of every tenant's columns).
    SELECT r.ns, r.oid, r.declared, r.tenant_column, a.attnum, a.attname::text AS attname, a.attacl,
           a.attidentity = '' AND a.attgenerated = '' AND a.attname <> 'id' AS writable
      FROM rels r
      CROSS JOIN LATERAL (SELECT * FROM pg_catalog.pg_attribute a
                           WHERE a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
                          OFFSET 0) a
), cols AS (
    SELECT oid, attnum, attname, writable AS insertable,
           writable AND attname <> tenant_column AS updatable
      FROM attrs WHERE declared
 ), col_acl AS (
    SELECT a.ns, c.oid, c.attname, c.insertable, c.updatable, x.grantee, x.privilege_type, x.is_grantable
      FROM attrs a
      LEFT JOIN cols c ON c.oid = a.oid AND c.attnum = a.attnum,
           aclexplode(a.attacl) x
     WHERE x.grantee = 0 OR x.grantee = (SELECT oid FROM runtime)
), col_held AS MATERIALIZED (
    -- What the runtime role holds on each declared column. Everything below is joined and
    -- grouped, not looked up row by row: a statement for 25 schemas stays linear in them.
    SELECT oid, attname, bool_or(privilege_type = 'INSERT') AS ins, bool_or(privilege_type = 'UPDATE') AS upd
      FROM col_acl WHERE grantee <> 0 AND attname IS NOT NULL
     GROUP BY oid, attname
), table_cols AS MATERIALIZED (
    SELECT c.oid,
           array_agg(c.attname ORDER BY c.attnum) FILTER (WHERE c.insertable) AS insertable,
           array_agg(c.attname ORDER BY c.attnum) FILTER (WHERE c.updatable) AS updatable,
           array_agg(c.attname ORDER BY c.attnum)
               FILTER (WHERE c.insertable AND NOT coalesce(h.ins, false)) AS missing_insert,
           array_agg(c.attname ORDER BY c.attnum)
               FILTER (WHERE c.updatable AND NOT coalesce(h.upd, false)) AS missing_update
      FROM cols c
      LEFT JOIN col_held h ON h.oid = c.oid AND h.attname = c.attname
     GROUP BY c.oid
), table_acl AS (
    SELECT oid,
           count(DISTINCT privilege_type)
               FILTER (WHERE grantee <> 0 AND privilege_type IN ('SELECT', 'DELETE')) = 2 AS read_delete,
           bool_or(grantee <> 0 AND privilege_type = 'USAGE') AS usage
      FROM acl
     GROUP BY oid
), stray AS (
    SELECT acl.ns FROM acl JOIN rels r ON r.oid = acl.oid
     WHERE acl.grantee = 0 OR acl.is_grantable
        OR NOT ((r.declared AND acl.privilege_type IN ('SELECT', 'DELETE'))
                OR (acl.oid IN (SELECT oid FROM sequences) AND acl.privilege_type = 'USAGE'))
    UNION
    SELECT x.ns FROM col_acl x
     WHERE x.grantee = 0 OR x.is_grantable OR x.attname IS NULL
        OR NOT ((x.privilege_type = 'INSERT' AND x.insertable)
                OR (x.privilege_type = 'UPDATE' AND x.updatable))
), seqs AS (
    SELECT s.ns, array_agg(s.name ORDER BY s.name) AS sequences,
           coalesce(array_agg(s.name ORDER BY s.name) FILTER (WHERE NOT coalesce(t.usage, false)), '{}') AS missing
      FROM sequences s
      LEFT JOIN table_acl t ON t.oid = s.oid
     GROUP BY s.ns
), tables AS (
    SELECT r.ns, json_agg(json_build_object(
               'table', r.relname,
               'insertable', coalesce(c.insertable, '{}'),
               'updatable', coalesce(c.updatable, '{}'),
               'read_delete', coalesce(t.read_delete, false),
               'missing_insert', coalesce(c.missing_insert, '{}'),
               'missing_update', coalesce(c.missing_update, '{}')
           ) ORDER BY r.relname) AS tables
      FROM rels r
      LEFT JOIN table_cols c ON c.oid = r.oid
      LEFT JOIN table_acl t ON t.oid = r.oid
     WHERE r.declared
     GROUP BY r.ns
)
SELECT
    ns.name AS schema,
    ns.oid IN (SELECT ns FROM stray) AS stray,
    EXISTS (SELECT 1 FROM aclexplode(ns.nspacl) x WHERE x.grantee = 0) AS public_on_schema,
    EXISTS (SELECT 1 FROM aclexplode(ns.nspacl) x
             WHERE x.grantee = (SELECT oid FROM runtime) AND x.privilege_type = 'CREATE') AS creates_in_schema,
    EXISTS (SELECT 1 FROM aclexplode(ns.nspacl) x
             WHERE x.grantee = (SELECT oid FROM runtime) AND x.privilege_type = 'USAGE') AS usage,
    coalesce(seqs.sequences, '{}') AS sequences,
    coalesce(seqs.missing, '{}') AS missing_sequences,
    coalesce(tables.tables, '[]') AS tables
  FROM ns
  LEFT JOIN seqs ON seqs.ns = ns.oid
  LEFT JOIN tables ON tables.ns = ns.oid";

fn column_list(columns: &[Ident]) -> String {
    columns
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `TEMP` on the database and `CREATE` on `public` are granted to `PUBLIC` by default; take
/// them back when the deploy role owns (or is a member of the owner of) those objects and
/// `PUBLIC` still holds them (a `REVOKE` writes a catalog row even when it changes nothing).
pub(super) async fn revoke_public_defaults(conn: &mut PgConnection) -> Result<()> {
    let (owns_database, owns_public, public_on_database, public_creates): (bool, bool, bool, bool) =
        sqlx::query_as(
            "SELECT pg_has_role(current_user, d.datdba, 'MEMBER'),
                    coalesce((SELECT pg_has_role(current_user, n.nspowner, 'MEMBER')
                                FROM pg_catalog.pg_namespace n WHERE n.nspname = 'public'), false),
                    has_database_privilege('public', d.oid, 'TEMP')
                        OR has_database_privilege('public', d.oid, 'CREATE'),
                    to_regnamespace('public') IS NOT NULL
                        AND has_schema_privilege('public', 'public', 'CREATE')
               FROM pg_catalog.pg_database d WHERE d.datname = current_database()",
        )
        .fetch_one(&mut *conn)
        .await?;
    if owns_database && public_on_database {
        sqlx::raw_sql(
            "DO $$ BEGIN EXECUTE format('REVOKE TEMP, CREATE ON DATABASE %I FROM PUBLIC', current_database()); END $$",
        )
        .execute(&mut *conn)
        .await?;
    }
    if !owns_public {
        tracing::warn!("the deploy role does not own schema public; leaving its privileges alone");
    } else if public_creates {
        sqlx::raw_sql("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
