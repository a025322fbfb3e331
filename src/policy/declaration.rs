//! The declaration of a schema's tenancy, read from a `tenancy.toml`
//! (this repository's own is `policies/tenancy.toml`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{DeclarationError, Ident, Strategy};
use crate::resolve::DomainName;
use crate::tenant::{KeyType, TenantSlug};

/// Everything the toolkit needs to know about an application's schema: where its tables
/// live, the type of its tenant keys, the registry that resolves tenants, which tables hold
/// tenant rows (and in which column), and which hold global data every tenant may read.
///
/// A table is either a tenant table, a global table, the registry, or unreachable by the
/// runtime role.
///
/// ```
/// use rls_tenancy::{KeyType, TenancyDeclaration};
/// let decl = TenancyDeclaration::parse(r#"
///     schema = "crm"
///     key_type = "uuid"
///
///     [registry]
///     table = "orgs"
///     slug_column = "handle"
///
///     [[tenant_table]]
///     name = "customers"
///     column = "org_id"
///
///     [[global_table]]
///     name = "currencies"
/// "#)?;
/// assert_eq!(decl.key_type(), KeyType::Uuid);
/// assert_eq!(decl.registry().slug_column.as_str(), "handle");
/// assert_eq!(decl.registry().id_column.as_str(), "id");
/// assert!(decl.global_table("currencies").is_some());
/// # Ok::<(), rls_tenancy::DeclarationError>(())
/// ```
#[derive(Debug, Clone)]
pub struct TenancyDeclaration {
    schema: Ident,
    key_type: KeyType,
    registry: Registry,
    tenant_tables: Vec<TenantTable>,
    global_tables: Vec<GlobalTable>,
    strategy: Strategy,
    static_tenants: Vec<StaticTenant>,
}

/// A tenant the declaration names (`[[static_tenant]]`), as pgschemas' static tenants: a
/// landing site on `example.com`, a blog on `blog.example.com` and `help.example.com`.
/// Served in both strategies: `rls-migrate` keeps a registry row for it (so it has a tenant
/// id for the database wall; in the schema mode its schema in the schema column too). In the
/// schema mode it migrates its schema with its own migrations directory when it has one (its
/// own tables, declared in its own `[[static_tenant.tenant_table]]`), else with the tenant
/// migrations; in the RLS mode its rows live in the shared tables like every tenant's, and
/// own migrations or tables are refused (`rls-migrate` exits 2 naming it). Its domains route
/// to it before the domains table is asked; the axum integration can give it a `Router`
/// of its own.
///
/// ```
/// # use rls_tenancy::TenancyDeclaration;
/// let decl = TenancyDeclaration::parse(r#"
///     schema = "app"
///     strategy = "schema"
///     [registry]
///     table = "accounts"
///     [[tenant_table]]
///     name = "notes"
///     column = "account_id"
///     [[static_tenant]]
///     name = "blog"
///     schema = "blog"
///     domains = ["blog.example.com", "help.example.com"]
///     migrations = "migrations/static/blog"
///     [[static_tenant.tenant_table]]
///     name = "posts"
///     column = "account_id"
/// "#)?;
/// let blog = &decl.static_tenants()[0];
/// assert_eq!(blog.schema.as_str(), "blog");
/// assert_eq!(decl.static_tenant_of_domain("help.example.com").map(|t| t.name.as_str()), Some("blog"));
/// assert_eq!(decl.for_static_tenant(blog).tenant_tables()[0].name.as_str(), "posts");
/// # Ok::<(), rls_tenancy::DeclarationError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticTenant {
    /// Its name, a slug: its registry row's slug.
    pub name: TenantSlug,
    /// Its schema (not `public`, `information_schema`, `pg_*` or the shared schema).
    pub schema: Ident,
    /// The full domains it is served on.
    pub domains: Vec<DomainName>,
    /// Its own migrations directory, if it has its own set of tables.
    pub migrations: Option<PathBuf>,
    /// Its own tenant tables (with its own migrations); empty: the declaration's.
    pub tenant_tables: Vec<TenantTable>,
}

