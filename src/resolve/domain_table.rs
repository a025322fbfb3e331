//! The domains table's writes and reads, as the deploy role: [`add_domain`],
//! [`remove_domain`], [`tenant_domains`], [`all_domains`]. Each runs on the caller's
//! connection, so `rls-tenant create --domain D` adds the tenant, its schema and its domains
//! in one transaction; a refusal changes nothing. Every change notifies the registry's
//! listeners (the trigger `rls-migrate` installs), so running servers route it at once.

use sqlx::{AssertSqlSafe, PgConnection};

use super::{DomainError, DomainName};
use crate::policy::{DomainsTable, TenancyDeclaration};
use crate::tenant::TenantSlug;

/// One of a tenant's domains.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TenantDomain {
    /// The domain.
    #[serde(serialize_with = "as_str")]
    pub domain: DomainName,
    /// Whether it is the tenant's primary domain (the first one added is).
    pub primary: bool,
}

fn as_str<S: serde::Serializer>(domain: &DomainName, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(domain.as_str())
}

/// The domains table's statements, built from the declaration's validated identifiers.
struct Statements {
    insert: String,
    delete: String,
    promote: String,
    list: String,
    owner: String,
}

impl Statements {
    fn new(decl: &TenancyDeclaration) -> Result<Self, DomainError> {
        let DomainsTable {
            table,
            domain_column: col,
            tenant_column: tenant,
            primary_column: primary,
        } = decl
            .registry()
            .domains
            .as_ref()
            .ok_or(DomainError::NoDomainsTable)?;
        let registry = decl.registry();
        let schema = decl.schema();
        let (id, slug) = (&registry.id_column, &registry.slug_column);
        let d = format!("{schema}.{table}");
        let r = format!("{schema}.{}", registry.table);
        let joined = format!("{d} d JOIN {r} r ON r.{id} = d.{tenant}");
        Ok(Self {
            insert: format!(
                "INSERT INTO {d} ({col}, {tenant}, {primary})
                 SELECT $1, r.{id}, NOT EXISTS (SELECT 1 FROM {d} o
                                                 WHERE o.{tenant} = r.{id} AND o.{primary})
                   FROM {r} r WHERE r.{slug} = $2
                 ON CONFLICT ({col}) DO NOTHING
                 RETURNING {primary}"
            ),
            delete: format!(
                "WITH gone AS (DELETE FROM {d} WHERE {col} = $1 RETURNING {tenant}, {primary})
                 SELECT r.{slug}::text, g.{tenant}::text, g.{primary} FROM gone g
                   JOIN {r} r ON r.{id} = g.{tenant}"
            ),
            promote: format!(
                "UPDATE {d} SET {primary} = true
                  WHERE {col} = (SELECT min({col}) FROM {d} WHERE {tenant}::text = $1)"
            ),
            list: format!(
                "SELECT r.{slug}::text, d.{col}::text, d.{primary} FROM {joined}
                  WHERE $1::text IS NULL OR r.{slug} = $1
                  ORDER BY 1, 3 DESC, 2"
            ),
            owner: format!("SELECT r.{slug}::text FROM {joined} WHERE d.{col} = $1"),
        })
    }
}

