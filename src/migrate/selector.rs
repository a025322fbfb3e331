//! [`SchemaSelector`]: which schemas `rls-migrate --schemas` (and `rls-tenant run
//! --tenants`) work on, as pgschemas users type it; [`select_schemas`] turns it into the
//! schemas themselves, before anything is changed.

use std::fmt;
use std::str::FromStr;

use sqlx::{AssertSqlSafe, PgConnection};

use super::{MigrateError, Result};
use crate::placement::SchemaName;
use crate::policy::{StaticTenant, TenancyDeclaration};

/// Which schemas a run works on:
///
/// | selector | schemas |
/// |---|---|
/// | `all` (the default) | the shared schema, every static and every dynamic tenant's |
/// | `:shared:` | the shared schema only |
/// | `:static:` | the static tenants' (`[[static_tenant]]` in the declaration) |
/// | `:dynamic:` | the tenants the registry holds that are not static |
/// | a schema name | that schema (the shared one, or a tenant's) |
/// | a domain prefix | every tenant one of whose domains (or whose slug) starts with it |
///
/// A name matching no schema, no domain and no slug is refused, as is any other `:word:`.
///
/// ```
/// use rls_tenancy::SchemaSelector;
/// assert_eq!("all".parse::<SchemaSelector>()?, SchemaSelector::All);
/// assert_eq!(":dynamic:".parse::<SchemaSelector>()?, SchemaSelector::Dynamic);
/// assert_eq!("blog.exa".parse::<SchemaSelector>()?, SchemaSelector::Name("blog.exa".into()));
/// let err = ":tenants:".parse::<SchemaSelector>().unwrap_err();
/// assert!(err.to_string().starts_with("unknown schema selector \":tenants:\""));
/// # Ok::<(), rls_tenancy::MigrateError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaSelector {
    /// Every schema.
    #[default]
    All,
    /// The shared schema.
    Shared,
    /// The static tenants' schemas.
    Static,
    /// The dynamic tenants' schemas.
    Dynamic,
    /// An exact schema name or a domain prefix.
    Name(String),
}

impl FromStr for SchemaSelector {
    type Err = MigrateError;

    fn from_str(s: &str) -> Result<Self> {
        let unknown = || MigrateError::UnknownSelector {
            selector: crate::tenant::echo(s),
        };
        match s {
            "all" | ":all:" => Ok(Self::All),
            ":shared:" => Ok(Self::Shared),
            ":static:" => Ok(Self::Static),
            ":dynamic:" => Ok(Self::Dynamic),
            name if !name.is_empty()
                && name.len() <= 253
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                }) =>
            {
                Ok(Self::Name(name.to_owned()))
            }
            _ => Err(unknown()),
        }
    }
}

impl fmt::Display for SchemaSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Shared => f.write_str(":shared:"),
            Self::Static => f.write_str(":static:"),
            Self::Dynamic => f.write_str(":dynamic:"),
            Self::Name(name) => f.write_str(name),
        }
    }
}

/// One tenant schema a run works on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedSchema {
    /// The schema.
    pub schema: SchemaName,
    /// The static tenant it belongs to, if it is one.
    pub static_tenant: Option<StaticTenant>,
}

/// The schemas a [`SchemaSelector`] names: whether the shared schema is among them, and the
/// tenant schemas, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaSelection {
    /// Whether the shared schema (migrations, policies, grants) is selected.
    pub shared: bool,
    /// The tenant schemas, sorted by name.
    pub tenants: Vec<SelectedSchema>,
}

impl SchemaSelection {
    /// The selected tenant schemas' names.
    ///
    /// ```
    /// assert!(rls_tenancy::SchemaSelection::default().names().is_empty());
    /// ```
    pub fn names(&self) -> Vec<&str> {
        self.tenants.iter().map(|t| t.schema.as_str()).collect()
    }
}