/// A table whose rows each belong to one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantTable {
    /// The table's name (unqualified; it lives in the declaration's schema).
    pub name: Ident,
    /// The column holding the tenant id.
    pub column: Ident,
}

/// A table of shared data every tenant may read (countries, plans): no tenant column, no
/// policy, `SELECT` only for the runtime role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalTable {
    /// The table's name (unqualified; it lives in the declaration's schema).
    pub name: Ident,
}

/// The tenant registry: the table that maps a slug to a tenant id, and its routing columns.
#[derive(Debug, Clone)]
pub struct Registry {
    /// The table's name.
    pub table: Ident,
    /// The tenant id column (default `id`), of the declaration's key type.
    pub id_column: Ident,
    /// The slug column (default `slug`).
    pub slug_column: Ident,
    /// The boolean column that says whether the tenant is active (default `is_active`).
    pub active_column: Ident,
    /// The column naming the tenant's own schema (default `schema_name`), read only under
    /// [`Strategy::Schema`].
    pub schema_column: Ident,
    /// The column naming the server of the tenant's own database (default `server_name`),
    /// read only under [`Strategy::Database`].
    pub server_column: Ident,
    /// The column naming the tenant's own database (default `database_name`), read only
    /// under [`Strategy::Database`].
    pub database_column: Ident,
    /// The routing columns the runtime role may `SELECT`: id, slug and active, the schema
    /// column under [`Strategy::Schema`], the server and database columns under
    /// [`Strategy::Database`], and any others listed as `readable_columns`.
    pub readable_columns: Vec<Ident>,
    /// The tenants' own domains (`domains_table`), if the application keeps them.
    pub domains: Option<DomainsTable>,
}

