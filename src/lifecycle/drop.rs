//! [`TenantLifecycle::drop_tenant`]: a tenant and everything it holds, after
//! [`TenantLifecycle::drop_plan`] said what that is.

use std::fmt;

use sqlx::{AssertSqlSafe, PgConnection};

use super::retire::retire;
use super::{LifecycleError, Result, TenantLifecycle, TenantRecord, bind_id};
use crate::migrate::records;
use crate::policy::Strategy;
use crate::tenant::TenantId;

/// What dropping a tenant removes.
///
/// ```
/// use rls_tenancy::{DropPlan, TenantId, TenantRecord};
/// let plan = DropPlan {
///     tenant: TenantRecord { id: TenantId::new(7)?, slug: "acme".parse()?, schema: Some("acme".into()), server: None, database: None, domains: vec![], active: true },
///     tables: vec!["acme.users".into(), "acme.projects".into()],
/// };
/// assert_eq!(
///     plan.to_string(),
///     "tenant acme (id 7): schema acme with every table in it (acme.users, acme.projects) and its registry row"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropPlan {
    /// The tenant.
    pub tenant: TenantRecord,
    /// The tenant tables whose rows go: the schema's, or the tenant's rows of the shared ones.
    pub tables: Vec<String>,
}

impl fmt::Display for DropPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tenant = &self.tenant;
        write!(f, "tenant {} (id {}): ", tenant.slug, tenant.id)?;
        match (&tenant.schema, &tenant.server, &tenant.database) {
            (_, Some(server), Some(database)) => write!(
                f,
                "database {database} on server {server} with every table in it ({})",
                self.tables.join(", ")
            )?,
            (Some(schema), _, _) => write!(
                f,
                "schema {schema} with every table in it ({})",
                self.tables.join(", ")
            )?,
            _ => write!(f, "its rows in {}", self.tables.join(", "))?,
        }
        if !tenant.domains.is_empty() {
            write!(f, ", its domains {}", tenant.domains.join(", "))?;
        }
        write!(f, " and its registry row")
    }
}

impl TenantLifecycle {
    /// What [`TenantLifecycle::drop_tenant`] would remove; changes nothing.
    ///
    /// # Errors
    /// [`crate::LifecycleError::StaticTenant`] for a static tenant of the declaration,
    /// [`crate::LifecycleError::TenantNotFound`]; in the schema mode [`crate::LifecycleError::NoSchema`]
    /// or [`crate::LifecycleError::SchemaMissing`]; a database error.
    pub async fn drop_plan(&self, slug: &crate::TenantSlug) -> Result<DropPlan> {
        self.refuse_static(slug, "drop")?;
        let tenant = self.find(slug).await?;
        let prefix = match self.decl.strategy() {
            Strategy::Schema => {
                let schema = self.existing_schema(&tenant).await?;
                schema.as_str().to_owned()
            }
            _ => self.decl.schema().as_str().to_owned(),
        };
        let tables = self
            .decl
            .tenant_tables()
            .iter()
            .map(|t| format!("{prefix}.{}", t.name.as_str()))
            .collect();
        Ok(DropPlan { tenant, tables })
    }

    /// Drops the tenant in one transaction: in the schema mode its schema with everything in
    /// it; in the RLS mode its rows of every tenant table (children first, inside its own
    /// tenant transaction, so the policies vet every deletion); then its registry row. In the
    /// database mode its registry row goes first (its `NOTIFY` tells every process to stop
    /// routing to it), then, as a move does with an old copy, a second later the runtime
    /// role's `CONNECT` on its database, then the database: its sessions ended, or, when the deploy role may
    /// not end the runtime role's sessions, once the processes' pools have closed their idle
    /// connections (a bounded wait). Running servers stop serving it at once.
    /// Returns what was dropped.
    ///
    /// # Errors
    /// As [`TenantLifecycle::drop_plan`]; in the RLS mode [`crate::LifecycleError::Db`] when no
    /// tenant transaction can be opened (a signed database needs the tenant key); a database
    /// error rolls everything back. In the database mode
    /// [`crate::LifecycleError::DatabaseKept`] when the registry row is gone but the database
    /// could not be dropped.
    #[tracing::instrument(skip_all, fields(slug = slug.as_str()))]
    pub async fn drop_tenant(&self, slug: &crate::TenantSlug) -> Result<DropPlan> {
        let plan = self.drop_plan(slug).await?;
        if let Some((server, database)) = self.placed(&plan.tenant)? {
            let mut tx = self.pool.begin().await?;
            self.delete_registry_row(&mut tx, plan.tenant.id).await?;
            tx.commit().await?;
            retire(server, &database, self.options.runtime_role())
                .await
                .map_err(|err| LifecycleError::DatabaseKept {
                    server: server.name().to_string(),
                    database: database.as_str().to_owned(),
                    reason: err.to_string(),
                })?;
            tracing::info!(id = %plan.tenant.id, "dropped the tenant and its database");
            return Ok(plan);
        }
        match &plan.tenant.schema {
            Some(_) => {
                let schema = self.existing_schema(&plan.tenant).await?;
                let mut tx = self.pool.begin().await?;
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP SCHEMA {schema} CASCADE;\n{}",
                    records::forget_sql(self.decl.schema(), &schema)
                )))
                .execute(&mut *tx)
                .await?;
                self.delete_registry_row(&mut tx, plan.tenant.id).await?;
                tx.commit().await?;
            }
            None => {
                let pool = self.tenant_pool().await?;
                let mut tx = pool.begin(&plan.tenant.scope()).await?;
                for table in self.decl.tenant_tables().iter().rev() {
                    let sql = format!(
                        "DELETE FROM {shared}.{name} WHERE {column} = $1",
                        shared = self.decl.schema(),
                        name = table.name,
                        column = table.column,
                    );
                    bind_id(sqlx::query(AssertSqlSafe(sql)), plan.tenant.id)
                        .execute(&mut *tx)
                        .await?;
                }
                self.delete_registry_row(&mut tx, plan.tenant.id).await?;
                tx.commit().await?;
                pool.close().await;
            }
        }
        tracing::info!(id = %plan.tenant.id, "dropped the tenant");
        Ok(plan)
    }

    /// Deletes the tenant's registry row (its domains go with it, by the foreign key).
    async fn delete_registry_row(&self, conn: &mut PgConnection, id: TenantId) -> Result<()> {
        let registry = self.decl.registry();
        let sql = format!(
            "DELETE FROM {shared}.{table} WHERE {id} = $1",
            shared = self.decl.schema(),
            table = registry.table,
            id = registry.id_column,
        );
        bind_id(sqlx::query(AssertSqlSafe(sql)), id)
            .execute(conn)
            .await?;
        Ok(())
    }
}
