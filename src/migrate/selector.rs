//! [`SchemaSelector`]: which schemas `rls-migrate --schemas` and which tenants `rls-tenant
//! run --tenants` work on, as pgschemas users type it; [`select_schemas`] turns it into the
//! schemas themselves, `TenantLifecycle::run` into tenants, before anything is changed.

use std::fmt;
use std::str::FromStr;

use sqlx::{AssertSqlSafe, PgConnection};

use super::{MigrateError, Result};
use crate::placement::SchemaName;
use crate::policy::{StaticTenant, TenancyDeclaration};
use crate::resolve::DomainName;

/// Which schemas (`rls-migrate --schemas`) or tenants (`rls-tenant run --tenants`) a run
/// works on; one type for both, so both commands read a selector the same way:
///
/// | selector | schemas / tenants |
/// |---|---|
/// | `all` (the default) | the shared schema, every static and every dynamic tenant's / every tenant |
/// | `:shared:` | the shared schema only / refused: it is no tenant's |
/// | `:static:` | the static tenants' (`[[static_tenant]]` in the declaration) |
/// | `:dynamic:` | the tenants the registry holds that are not static |
/// | a schema name | that schema (the shared one, or a tenant's) |
/// | a slug or domain prefix | every tenant whose slug or one of whose domains starts with it |
/// | `a,b,…` | every schema or tenant any of them selects |
///
/// A name matching no schema, no domain and no slug is refused, as is any other `:word:`.
///
/// ```
/// use rls_tenancy::SchemaSelector;
/// assert_eq!("all".parse::<SchemaSelector>()?, SchemaSelector::All);
/// assert_eq!(":dynamic:".parse::<SchemaSelector>()?, SchemaSelector::Dynamic);
/// assert_eq!("blog.exa".parse::<SchemaSelector>()?, SchemaSelector::Name("blog.exa".into()));
/// assert_eq!(
///     "acme,:static:".parse::<SchemaSelector>()?,
///     SchemaSelector::Any(vec![SchemaSelector::Name("acme".into()), SchemaSelector::Static])
/// );
/// assert!("acme,,".parse::<SchemaSelector>().is_err());
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
    /// An exact schema name, or a slug or domain prefix.
    Name(String),
    /// Any of these (none of them a list), from a comma-separated list.
    Any(Vec<SchemaSelector>),
}

impl FromStr for SchemaSelector {
    type Err = MigrateError;

    fn from_str(s: &str) -> Result<Self> {
        let unknown = || MigrateError::UnknownSelector {
            selector: crate::tenant::echo(s),
        };
        if s.contains(',') {
            return s
                .split(',')
                .map(|part| Self::one(part).ok_or_else(unknown))
                .collect::<Result<_>>()
                .map(Self::Any);
        }
        Self::one(s).ok_or_else(unknown)
    }
}

impl SchemaSelector {
    /// One selector, not a list.
    fn one(s: &str) -> Option<Self> {
        match s {
            "all" | ":all:" => Some(Self::All),
            ":shared:" => Some(Self::Shared),
            ":static:" => Some(Self::Static),
            ":dynamic:" => Some(Self::Dynamic),
            name if !name.is_empty()
                && name.len() <= 253
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                }) =>
            {
                Some(Self::Name(name.to_owned()))
            }
            _ => None,
        }
    }

    /// The selectors this one is made of, none of them a list: the list's, or itself.
    pub(crate) fn parts(&self) -> Vec<&SchemaSelector> {
        match self {
            Self::Any(parts) => parts.iter().flat_map(SchemaSelector::parts).collect(),
            one => vec![one],
        }
    }
}

/// Whether name selector `name` selects a tenant: its schema is `name`, or its slug or one
/// of its domains starts with it. The one reading of a name for static tenants, for
/// `rls-tenant run` (and, in SQL, for the registry's dynamic tenants in [`select_schemas`]).
pub(crate) fn name_selects<'d>(
    name: &str,
    schema: Option<&str>,
    slug: &str,
    mut domains: impl Iterator<Item = &'d str>,
) -> bool {
    schema == Some(name) || slug.starts_with(name) || domains.any(|d| d.starts_with(name))
}

impl fmt::Display for SchemaSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => f.write_str("all"),
            Self::Shared => f.write_str(":shared:"),
            Self::Static => f.write_str(":static:"),
            Self::Dynamic => f.write_str(":dynamic:"),
            Self::Name(name) => f.write_str(name),
            Self::Any(parts) => {
                let parts: Vec<String> = parts.iter().map(ToString::to_string).collect();
                f.write_str(&parts.join(","))
            }
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
    let mut selection = SchemaSelection::default();
    for part in selector.parts() {
        let one = select_one(conn, decl, part).await?;
        selection.shared |= one.shared;
        selection.tenants.extend(one.tenants);
    }
    selection.tenants.sort_by(|a, b| a.schema.cmp(&b.schema));
    selection.tenants.dedup_by(|a, b| a.schema == b.schema);
    Ok(selection)
}

/// [`select_schemas`] for a selector that is not a list.
async fn select_one(
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
    Ok(match selector {
        SchemaSelector::Shared => SchemaSelection {
            shared: true,
            tenants: Vec::new(),
        },
        // `parts` leaves no list.
        SchemaSelector::Any(_) => SchemaSelection::default(),
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
                    s.static_tenant.as_ref().is_some_and(|t| {
                        name_selects(
                            name,
                            Some(s.schema.as_str()),
                            t.name.as_str(),
                            t.domains.iter().map(DomainName::as_str),
                        )
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
    })
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
