//! The declaration checked against the database: every table and column it names exists,
//! with the type the toolkit relies on. `rls-migrate` runs this after the migrations, inside
//! the same transaction, so a mismatch rolls everything back; the guard runs it before its
//! rules, so `rls-check` and the tenant pool refuse a declaration that does not fit.

use std::collections::BTreeMap;

use sqlx::PgConnection;

use super::{DeclarationError, TenancyDeclaration};

/// The column types a registry's slug column may have: text of any kind.
const SLUG_TYPES: [&str; 3] = ["text", "character varying", "citext"];

/// What the catalogs hold for the declared tables: each table's kind and its columns' types
/// (a domain counts as its base type).
#[derive(Debug, Default)]
struct Catalog {
    schema_exists: bool,
    tables: BTreeMap<String, Table>,
}

#[derive(Debug, Default)]
struct Table {
    /// `pg_class.relkind`: `r` table, `p` partitioned table, `v` view, ...
    kind: String,
    columns: BTreeMap<String, String>,
}

/// Checks `decl` against the database `conn` is connected to.
///
/// # Errors
/// `Ok(Err(DeclarationError::Mismatch))` naming every table and column that is missing or
/// of the wrong type, in one message; `Err` when the catalog query itself failed.
pub(crate) async fn verify(
    conn: &mut PgConnection,
    decl: &TenancyDeclaration,
) -> Result<Result<(), DeclarationError>, sqlx::Error> {
    verify_tables(conn, decl, true).await
}

/// As [`verify`], for a tenant database of the database strategy: its tenant tables only
/// (the registry lives in the control database).
pub(crate) async fn verify_tenant_tables(
    conn: &mut PgConnection,
    decl: &TenancyDeclaration,
) -> Result<Result<(), DeclarationError>, sqlx::Error> {
    verify_tables(conn, decl, false).await
}

async fn verify_tables(
    conn: &mut PgConnection,
    decl: &TenancyDeclaration,
    with_registry: bool,
) -> Result<Result<(), DeclarationError>, sqlx::Error> {
    let catalog = Catalog::read(conn, decl).await?;
    let problems = mismatches(decl, &catalog, with_registry);
    if problems.is_empty() {
        return Ok(Ok(()));
    }
    Ok(Err(DeclarationError::Mismatch {
        what: problems.join("; "),
    }))
}

impl Catalog {
    async fn read(conn: &mut PgConnection, decl: &TenancyDeclaration) -> sqlx::Result<Self> {
        let names: Vec<&str> = declared_tables(decl).collect();
        let rows: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT c.relname::text, c.relkind::text, a.attname::text,
                    pg_catalog.format_type(CASE WHEN t.typtype = 'd' THEN t.typbasetype
                                                ELSE a.atttypid END, NULL)
               FROM pg_catalog.pg_class c
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               LEFT JOIN pg_catalog.pg_attribute a
                      ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
              WHERE n.nspname = $1 AND c.relname = ANY ($2)",
        )
        .bind(decl.schema().as_str())
        .bind(&names)
        .fetch_all(&mut *conn)
        .await?;
        let schema_exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)",
        )
        .bind(decl.schema().as_str())
        .fetch_one(&mut *conn)
        .await?;
        let mut tables: BTreeMap<String, Table> = BTreeMap::new();
        for (table, kind, column, column_type) in rows {
            let entry = tables.entry(table).or_default();
            entry.kind = kind;
            if let (Some(column), Some(column_type)) = (column, column_type) {
                entry.columns.insert(column, column_type);
            }
        }
        Ok(Self {
            schema_exists,
            tables,
        })
    }
}

fn declared_tables(decl: &TenancyDeclaration) -> impl Iterator<Item = &str> {
    decl.tenant_tables()
        .iter()
        .map(|t| t.name.as_str())
        .chain(decl.global_tables().iter().map(|t| t.name.as_str()))
        .chain(std::iter::once(decl.registry().table.as_str()))
        .chain(decl.registry().domains.iter().map(|d| d.table.as_str()))
}

