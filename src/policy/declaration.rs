//! The declaration of tenant tables, read from `policies/tenancy.toml`.

use serde::Deserialize;

use super::Ident;
use crate::error::Error;

/// The built-in declaration, compiled in from `policies/tenancy.toml`.
const BUILTIN: &str = include_str!("../../policies/tenancy.toml");

/// Which tables hold tenant data, in which schema, keyed by which column; and the registry
/// that resolves slugs to tenant ids.
///
/// ```
/// use rls_tenancy::TenancyDeclaration;
/// let decl = TenancyDeclaration::builtin()?;
/// assert_eq!(decl.schema().as_str(), "app");
/// assert!(decl.tenant_tables().iter().any(|t| t.name.as_str() == "subtasks"));
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TenancyDeclaration {
    schema: Ident,
    registry: Registry,
    tenant_tables: Vec<TenantTable>,
    global_tables: Vec<GlobalTable>,
}

/// A table every tenant may read whole (a `plans` lookup table): declared so the guard knows
/// it holds no tenant's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalTable {
    /// The table's name (unqualified; it lives in the declaration's schema).
    pub name: Ident,
}

/// A table whose rows each belong to one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantTable {
    /// The table's name (unqualified; it lives in the declaration's schema).
    pub name: Ident,
    /// The column holding the tenant id.
    pub column: Ident,
}

/// The tenant registry table and the columns the runtime role may read.
#[derive(Debug, Clone)]
pub struct Registry {
    /// The table's name.
    pub table: Ident,
    /// The routing columns the runtime role may `SELECT`.
    pub readable_columns: Vec<Ident>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeclaration {
    schema: String,
    registry: RawRegistry,
    tenant_table: Vec<RawTenantTable>,
    #[serde(default)]
    global_table: Vec<RawGlobalTable>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobalTable {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    table: String,
    readable_columns: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenantTable {
    name: String,
    column: String,
}

impl TenancyDeclaration {
    /// The declaration shipped in `policies/tenancy.toml`.
    ///
    /// # Errors
    /// [`Error::InvalidDeclaration`] if the file is malformed (a build-time mistake).
    ///
    /// ```
    /// # use rls_tenancy::TenancyDeclaration;
    /// assert_eq!(TenancyDeclaration::builtin()?.tenant_tables().len(), 4);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn builtin() -> Result<Self, Error> {
        Self::parse(BUILTIN)
    }

    /// Parses a declaration in the format of `policies/tenancy.toml`.
    ///
    /// # Errors
    /// [`Error::InvalidDeclaration`] for malformed TOML, an invalid identifier, or no tables.
    ///
    /// ```
    /// # use rls_tenancy::TenancyDeclaration;
    /// let decl = TenancyDeclaration::parse(r#"
    ///     schema = "app"
    ///     [registry]
    ///     table = "accounts"
    ///     readable_columns = ["id", "slug"]
    ///     [[tenant_table]]
    ///     name = "notes"
    ///     column = "account_id"
    /// "#)?;
    /// assert_eq!(decl.tenant_tables()[0].name.as_str(), "notes");
    /// assert!(TenancyDeclaration::parse("schema = 1").is_err());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, Error> {
        let invalid = |reason: String| Error::InvalidDeclaration { reason };
        let raw: RawDeclaration = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let ident = |what, s: &str| Ident::parse(what, s).map_err(|e| invalid(e.to_string()));
        if raw.tenant_table.is_empty() {
            return Err(invalid("no [[tenant_table]] is declared".into()));
        }
        let tenant_tables = raw
            .tenant_table
            .iter()
            .map(|t| {
                Ok(TenantTable {
                    name: ident("table", &t.name)?,
                    column: ident("column", &t.column)?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let global_tables = raw
            .global_table
            .iter()
            .map(|t| {
                Ok(GlobalTable {
                    name: ident("table", &t.name)?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        if let Some(both) = global_tables
            .iter()
            .find(|g| tenant_tables.iter().any(|t| t.name == g.name))
        {
            return Err(invalid(format!(
                "table {} is declared both as a tenant table and as a global table",
                both.name.as_str()
            )));
        }
        let readable_columns = raw
            .registry
            .readable_columns
            .iter()
            .map(|c| ident("column", c))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Self {
            schema: ident("schema", &raw.schema)?,
            registry: Registry {
                table: ident("table", &raw.registry.table)?,
                readable_columns,
            },
            tenant_tables,
            global_tables,
        })
    }

    /// The schema that holds the application's tables.
    ///
    /// ```
    /// # use rls_tenancy::TenancyDeclaration;
    /// assert_eq!(TenancyDeclaration::builtin()?.schema().as_str(), "app");
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn schema(&self) -> &Ident {
        &self.schema
    }

    /// The tenant registry.
    ///
    /// ```
    /// # use rls_tenancy::TenancyDeclaration;
    /// assert_eq!(TenancyDeclaration::builtin()?.registry().table.as_str(), "accounts");
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The tenant tables, in declaration order (parents before children).
    ///
    /// ```
    /// # use rls_tenancy::TenancyDeclaration;
    /// let decl = TenancyDeclaration::builtin()?;
    /// assert!(decl.tenant_tables().iter().all(|t| t.column.as_str() == "account_id"));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn tenant_tables(&self) -> &[TenantTable] {
        &self.tenant_tables
    }

    /// The global tables: read whole by every tenant, declared with `[[global_table]]`.
    ///
    /// ```
    /// # use rls_tenancy::TenancyDeclaration;
    /// let decl = TenancyDeclaration::parse(r#"
    ///     schema = "app"
    ///     [registry]
    ///     table = "accounts"
    ///     readable_columns = ["id", "slug"]
    ///     [[tenant_table]]
    ///     name = "notes"
    ///     column = "account_id"
    ///     [[global_table]]
    ///     name = "plans"
    /// "#)?;
    /// assert_eq!(decl.global_tables()[0].name.as_str(), "plans");
    /// assert!(TenancyDeclaration::builtin()?.global_tables().is_empty());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn global_tables(&self) -> &[GlobalTable] {
        &self.global_tables
    }

    /// The declared tenant table with this name, if any.
    ///
    /// ```
    /// # use rls_tenancy::TenancyDeclaration;
    /// let decl = TenancyDeclaration::builtin()?;
    /// assert!(decl.tenant_table("tasks").is_some());
    /// assert!(decl.tenant_table("accounts").is_none());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn tenant_table(&self, name: &str) -> Option<&TenantTable> {
        self.tenant_tables.iter().find(|t| t.name.as_str() == name)
    }
}
