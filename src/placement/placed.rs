//! [`placed_databases`]: every tenant database the registry places (the database strategy).

use sqlx::{AssertSqlSafe, PgConnection};

use super::{DatabaseName, PlacementError};
use crate::policy::TenancyDeclaration;

/// A tenant's database as the registry places it: the tenant's slug, its server's name and
/// its database.
///
/// ```
/// use rls_tenancy::PlacedDatabase;
/// let acme = PlacedDatabase { slug: "acme".into(), server: "eu1".into(), database: "app_tenant_acme".parse()? };
/// assert_eq!(acme.to_string(), "acme (eu1/app_tenant_acme)");
/// # Ok::<(), rls_tenancy::PlacementError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacedDatabase {
    /// The tenant's slug.
    pub slug: String,
    /// Its server's name, as the registry has it.
    pub server: String,
    /// Its database.
    pub database: DatabaseName,
}

impl std::fmt::Display for PlacedDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}/{})",
            self.slug,
            self.server,
            self.database.as_str()
        )
    }
}

/// Every tenant the registry `conn` reads (the control database) places in a database, sorted
/// by slug; the runtime role may read this under the database strategy, as the deploy role.
///
/// # Errors
/// [`PlacementError::InvalidDatabaseName`] for a registry row whose database name is not a
/// safe identifier; [`PlacementError::Registry`] when the registry cannot be read.
///
/// ```no_run
/// # use rls_tenancy::{Strategy, TenancyDeclaration, placed_databases};
/// # async fn demo(conn: &mut sqlx::PgConnection) -> rls_tenancy::Result<()> {
/// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?.with_strategy(Strategy::Database);
/// for tenant in placed_databases(conn, &decl).await? {
///     println!("{tenant}");
/// }
/// # Ok(()) }
/// ```
pub async fn placed_databases(
    conn: &mut PgConnection,
    decl: &TenancyDeclaration,
) -> Result<Vec<PlacedDatabase>, PlacementError> {
    let registry = decl.registry();
    let sql = format!(
        "SELECT {slug}::text, {server}::text, {database}::text FROM {shared}.{table}
          WHERE {server} IS NOT NULL AND {database} IS NOT NULL
          ORDER BY 1",
        slug = registry.slug_column,
        server = registry.server_column,
        database = registry.database_column,
        shared = decl.schema(),
        table = registry.table,
    );
    let rows: Vec<(String, String, String)> = sqlx::query_as(AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter()
        .map(|(slug, server, database)| {
            Ok(PlacedDatabase {
                slug,
                server,
                database: database.parse()?,
            })
        })
        .collect()
}
