//! [`TenantLifecycle::create`]: a new tenant, whole or not at all.

use sqlx::{AssertSqlSafe, PgConnection};

use super::{LifecycleError, Result, TenantLifecycle, TenantRecord, slug_conflict};
use crate::connect::ServerName;
use crate::migrate::{grants, schemas};
use crate::placement::SchemaName;
use crate::policy::{Ident, Strategy};
use crate::resolve::{DomainName, add_domain};
use crate::tenant::TenantSlug;

/// What [`TenantLifecycle::create`] makes: a slug, and optionally a display name (for a
/// registry with a `name` column; default the slug) and, in the schema mode, the schema name
/// (default the slug with `-` written `_`).
///
/// ```
/// use rls_tenancy::NewTenant;
/// let new = NewTenant::new("acme".parse()?).name("Acme Corp").schema("acme_corp");
/// assert_eq!(new.slug().as_str(), "acme");
/// # Ok::<(), rls_tenancy::TenantError>(())
/// ```
#[derive(Debug, Clone)]
pub struct NewTenant {
    pub(super) slug: TenantSlug,
    name: Option<String>,
    schema: Option<String>,
    pub(super) server: Option<ServerName>,
    pub(super) domains: Vec<DomainName>,
}

impl NewTenant {
    /// A tenant with slug `slug` and the defaults.
    ///
    /// ```
    /// # use rls_tenancy::NewTenant;
    /// let new = NewTenant::new("acme".parse()?);
    /// # Ok::<(), rls_tenancy::TenantError>(())
    /// ```
    pub fn new(slug: TenantSlug) -> Self {
        Self {
            slug,
            name: None,
            schema: None,
            server: None,
            domains: Vec::new(),
        }
    }

    /// The display name written to the registry's `name` column, when it has one.
    ///
    /// ```
    /// # use rls_tenancy::NewTenant;
    /// let new = NewTenant::new("acme".parse()?).name("Acme Corp");
    /// # Ok::<(), rls_tenancy::TenantError>(())
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The schema the tenant gets in the schema mode, instead of the one named after its
    /// slug; validated as a [`SchemaName`] when the tenant is created.
    ///
    /// ```
    /// # use rls_tenancy::NewTenant;
    /// let new = NewTenant::new("7up".parse()?).schema("seven_up");
    /// # Ok::<(), rls_tenancy::TenantError>(())
    /// ```
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// The server the tenant's database goes to in the database mode, instead of the one
    /// with the fewest tenants.
    ///
    /// ```
    /// # use rls_tenancy::NewTenant;
    /// let new = NewTenant::new("acme".parse()?).server("eu1".parse()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn server(mut self, server: ServerName) -> Self {
        self.server = Some(server);
        self
    }

    /// A domain of the tenant's own (the first one given is its primary), added in the same
    /// transaction; a domain another tenant has refuses the whole create.
    ///
    /// ```
    /// # use rls_tenancy::NewTenant;
    /// let new = NewTenant::new("acme".parse()?).domain("acme.example".parse()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn domain(mut self, domain: DomainName) -> Self {
        self.domains.push(domain);
        self
    }

    /// The slug.
    ///
    /// ```
    /// # use rls_tenancy::NewTenant;
    /// assert_eq!(NewTenant::new("acme".parse()?).slug().as_str(), "acme");
    /// # Ok::<(), rls_tenancy::TenantError>(())
    /// ```
    pub fn slug(&self) -> &TenantSlug {
        &self.slug
    }
}