/// The table of tenants' own domains (`[registry] domains_table`): one row per full domain
/// name, naming its tenant by id, at most one of a tenant's domains primary. Routing data
/// like the registry, in the declaration's schema: the runtime role may read it, never write it.
///
/// ```
/// # use rls_tenancy::TenancyDeclaration;
/// let decl = TenancyDeclaration::reference()?;
/// let domains = decl.registry().domains.as_ref().expect("the reference keeps domains");
/// assert_eq!(domains.table.as_str(), "domains");
/// assert_eq!(domains.tenant_column.as_str(), "account_id");
/// # Ok::<(), rls_tenancy::DeclarationError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainsTable {
    /// The table's name (`domains_table`).
    pub table: Ident,
    /// The column holding the domain (`domain_column`, default `domain`).
    pub domain_column: Ident,
    /// The column holding the tenant's id (`domain_tenant_column`, default `tenant_id`).
    pub tenant_column: Ident,
    /// The boolean column marking a tenant's primary domain (`domain_primary_column`,
    /// default `is_primary`).
    pub primary_column: Ident,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeclaration {
    schema: String,
    #[serde(default)]
    key_type: KeyType,
    registry: RawRegistry,
    #[serde(default)]
    tenant_table: Vec<RawTenantTable>,
    #[serde(default)]
    global_table: Vec<RawGlobalTable>,
    #[serde(default)]
    strategy: Strategy,
    #[serde(default)]
    static_tenant: Vec<RawStaticTenant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStaticTenant {
    name: String,
    schema: String,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    migrations: Option<PathBuf>,
    #[serde(default)]
    tenant_table: Vec<RawTenantTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    table: String,
    #[serde(default = "default_id_column")]
    id_column: String,
    #[serde(default = "default_slug_column")]
    slug_column: String,
    #[serde(default = "default_active_column")]
    active_column: String,
    #[serde(default = "default_schema_column")]
    schema_column: String,
    #[serde(default = "default_server_column")]
    server_column: String,
    #[serde(default = "default_database_column")]
    database_column: String,
    #[serde(default)]
    readable_columns: Vec<String>,
    #[serde(default)]
    domains_table: Option<String>,
    #[serde(default = "default_domain_column")]
    domain_column: String,
    #[serde(default = "default_domain_tenant_column")]
    domain_tenant_column: String,
    #[serde(default = "default_domain_primary_column")]
    domain_primary_column: String,
}

fn default_domain_column() -> String {
    "domain".into()
}

fn default_domain_tenant_column() -> String {
    "tenant_id".into()
}

fn default_domain_primary_column() -> String {
    "is_primary".into()
}

fn default_id_column() -> String {
    "id".into()
}

fn default_slug_column() -> String {
    "slug".into()
}

fn default_active_column() -> String {
    "is_active".into()
}

fn default_schema_column() -> String {
    "schema_name".into()
}

fn default_server_column() -> String {
    "server_name".into()
}

fn default_database_column() -> String {
    "database_name".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenantTable {
    name: String,
    column: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobalTable {
    name: String,
}

impl TenancyDeclaration {
    /// This repository's reference declaration (`policies/tenancy.toml`: schema `app`, the
    /// `accounts` registry, `users`, `projects`, `tasks`, `subtasks`), which the tests, the
    /// seeder and the demo use. Your application reads its own with
    /// [`TenancyDeclaration::from_file`].
    ///
    /// # Errors
    /// [`DeclarationError`] if the file is malformed (a build-time mistake).
    ///
    /// ```
    /// # use rls_tenancy::TenancyDeclaration;
    /// assert_eq!(TenancyDeclaration::reference()?.tenant_tables().len(), 4);
    /// # Ok::<(), rls_tenancy::DeclarationError>(())
    /// ```
    #[cfg(any(feature = "testing", feature = "seed"))]
    pub fn reference() -> Result<Self, DeclarationError> {
        Self::parse(include_str!("../../policies/tenancy.toml"))
    }

    /// Reads and parses the declaration in `path`.
    ///
    /// # Errors
    /// [`DeclarationError::Read`] when the file cannot be read, else as
    /// [`TenancyDeclaration::parse`].
    ///
    /// ```no_run
    /// # use rls_tenancy::TenancyDeclaration;
    /// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?;
    /// # Ok::<(), rls_tenancy::DeclarationError>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, DeclarationError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| DeclarationError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses a declaration in the format of `policies/tenancy.toml`.
    ///
    /// # Errors
    /// [`DeclarationError`] for malformed TOML, an unknown field, an invalid identifier, no
    /// tenant table, or a table declared twice.
    ///
    /// ```
    /// # use rls_tenancy::TenancyDeclaration;
    /// let decl = TenancyDeclaration::parse(r#"
    ///     schema = "app"
    ///     [registry]
    ///     table = "accounts"
    ///     [[tenant_table]]
    ///     name = "notes"
    ///     column = "account_id"
    /// "#)?;
    /// assert_eq!(decl.tenant_tables()[0].name.as_str(), "notes");
    /// assert!(TenancyDeclaration::parse("schema = 1").is_err());
    /// # Ok::<(), rls_tenancy::DeclarationError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, DeclarationError> {
        let invalid = |reason: String| DeclarationError::Invalid { reason };
        let raw: RawDeclaration = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        if raw.tenant_table.is_empty() {
            return Err(invalid("no [[tenant_table]] is declared".into()));
        }
        let tenant_tables = tenant_tables(&raw.tenant_table)?;
        let global_tables = raw
            .global_table
            .iter()
            .map(|t| {
                Ok(GlobalTable {
                    name: Ident::parse("table", &t.name)?,
                })
            })
            .collect::<Result<Vec<_>, DeclarationError>>()?;
        let registry = Registry::from_raw(&raw.registry)?;
        let schema = Ident::parse("schema", &raw.schema)?;
        let static_tenants = raw
            .static_tenant
            .iter()
            .map(|t| StaticTenant::from_raw(t, &schema))
            .collect::<Result<Vec<_>, DeclarationError>>()?;
        let decl = Self {
            schema,
            key_type: raw.key_type,
            registry,
            tenant_tables,
            global_tables,
            strategy: Strategy::Rls,
            static_tenants,
        };
        decl.refuse_duplicate_tables()?;
        decl.refuse_shared_static_names()?;
        Ok(decl.with_strategy(raw.strategy))
    }

    /// The same declaration under `strategy` (what `--strategy` does to the file's choice).
    /// Under [`Strategy::Schema`] the registry's schema column becomes readable routing data,
    /// under [`Strategy::Database`] its server and database columns; under any other strategy
    /// they are not readable.
    ///
    /// ```
    /// # use rls_tenancy::{Strategy, TenancyDeclaration};
    /// let decl = TenancyDeclaration::reference()?.with_strategy(Strategy::Schema);
    /// assert_eq!(decl.strategy(), Strategy::Schema);
    /// let registry = decl.registry();
    /// assert!(registry.readable_columns.contains(&registry.schema_column));
    /// assert!(!registry.readable_columns.contains(&registry.database_column));
    /// let decl = decl.with_strategy(Strategy::Database);
    /// let registry = decl.registry();
    /// assert!(registry.readable_columns.contains(&registry.server_column));
    /// assert!(registry.readable_columns.contains(&registry.database_column));
    /// assert!(!registry.readable_columns.contains(&registry.schema_column));
    /// # Ok::<(), rls_tenancy::DeclarationError>(())
    /// ```
    pub fn with_strategy(mut self, strategy: Strategy) -> Self {
        let registry = &mut self.registry;
        for (column, readable_in) in [
            (registry.schema_column.clone(), Strategy::Schema),
            (registry.server_column.clone(), Strategy::Database),
            (registry.database_column.clone(), Strategy::Database),
        ] {
            let readable = &mut registry.readable_columns;
            if strategy != readable_in {
                readable.retain(|c| *c != column);
            } else if !readable.contains(&column) {
                readable.push(column);
            }
        }
        self.strategy = strategy;
        self
    }

    /// Where tenants' rows live (default [`Strategy::Rls`]).
    ///
    /// ```
    /// # use rls_tenancy::{Strategy, TenancyDeclaration};
    /// assert_eq!(TenancyDeclaration::reference()?.strategy(), Strategy::Rls);
    /// # Ok::<(), rls_tenancy::DeclarationError>(())
    /// ```
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// A table may be declared once, as one thing.
    fn refuse_duplicate_tables(&self) -> Result<(), DeclarationError> {
        let mut names: Vec<&str> = self
            .tenant_tables
            .iter()
            .map(|t| t.name.as_str())
            .chain(self.global_tables.iter().map(|t| t.name.as_str()))
            .chain(std::iter::once(self.registry.table.as_str()))
            .chain(self.registry.domains.iter().map(|d| d.table.as_str()))
            .collect();
        names.sort_unstable();
        match names.windows(2).find(|pair| pair[0] == pair[1]) {
            Some(pair) => Err(DeclarationError::Invalid {
                reason: format!(
                    "table {:?} is declared more than once: a table is a tenant table, a global table, the registry or its domains table",
                    pair[0]
                ),
            }),
            None => Ok(()),
        }
    }

    /// Static tenants may not share a name, a schema or a domain.
    fn refuse_shared_static_names(&self) -> Result<(), DeclarationError> {
        let mut seen = std::collections::HashSet::new();
        for t in &self.static_tenants {
            let names = [
                format!("name {}", t.name),
                format!("schema {}", t.schema.as_str()),
            ];
            let domains = t.domains.iter().map(|d| format!("domain {d}"));
            for what in names.into_iter().chain(domains) {
                if !seen.insert(what.clone()) {
                    return Err(DeclarationError::Invalid {
                        reason: format!(
                            "static tenants share the {what}: give each its own name, schema and domains"
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    /// The static tenants (`[[static_tenant]]`), in declaration order.
    ///
    /// ```
    /// # use rls_tenancy::TenancyDeclaration;
    /// assert!(TenancyDeclaration::reference()?.static_tenants().is_empty());
    /// # Ok::<(), rls_tenancy::DeclarationError>(())
    /// ```
    pub fn static_tenants(&self) -> &[StaticTenant] {
        &self.static_tenants
    }

    /// The static tenant served on `domain`, if any.
    ///
    /// ```
    /// # use rls_tenancy::TenancyDeclaration;
    /// assert!(TenancyDeclaration::reference()?.static_tenant_of_domain("example.com").is_none());
    /// # Ok::<(), rls_tenancy::DeclarationError>(())
    /// ```
    pub fn static_tenant_of_domain(&self, domain: &str) -> Option<&StaticTenant> {
        self.static_tenants
            .iter()
            .find(|t| t.domains.iter().any(|d| d.as_str() == domain))
    }

    /// The declaration a static tenant's schema is migrated, protected and granted with: this
    /// one, with the static tenant's own tenant tables when it declares any.
    ///
    /// ```
    /// # use rls_tenancy::TenancyDeclaration;
    /// let decl = TenancyDeclaration::reference()?;
    /// # let _ = &decl;
    /// # Ok::<(), rls_tenancy::DeclarationError>(())
    /// ```
    pub fn for_static_tenant(&self, tenant: &StaticTenant) -> TenancyDeclaration {
        let mut decl = self.clone();
        if !tenant.tenant_tables.is_empty() {
            decl.tenant_tables = tenant.tenant_tables.clone();
        }
        decl
    }

    /// The schema that holds the application's tables.
    ///
    /// ```
    /// # use rls_tenancy::TenancyDeclaration;
    /// assert_eq!(TenancyDeclaration::reference()?.schema().as_str(), "app");
    /// # Ok::<(), rls_tenancy::DeclarationError>(())
    /// ```
    pub fn schema(&self) -> &Ident {
        &self.schema
    }

    /// The SQL type of the tenant keys (default `bigint`).
    ///
    /// ```
    /// # use rls_tenancy::{KeyType, TenancyDeclaration};
    /// assert_eq!(TenancyDeclaration::reference()?.key_type(), KeyType::BigInt);
    /// # Ok::<(), rls_tenancy::DeclarationError>(())
    /// ```
    pub fn key_type(&self) -> KeyType {
        self.key_type
    }

    /// The tenant registry.
    ///
    /// ```
    /// # use rls_tenancy::TenancyDeclaration;
    /// assert_eq!(TenancyDeclaration::reference()?.registry().table.as_str(), "accounts");
    /// # Ok::<(), rls_tenancy::DeclarationError>(())
    /// ```
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The tenant tables, in declaration order (parents before children).
    ///
    /// ```
    /// # use rls_tenancy::TenancyDeclaration;
    /// let decl = TenancyDeclaration::reference()?;
    /// assert!(decl.tenant_tables().iter().all(|t| t.column.as_str() == "account_id"));
    /// # Ok::<(), rls_tenancy::DeclarationError>(())
    /// ```
    pub fn tenant_tables(&self) -> &[TenantTable] {
        &self.tenant_tables
    }

    /// The declared tenant table with this name, if any.
    ///
    /// ```
    /// # use rls_tenancy::TenancyDeclaration;
    /// let decl = TenancyDeclaration::reference()?;
    /// assert!(decl.tenant_table("tasks").is_some());
    /// assert!(decl.tenant_table("accounts").is_none());
    /// # Ok::<(), rls_tenancy::DeclarationError>(())
    /// ```
    pub fn tenant_table(&self, name: &str) -> Option<&TenantTable> {
        self.tenant_tables.iter().find(|t| t.name.as_str() == name)
    }

    /// The global tables, in declaration order.
    ///
    /// ```
    /// # use rls_tenancy::TenancyDeclaration;
    /// assert!(TenancyDeclaration::reference()?.global_tables().is_empty());
    /// # Ok::<(), rls_tenancy::DeclarationError>(())
    /// ```
    pub fn global_tables(&self) -> &[GlobalTable] {
        &self.global_tables
    }

    /// The declared global table with this name, if any.
    ///
    /// ```
    /// # use rls_tenancy::TenancyDeclaration;
    /// assert!(TenancyDeclaration::reference()?.global_table("tasks").is_none());
    /// # Ok::<(), rls_tenancy::DeclarationError>(())
    /// ```
    pub fn global_table(&self, name: &str) -> Option<&GlobalTable> {
        self.global_tables.iter().find(|t| t.name.as_str() == name)
    }
}

fn tenant_tables(raw: &[RawTenantTable]) -> Result<Vec<TenantTable>, DeclarationError> {
    raw.iter()
        .map(|t| {
            Ok(TenantTable {
                name: Ident::parse("table", &t.name)?,
                column: Ident::parse("column", &t.column)?,
            })
        })
        .collect()
}

impl StaticTenant {
    fn from_raw(raw: &RawStaticTenant, shared: &Ident) -> Result<Self, DeclarationError> {
        let invalid = |reason: String| DeclarationError::Invalid { reason };
        let name: TenantSlug = raw
            .name
            .parse()
            .map_err(|e| invalid(format!("static tenant {:?}: {e}", raw.name)))?;
        let schema = Ident::parse("schema", &raw.schema)?;
        if is_reserved_schema(schema.as_str(), shared) {
            return Err(invalid(format!(
                "static tenant {name}: schema name {:?} is reserved (public, information_schema, pg_* and the shared schema hold no tenant): choose another",
                schema.as_str()
            )));
        }
        let domains = raw
            .domains
            .iter()
            .map(|d| {
                DomainName::parse(d).map_err(|e| invalid(format!("static tenant {name}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            name,
            schema,
            domains,
            migrations: raw.migrations.clone(),
            tenant_tables: tenant_tables(&raw.tenant_table)?,
        })
    }
}

/// Whether `name` may not be a tenant's schema: `public`, `information_schema`, a `pg_*`
/// schema, or the shared schema.
pub(crate) fn is_reserved_schema(name: &str, shared: &Ident) -> bool {
    name == "public"
        || name == "information_schema"
        || name.starts_with("pg_")
        || name == shared.as_str()
}

impl Registry {
    fn from_raw(raw: &RawRegistry) -> Result<Self, DeclarationError> {
        let id_column = Ident::parse("column", &raw.id_column)?;
        let slug_column = Ident::parse("column", &raw.slug_column)?;
        let active_column = Ident::parse("column", &raw.active_column)?;
        let schema_column = Ident::parse("column", &raw.schema_column)?;
        let server_column = Ident::parse("column", &raw.server_column)?;
        let database_column = Ident::parse("column", &raw.database_column)?;
        let mut readable_columns = vec![
            id_column.clone(),
            slug_column.clone(),
            active_column.clone(),
        ];
        for column in &raw.readable_columns {
            let column = Ident::parse("column", column)?;
            if !readable_columns.contains(&column) {
                readable_columns.push(column);
            }
        }
        let domains = raw
            .domains_table
            .as_deref()
            .map(|table| {
                Ok::<_, DeclarationError>(DomainsTable {
                    table: Ident::parse("table", table)?,
                    domain_column: Ident::parse("column", &raw.domain_column)?,
                    tenant_column: Ident::parse("column", &raw.domain_tenant_column)?,
                    primary_column: Ident::parse("column", &raw.domain_primary_column)?,
                })
            })
            .transpose()?;
        Ok(Self {
            table: Ident::parse("table", &raw.table)?,
            id_column,
            slug_column,
            active_column,
            schema_column,
            server_column,
            database_column,
            readable_columns,
            domains,
        })
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]
mod tests {
    use super::*;

    const HEAD: &str = "schema = \"app\"\n[registry]\ntable = \"accounts\"\n";

    #[test]
    fn a_table_declared_twice_is_refused_by_name() {
        let text = format!(
            "{HEAD}[[tenant_table]]\nname = \"notes\"\ncolumn = \"account_id\"\n[[global_table]]\nname = \"notes\"\n"
        );
        let err = TenancyDeclaration::parse(&text).map(|_| ()).unwrap_err();
        assert!(
            err.to_string()
                .contains("\"notes\" is declared more than once"),
            "{err}"
        );
    }

    #[test]
    fn unknown_fields_and_key_types_are_refused() {
        let typo = format!("{HEAD}[[tenant_table]]\nname = \"n\"\ncolum = \"a\"\n");
        assert!(TenancyDeclaration::parse(&typo).is_err());
        let key =
            format!("key_type = \"int\"\n{HEAD}[[tenant_table]]\nname = \"n\"\ncolumn = \"a\"\n");
        let err = TenancyDeclaration::parse(&key).map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
    }
}