/// Gives tenant `slug` the domain `domain`; the tenant's first domain becomes its primary
/// one. Returns whether it is primary.
///
/// # Errors
/// [`DomainError::Taken`] when a tenant (this one included) already has the domain,
/// [`DomainError::StaticDomain`] when a static tenant of the declaration has it,
/// [`DomainError::UnknownTenant`] when no tenant has the slug,
/// [`DomainError::NoDomainsTable`] when the declaration keeps no domains, else
/// [`DomainError::Database`]. Nothing is written then.
///
/// ```no_run
/// # use rls_tenancy::{TenancyDeclaration, add_domain};
/// # async fn demo(conn: &mut sqlx::PgConnection) -> Result<(), Box<dyn std::error::Error>> {
/// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?;
/// let primary = add_domain(conn, &decl, &"acme".parse()?, &"crm.acme.test".parse()?).await?;
/// # Ok(()) }
/// ```
pub async fn add_domain(
    conn: &mut PgConnection,
    decl: &TenancyDeclaration,
    slug: &TenantSlug,
    domain: &DomainName,
) -> Result<bool, DomainError> {
    let sql = Statements::new(decl)?;
    if let Some(tenant) = decl.static_tenant_of_domain(domain.as_str()) {
        return Err(DomainError::StaticDomain {
            domain: domain.to_string(),
            tenant: tenant.name.to_string(),
        });
    }
    let inserted: Option<bool> = sqlx::query_scalar(AssertSqlSafe(sql.insert))
        .bind(domain.as_str())
        .bind(slug.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(primary) = inserted {
        return Ok(primary);
    }
    let owner: Option<String> = sqlx::query_scalar(AssertSqlSafe(sql.owner))
        .bind(domain.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    match owner {
        Some(owner) => Err(DomainError::Taken {
            domain: domain.to_string(),
            owner,
        }),
        None => Err(DomainError::UnknownTenant {
            slug: slug.to_string(),
        }),
    }
}

/// Takes `domain` from whichever tenant has it; returns that tenant's slug. When it was the
/// primary domain, the first of the tenant's remaining domains (by name) becomes primary.
///
/// # Errors
/// [`DomainError::UnknownDomain`] when no tenant has it, [`DomainError::NoDomainsTable`],
/// else [`DomainError::Database`].
///
/// ```no_run
/// # use rls_tenancy::{TenancyDeclaration, remove_domain};
/// # async fn demo(conn: &mut sqlx::PgConnection) -> Result<(), Box<dyn std::error::Error>> {
/// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?;
/// let owner = remove_domain(conn, &decl, &"crm.acme.test".parse()?).await?;
/// println!("removed from {owner}");
/// # Ok(()) }
/// ```
pub async fn remove_domain(
    conn: &mut PgConnection,
    decl: &TenancyDeclaration,
    domain: &DomainName,
) -> Result<TenantSlug, DomainError> {
    let sql = Statements::new(decl)?;
    let removed: Option<(String, String, bool)> = sqlx::query_as(AssertSqlSafe(sql.delete))
        .bind(domain.as_str())
        .fetch_optional(&mut *conn)
        .await?;
    let (slug, tenant_id, was_primary) = removed.ok_or_else(|| DomainError::UnknownDomain {
        domain: domain.to_string(),
    })?;
    if was_primary {
        sqlx::query(AssertSqlSafe(sql.promote))
            .bind(&tenant_id)
            .execute(&mut *conn)
            .await?;
    }
    slug.parse().map_err(|_| DomainError::UnknownDomain {
        domain: domain.to_string(),
    })
}

/// The domains of tenant `slug`, primary first, then by name (empty for a tenant without
/// any, or for a slug no tenant has).
///
/// # Errors
/// [`DomainError::NoDomainsTable`], else [`DomainError::Database`].
///
/// ```no_run
/// # use rls_tenancy::{TenancyDeclaration, tenant_domains};
/// # async fn demo(conn: &mut sqlx::PgConnection) -> Result<(), Box<dyn std::error::Error>> {
/// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?;
/// for d in tenant_domains(conn, &decl, &"acme".parse()?).await? {
///     println!("{}{}", d.domain, if d.primary { " (primary)" } else { "" });
/// }
/// # Ok(()) }
/// ```
pub async fn tenant_domains(
    conn: &mut PgConnection,
    decl: &TenancyDeclaration,
    slug: &TenantSlug,
) -> Result<Vec<TenantDomain>, DomainError> {
    Ok(all_domains(conn, decl, Some(slug))
        .await?
        .into_iter()
        .map(|(_, d)| d)
        .collect())
}

/// Every tenant's domains as `(slug, domain)`, by slug, primary first, then by name; only
/// `only`'s when given. For `rls-tenant list`.
///
/// # Errors
/// [`DomainError::NoDomainsTable`], else [`DomainError::Database`].
///
/// ```no_run
/// # use rls_tenancy::{TenancyDeclaration, all_domains};
/// # async fn demo(conn: &mut sqlx::PgConnection) -> Result<(), Box<dyn std::error::Error>> {
/// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?;
/// for (slug, d) in all_domains(conn, &decl, None).await? {
///     println!("{slug}: {}", d.domain);
/// }
/// # Ok(()) }
/// ```
pub async fn all_domains(
    conn: &mut PgConnection,
    decl: &TenancyDeclaration,
    only: Option<&TenantSlug>,
) -> Result<Vec<(TenantSlug, TenantDomain)>, DomainError> {
    let sql = Statements::new(decl)?;
    let rows: Vec<(String, String, bool)> = sqlx::query_as(AssertSqlSafe(sql.list))
        .bind(only.map(TenantSlug::as_str))
        .fetch_all(&mut *conn)
        .await?;
    // What the database holds is re-validated; a row that no longer fits the rules is left
    // out rather than shown as if it routed.
    Ok(rows
        .into_iter()
        .filter_map(|(slug, domain, primary)| {
            Some((
                slug.parse().ok()?,
                TenantDomain {
                    domain: domain.parse().ok()?,
                    primary,
                },
            ))
        })
        .collect())
}