impl TenantLifecycle {
    /// Creates a tenant in one transaction: in the RLS mode its registry row; in the schema
    /// mode also its schema with the tenant migrations applied and recorded, the policies on
    /// its tenant tables and the runtime role's grants, so that `rls-migrate` finds it
    /// current; in the database mode its database on a server (see
    /// [`TenantLifecycle::servers`]), the row committed once the database is made. Nothing is
    /// written when any part fails.
    ///
    /// # Errors
    /// In the database mode: [`LifecycleError::Connect`] for an unknown or unreachable server
    /// (or none configured), [`LifecycleError::ServerFull`] / [`LifecycleError::ServersFull`],
    /// [`LifecycleError::Placement`] for a database name that is not a safe identifier,
    /// [`LifecycleError::DatabaseTaken`]. In every mode:
    /// [`LifecycleError::SlugTaken`], [`LifecycleError::SchemaTaken`],
    /// [`LifecycleError::Placement`] for a reserved or malformed schema name,
    /// [`LifecycleError::NoTenantMigrations`] in the schema mode without tenant migrations,
    /// [`LifecycleError::Domain`] for a domain another tenant has (or a static tenant's, or
    /// another tenant's subdomain under the [base domain](TenantLifecycle::base_domain));
    /// a database error (a failing migration) rolls everything back.
    #[tracing::instrument(skip_all, fields(slug = new.slug.as_str()))]
    pub async fn create(&self, new: &NewTenant) -> Result<TenantRecord> {
        if self.decl.strategy() == Strategy::Database {
            return self.create_in_database(new).await;
        }
        let shared = self.decl.schema();
        let schema = match self.decl.strategy() {
            Strategy::Schema => Some(match &new.schema {
                Some(name) => SchemaName::parse(name, shared)?,
                None => SchemaName::for_slug(&new.slug, shared)?,
            }),
            _ => None,
        };
        let migrator = match schema {
            Some(_) => Some(
                self.tenant_migrator
                    .as_ref()
                    .ok_or(LifecycleError::NoTenantMigrations)?,
            ),
            None => None,
        };
        for domain in &new.domains {
            self.refuse_other_subdomain(&new.slug, domain)?;
        }
        let mut tx = self.pool.begin().await?;
        self.check_free(&mut tx, &new.slug, schema.as_ref()).await?;
        let registry = self.decl.registry();
        let place: Vec<(&Ident, &str)> = schema
            .iter()
            .map(|schema| (&registry.schema_column, schema.as_str()))
            .collect();
        let id = self.insert(&mut tx, new, &place).await?;
        if let (Some(schema), Some(migrator)) = (&schema, migrator) {
            let script = schemas::new_schema_script(migrator, &self.decl, schema, &self.context);
            sqlx::raw_sql(AssertSqlSafe(script))
                .execute(&mut *tx)
                .await?;
            grants::grant_tenant_tables(
                &mut tx,
                schema.ident(),
                &self.decl,
                &self.options.runtime_role,
            )
            .await?;
        }
        for domain in &new.domains {
            add_domain(&mut tx, &self.decl, &new.slug, domain).await?;
        }
        tx.commit().await?;
        tracing::info!(id, "created the tenant");
        Ok(TenantRecord {
            id: self.decl.key_type().parse_id(&id)?,
            slug: new.slug.clone(),
            schema: schema.map(|s| s.as_str().to_owned()),
            server: None,
            database: None,
            domains: new.domains.iter().map(ToString::to_string).collect(),
            active: true,
        })
    }

    /// Refuses a slug another tenant has, and a schema that exists or another tenant names;
    /// one round trip.
    pub(super) async fn check_free(
        &self,
        conn: &mut PgConnection,
        slug: &TenantSlug,
        schema: Option<&SchemaName>,
    ) -> Result<()> {
        let registry = self.decl.registry();
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM {shared}.{table} WHERE {slug_column} = $1),
                    $2::text IS NOT NULL
                    AND (to_regnamespace($2) IS NOT NULL
                         OR EXISTS (SELECT 1 FROM {shared}.{table} WHERE {column}::text = $3))",
            shared = self.decl.schema(),
            table = registry.table,
            slug_column = registry.slug_column,
            column = match schema {
                Some(_) => registry.schema_column.to_string(),
                None => "NULL".to_owned(),
            },
        );
        let (slug_taken, schema_taken): (bool, bool) = sqlx::query_as(AssertSqlSafe(sql))
            .bind(slug.as_str())
            .bind(schema.map(ToString::to_string))
            .bind(schema.map(SchemaName::as_str))
            .fetch_one(conn)
            .await?;
        if slug_taken {
            return Err(LifecycleError::SlugTaken {
                slug: slug.to_string(),
            });
        }
        match schema {
            Some(schema) if schema_taken => Err(LifecycleError::SchemaTaken {
                schema: schema.as_str().to_owned(),
            }),
            _ => Ok(()),
        }
    }

    /// The registry row, with the placement columns `place` (the schema, or the server and
    /// database); its id as text.
    pub(super) async fn insert(
        &self,
        conn: &mut PgConnection,
        new: &NewTenant,
        place: &[(&Ident, &str)],
    ) -> Result<String> {
        let registry = self.decl.registry();
        let mut columns = vec![registry.slug_column.to_string()];
        let mut values = vec![new.slug.as_str().to_owned()];
        for (column, value) in place {
            columns.push(column.to_string());
            values.push((*value).to_owned());
        }
        if self.has_name {
            columns.push("name".to_owned());
            values.push(new.name.clone().unwrap_or_else(|| new.slug.to_string()));
        }
        let placeholders: Vec<String> = (1..=values.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "INSERT INTO {shared}.{table} ({columns}) VALUES ({placeholders}) RETURNING {id}::text",
            shared = self.decl.schema(),
            table = registry.table,
            columns = columns.join(", "),
            placeholders = placeholders.join(", "),
            id = registry.id_column,
        );
        let mut query = sqlx::query_scalar(AssertSqlSafe(sql));
        for value in values {
            query = query.bind(value);
        }
        query
            .fetch_one(conn)
            .await
            .map_err(|e| slug_conflict(e, &new.slug))
    }
}