/// Every way `decl` does not fit `catalog`, each naming the table and column.
fn mismatches(decl: &TenancyDeclaration, catalog: &Catalog, with_registry: bool) -> Vec<String> {
    let schema = decl.schema().as_str();
    if !catalog.schema_exists {
        return vec![format!("schema {schema} does not exist")];
    }
    let key_type = decl.key_type().sql_type();
    let mut problems = Vec::new();
    let mut check = |what: &str, table: &str, kinds: &[&str], columns: &[(&str, &[&str], &str)]| {
        let Some(found) = catalog.tables.get(table) else {
            problems.push(format!("{what} {schema}.{table} does not exist"));
            return;
        };
        if !kinds.contains(&found.kind.as_str()) {
            problems.push(format!(
                "{what} {schema}.{table} is not a table (relkind {:?})",
                found.kind
            ));
            return;
        }
        for (column, types, why) in columns {
            match found.columns.get(*column) {
                None => problems.push(format!("{what} {schema}.{table} has no column {column}")),
                Some(actual) if !types.is_empty() && !types.contains(&actual.as_str()) => {
                    problems.push(format!(
                        "column {column} of {what} {schema}.{table} is {actual}, but {why}"
                    ));
                }
                Some(_) => {}
            }
        }
    };
    let key_types = [key_type];
    let key_reason = format!("key_type = \"{key_type}\" needs {key_type}");
    for table in decl.tenant_tables() {
        check(
            "tenant table",
            table.name.as_str(),
            &["r", "p"],
            &[(table.column.as_str(), &key_types, &key_reason)],
        );
    }
    if !with_registry {
        return problems;
    }
    let registry = decl.registry();
    let mut registry_columns: Vec<(&str, &[&str], &str)> = vec![
        (registry.id_column.as_str(), &key_types, &key_reason),
        (
            registry.slug_column.as_str(),
            &SLUG_TYPES,
            "the slug column must be text, varchar or citext",
        ),
        (
            registry.active_column.as_str(),
            &["boolean"],
            "the active column must be boolean",
        ),
    ];
    for column in &registry.readable_columns {
        if !registry_columns.iter().any(|(c, ..)| *c == column.as_str()) {
            registry_columns.push((column.as_str(), &[], ""));
        }
    }
    check(
        "registry",
        registry.table.as_str(),
        &["r", "p"],
        &registry_columns,
    );
    if let Some(domains) = &registry.domains {
        check(
            "domains table",
            domains.table.as_str(),
            &["r", "p"],
            &[
                (
                    domains.domain_column.as_str(),
                    &SLUG_TYPES,
                    "the domain column must be text, varchar or citext",
                ),
                (domains.tenant_column.as_str(), &key_types, &key_reason),
                (
                    domains.primary_column.as_str(),
                    &["boolean"],
                    "the primary column must be boolean",
                ),
            ],
        );
    }
    for table in decl.global_tables() {
        check("global table", table.name.as_str(), &["r", "p", "v"], &[]);
    }
    problems
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    fn decl() -> TenancyDeclaration {
        TenancyDeclaration::parse(
            r#"
            schema = "crm"
            key_type = "uuid"
            [registry]
            table = "orgs"
            slug_column = "handle"
            active_column = "active"
            readable_columns = ["name"]
            domains_table = "org_domains"
            domain_tenant_column = "org_id"
            [[tenant_table]]
            name = "customers"
            column = "org_id"
            [[global_table]]
            name = "currencies"
            "#,
        )
        .unwrap()
    }

    fn table(kind: &str, columns: &[(&str, &str)]) -> Table {
        Table {
            kind: kind.into(),
            columns: columns
                .iter()
                .map(|(c, t)| ((*c).to_owned(), (*t).to_owned()))
                .collect(),
        }
    }

    fn fitting() -> Catalog {
        let mut tables = BTreeMap::new();
        tables.insert(
            "orgs".into(),
            table(
                "r",
                &[
                    ("id", "uuid"),
                    ("handle", "text"),
                    ("active", "boolean"),
                    ("name", "text"),
                ],
            ),
        );
        tables.insert(
            "customers".into(),
            table("r", &[("org_id", "uuid"), ("id", "bigint")]),
        );
        tables.insert("currencies".into(), table("r", &[("code", "character")]));
        tables.insert(
            "org_domains".into(),
            table(
                "r",
                &[
                    ("domain", "text"),
                    ("org_id", "uuid"),
                    ("is_primary", "boolean"),
                ],
            ),
        );
        Catalog {
            schema_exists: true,
            tables,
        }
    }

    #[test]
    fn a_fitting_schema_has_no_mismatch() {
        assert_eq!(mismatches(&decl(), &fitting(), true), Vec::<String>::new());
    }

    /// One change to a fitting catalog.
    enum Damage {
        DropTable(&'static str),
        DropColumn(&'static str, &'static str),
        Retype(&'static str, &'static str, &'static str),
    }

    impl Damage {
        fn apply(&self, catalog: &mut Catalog) {
            match *self {
                Damage::DropTable(table) => {
                    catalog.tables.remove(table);
                }
                Damage::DropColumn(table, column) => {
                    catalog
                        .tables
                        .get_mut(table)
                        .unwrap()
                        .columns
                        .remove(column);
                }
                Damage::Retype(table, column, to) => {
                    let columns = &mut catalog.tables.get_mut(table).unwrap().columns;
                    columns.insert(column.into(), to.into());
                }
            }
        }
    }

    #[test]
    fn each_mistake_names_its_table_and_column() {
        let cases = [
            (
                Damage::DropTable("customers"),
                "tenant table crm.customers does not exist",
            ),
            (
                Damage::DropColumn("customers", "org_id"),
                "tenant table crm.customers has no column org_id",
            ),
            (
                Damage::Retype("customers", "org_id", "bigint"),
                "column org_id of tenant table crm.customers is bigint, but key_type = \"uuid\" needs uuid",
            ),
            (
                Damage::Retype("orgs", "id", "integer"),
                "column id of registry crm.orgs is integer, but key_type = \"uuid\" needs uuid",
            ),
            (
                Damage::DropColumn("orgs", "handle"),
                "registry crm.orgs has no column handle",
            ),
            (
                Damage::DropColumn("orgs", "name"),
                "registry crm.orgs has no column name",
            ),
            (
                Damage::Retype("orgs", "active", "text"),
                "column active of registry crm.orgs is text, but the active column must be boolean",
            ),
            (
                Damage::DropTable("currencies"),
                "global table crm.currencies does not exist",
            ),
            (
                Damage::DropTable("org_domains"),
                "domains table crm.org_domains does not exist",
            ),
            (
                Damage::Retype("org_domains", "org_id", "bigint"),
                "column org_id of domains table crm.org_domains is bigint, but key_type = \"uuid\" needs uuid",
            ),
            (
                Damage::DropColumn("org_domains", "is_primary"),
                "domains table crm.org_domains has no column is_primary",
            ),
        ];
        for (damage, expected) in cases {
            let mut catalog = fitting();
            damage.apply(&mut catalog);
            let problems = mismatches(&decl(), &catalog, true);
            assert_eq!(problems, vec![expected.to_owned()], "{expected}");
        }
    }

    #[test]
    fn a_missing_schema_is_one_problem_not_one_per_table() {
        let catalog = Catalog::default();
        assert_eq!(
            mismatches(&decl(), &catalog, true),
            vec!["schema crm does not exist".to_owned()]
        );
    }

    #[test]
    fn a_view_is_not_a_tenant_table() {
        let mut catalog = fitting();
        catalog.tables.get_mut("customers").unwrap().kind = "v".into();
        let problems = mismatches(&decl(), &catalog, true);
        assert_eq!(
            problems,
            vec!["tenant table crm.customers is not a table (relkind \"v\")".to_owned()]
        );
    }
}
