//! Grants the runtime role exactly the privileges it needs, and takes back the rest.

use sqlx::{AssertSqlSafe, PgConnection};

use super::MigrateError;

type Result<T, E = MigrateError> = std::result::Result<T, E>;
use crate::policy::{Ident, TenancyDeclaration, TenantTable};

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
/// own sequences,
/// after closing every table and sequence of the schema; in one round trip.
pub(crate) async fn grant_tenant_tables(
    conn: &mut PgConnection,
    schema: &Ident,
    decl: &TenancyDeclaration,
    runtime: &Ident,
) -> Result<()> {
    let sql = tenant_table_grants(conn, schema, decl, runtime).await?;
    sqlx::raw_sql(AssertSqlSafe(sql.join(";\n")))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The statements of [`grant_tenant_tables`].
async fn tenant_table_grants(
    conn: &mut PgConnection,
    schema: &Ident,
    decl: &TenancyDeclaration,
    runtime: &Ident,
) -> Result<Vec<String>> {
    let mut sql = vec![
        format!("REVOKE ALL ON SCHEMA {schema} FROM PUBLIC"),
        format!("GRANT USAGE ON SCHEMA {schema} TO {runtime}"),
        // Closed until declared: every table, view and sequence of the schema starts from
        // nothing (a table a migration created without a declaration, or one an older
        // install opened by default privileges, stays closed); the declared ones are opened
        // below, in the same transaction, so nothing declared is ever closed in between.
        format!("REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM PUBLIC, {runtime}"),
        format!("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM PUBLIC, {runtime}"),
    ];
    for table in decl.tenant_tables() {
        let (insertable, updatable) = writable_columns(conn, schema, table).await?;
        let target = format!("{schema}.{}", table.name);
        sql.push(format!(
            "GRANT SELECT, DELETE ON TABLE {target} TO {runtime}"
        ));
        if !insertable.is_empty() {
            sql.push(format!(
                "GRANT INSERT ({}) ON TABLE {target} TO {runtime}",
                column_list(&insertable)
            ));
        }
        if !updatable.is_empty() {
            sql.push(format!(
                "GRANT UPDATE ({}) ON TABLE {target} TO {runtime}",
                column_list(&updatable)
            ));
        }
    }
    let sequences = declared_sequences(conn, schema, decl).await?;
    if !sequences.is_empty() {
        sql.push(format!(
            "GRANT USAGE ON SEQUENCE {} TO {runtime}",
            sequences.join(", ")
        ));
    }
    Ok(sql)
}

/// The sequences `decl`'s tenant tables in `schema` own (serial and identity columns),
/// quoted and schema-qualified: the only ones the runtime role may use. Another table's
/// sequence stays closed, so an undeclared table's ids cannot even be drawn.
async fn declared_sequences(
    conn: &mut PgConnection,
    schema: &Ident,
    decl: &TenancyDeclaration,
) -> Result<Vec<String>> {
    let tables: Vec<&str> = decl
        .tenant_tables()
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    Ok(sqlx::query_scalar(
        "SELECT format('%I.%I', sn.nspname, s.relname)
           FROM pg_catalog.pg_depend d
           JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
           JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
           JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
           JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
          WHERE d.classid = 'pg_catalog.pg_class'::regclass
            AND d.refclassid = 'pg_catalog.pg_class'::regclass
            AND d.deptype IN ('a', 'i')
            AND tn.nspname = $1 AND t.relname = ANY($2)
          ORDER BY 1",
    )
    .bind(schema.as_str())
    .bind(&tables)
    .fetch_all(&mut *conn)
    .await?)
}

/// Columns the runtime role may insert (all but generated and identity columns, and `id`)
/// and update (those, less the tenant column).
async fn writable_columns(
    conn: &mut PgConnection,
    schema: &Ident,
    table: &TenantTable,
) -> Result<(Vec<Ident>, Vec<Ident>)> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text
           FROM pg_catalog.pg_attribute a
           JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
           JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2
            AND a.attnum > 0 AND NOT a.attisdropped
            AND a.attidentity = '' AND a.attgenerated = ''
            AND a.attname <> 'id'
          ORDER BY a.attnum",
    )
    .bind(schema.as_str())
    .bind(table.name.as_str())
    .fetch_all(&mut *conn)
    .await?;
    let insertable = names
        .iter()
        .map(|n| Ident::parse("column", n))
        .collect::<Result<Vec<_>, _>>()?;
    let updatable = insertable
        .iter()
        .filter(|c| **c != table.column)
        .cloned()
        .collect();
    Ok((insertable, updatable))
}

fn column_list(columns: &[Ident]) -> String {
    columns
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `TEMP` on the database and `CREATE` on `public` are granted to `PUBLIC` by default; take
/// them back when the deploy role owns (or is a member of the owner of) those objects.
pub(super) async fn revoke_public_defaults(conn: &mut PgConnection) -> Result<()> {
    let (owns_database, owns_public): (bool, bool) = sqlx::query_as(
        "SELECT pg_has_role(current_user, d.datdba, 'MEMBER'),
                coalesce((SELECT pg_has_role(current_user, n.nspowner, 'MEMBER')
                            FROM pg_catalog.pg_namespace n WHERE n.nspname = 'public'), false)
           FROM pg_catalog.pg_database d WHERE d.datname = current_database()",
    )
    .fetch_one(&mut *conn)
    .await?;
    if owns_database {
        sqlx::raw_sql(
            "DO $$ BEGIN EXECUTE format('REVOKE TEMP, CREATE ON DATABASE %I FROM PUBLIC', current_database()); END $$",
        )
        .execute(&mut *conn)
        .await?;
    }
    if owns_public {
        sqlx::raw_sql("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            .execute(&mut *conn)
            .await?;
    } else {
        tracing::warn!("the deploy role does not own schema public; leaving its privileges alone");
    }
    Ok(())
}