/// Resolves `selector` against `decl` and the registry `conn` reads (as the deploy role):
/// the static tenants from the declaration, the dynamic ones from the registry's schema
/// column (less the static tenants' schemas), domains from the domains table. Reads only.
/// The registry is not read for `all` before the shared schema exists, nor for `:shared:`.
///
/// # Errors
/// [`MigrateError::NoSchemaMatches`] when a name matches nothing;
/// [`MigrateError::Placement`] for a registry schema name that cannot be a tenant's; else
/// the database's error.
///
/// ```no_run
/// # use rls_tenancy::{SchemaSelector, TenancyDeclaration, select_schemas};
/// # async fn demo(conn: &mut sqlx::PgConnection) -> rls_tenancy::Result<()> {
/// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?;
/// let selection = select_schemas(conn, &decl, &":dynamic:".parse()?).await?;
/// println!("{:?}", selection.names());
/// # Ok(()) }
/// ```
pub async fn select_schemas(
    conn: &mut PgConnection,
    decl: &TenancyDeclaration,
    selector: &SchemaSelector,
) -> Result<SchemaSelection> {
    let shared = decl.schema();
    let statics = || -> Result<Vec<SelectedSchema>> {
        decl.static_tenants()
            .iter()
            .map(|t| {
                Ok(SelectedSchema {
                    schema: SchemaName::parse(t.schema.as_str(), shared)?,
                    static_tenant: Some(t.clone()),
                })
            })
            .collect()
    };
    let mut selection = match selector {
        SchemaSelector::Shared => SchemaSelection {
            shared: true,
            tenants: Vec::new(),
        },
        SchemaSelector::Static => SchemaSelection {
            shared: false,
            tenants: statics()?,
        },
        SchemaSelector::All | SchemaSelector::Dynamic => {
            let mut tenants = if *selector == SchemaSelector::All {
                statics()?
            } else {
                Vec::new()
            };
            tenants.extend(dynamic(conn, decl, None).await?);
            SchemaSelection {
                shared: *selector == SchemaSelector::All,
                tenants,
            }
        }
        SchemaSelector::Name(name) => {
            let mut tenants: Vec<SelectedSchema> = statics()?
                .into_iter()
                .filter(|s| {
                    s.schema.as_str() == name
                        || s.static_tenant.as_ref().is_some_and(|t| {
                            t.name.as_str().starts_with(name.as_str())
                                || t.domains
                                    .iter()
                                    .any(|d| d.as_str().starts_with(name.as_str()))
                        })
                })
                .collect();
            tenants.extend(dynamic(conn, decl, Some(name)).await?);
            let selection = SchemaSelection {
                shared: name == shared.as_str(),
                tenants,
            };
            if !selection.shared && selection.tenants.is_empty() {
                return Err(MigrateError::NoSchemaMatches {
                    selector: name.clone(),
                });
            }
            selection
        }
    };
    selection.tenants.sort_by(|a, b| a.schema.cmp(&b.schema));
    selection.tenants.dedup_by(|a, b| a.schema == b.schema);
    Ok(selection)
}

/// The registry's tenant schemas that are not static tenants', all or those `name` matches
/// (schema, slug prefix, domain prefix). None before the registry exists.
async fn dynamic(
    conn: &mut PgConnection,
    decl: &TenancyDeclaration,
    name: Option<&str>,
) -> Result<Vec<SelectedSchema>> {
    let registry = decl.registry();
    let schema = decl.schema();
    let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(format!("{schema}.{}", registry.table))
        .fetch_one(&mut *conn)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    let by_domain = match &registry.domains {
        Some(d) => format!(
            "OR EXISTS (SELECT 1 FROM {schema}.{table} d WHERE d.{tenant} = r.{id}
                          AND starts_with(d.{domain}::text, $1))",
            table = d.table,
            tenant = d.tenant_column,
            id = registry.id_column,
            domain = d.domain_column,
        ),
        None => String::new(),
    };
    let statics: Vec<String> = decl
        .static_tenants()
        .iter()
        .map(|t| t.schema.as_str().to_owned())
        .collect();
    let names: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT r.{column}::text FROM {schema}.{table} r
          WHERE r.{column} IS NOT NULL AND NOT (r.{column}::text = ANY ($2))
            AND ($1::text IS NULL OR r.{column}::text = $1
                 OR starts_with(r.{slug}::text, $1) {by_domain})
          ORDER BY 1",
        column = registry.schema_column,
        table = registry.table,
        slug = registry.slug_column,
    )))
    .bind(name)
    .bind(&statics)
    .fetch_all(&mut *conn)
    .await?;
    names
        .iter()
        .map(|n| {
            Ok(SelectedSchema {
                schema: SchemaName::parse(n, schema)?,
                static_tenant: None,
            })
        })
        .collect()
}
