//! [`TenantLifecycle::run`]: SQL run in each selected tenant's context, reported per tenant.

use std::fmt;

use sqlx::AssertSqlSafe;

use super::{LifecycleError, Result, TenantLifecycle, TenantRecord};
use crate::migrate::{MigrateError, SchemaSelector, name_selects};
use crate::policy::Strategy;
use crate::resolve::DomainName;
use crate::tenant::TenantSlug;

/// What happened in one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunOutcome {
    /// The SQL ran and was committed.
    Done {
        /// Rows the last statement affected (or returned).
        rows: u64,
    },
    /// The tenant's transaction failed and was rolled back; the others went on.
    Failed {
        /// The error, in words.
        error: String,
    },
}

/// One line of a [`RunReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRun {
    /// The tenant.
    pub slug: TenantSlug,
    /// What happened.
    pub outcome: RunOutcome,
}

/// What [`TenantLifecycle::run`] did, tenant by tenant.
///
/// ```
/// use rls_tenancy::{RunOutcome, RunReport, TenantRun};
/// let report = RunReport {
///     tenants: vec![
///         TenantRun { slug: "acme".parse()?, outcome: RunOutcome::Done { rows: 2 } },
///         TenantRun { slug: "globex".parse()?, outcome: RunOutcome::Failed { error: "boom".into() } },
///     ],
/// };
/// assert!(report.has_failures());
/// assert_eq!(report.to_string(), "acme: ok (2 rows)\nglobex: FAILED: boom\ntenants: 1 ok, 1 failed");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Every selected tenant, in order.
    pub tenants: Vec<TenantRun>,
}

impl RunReport {
    /// Whether the SQL failed in any tenant (`rls-tenant run` then exits 1).
    ///
    /// ```
    /// assert!(!rls_tenancy::RunReport::default().has_failures());
    /// ```
    pub fn has_failures(&self) -> bool {
        self.failed() > 0
    }

    fn failed(&self) -> usize {
        self.tenants
            .iter()
            .filter(|t| matches!(t.outcome, RunOutcome::Failed { .. }))
            .count()
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for tenant in &self.tenants {
            match &tenant.outcome {
                RunOutcome::Done { rows } => writeln!(f, "{}: ok ({rows} rows)", tenant.slug)?,
                RunOutcome::Failed { error } => writeln!(f, "{}: FAILED: {error}", tenant.slug)?,
            }
        }
        let failed = self.failed();
        write!(
            f,
            "tenants: {} ok, {failed} failed",
            self.tenants.len() - failed
        )
    }
}

impl TenantLifecycle {
    /// Runs `sql` (one or more statements) as the deploy role in each tenant `selector`
    /// selects (read as `rls-migrate --schemas` reads it: `all`, `:static:`, `:dynamic:`, a
    /// schema name, a slug or domain prefix, a comma-separated list), in each tenant's own
    /// tenant transaction: the tenant context set (the policies show and accept that
    /// tenant's rows only) and, in the schema mode, `search_path` at its schema. Each tenant
    /// commits or rolls back on its own; a failure is reported and the others go on.
    ///
    /// # Errors
    /// Before anything runs: [`LifecycleError::InvalidSelector`] for `:shared:`,
    /// [`LifecycleError::Migrate`] ([`MigrateError::NoSchemaMatches`]) for a name that selects
    /// no tenant,
    /// [`LifecycleError::NoSchema`] or [`LifecycleError::SchemaMissing`] for a selected
    /// tenant in the schema mode, [`LifecycleError::Db`] when no tenant transaction can be
    /// opened (a signed database needs the tenant key).
    #[tracing::instrument(skip_all)]
    pub async fn run(&self, selector: &SchemaSelector, sql: &str) -> Result<RunReport> {
        let tenants = self.select(selector).await?;
        if self.decl.strategy() == Strategy::Schema {
            for tenant in &tenants {
                self.existing_schema(tenant).await?;
            }
        }
        let pool = self.tenant_pool().await?;
        let mut report = RunReport::default();
        for tenant in tenants {
            let outcome = match run_one(&pool, &tenant, sql).await {
                Ok(rows) => RunOutcome::Done { rows },
                Err(error) => {
                    tracing::warn!(slug = tenant.slug.as_str(), %error, "the SQL failed in a tenant");
                    RunOutcome::Failed {
                        error: error.to_string(),
                    }
                }
            };
            report.tenants.push(TenantRun {
                slug: tenant.slug,
                outcome,
            });
        }
        pool.close().await;
        Ok(report)
    }

    /// The tenants `selector` selects, by slug; each name must select one.
    async fn select(&self, selector: &SchemaSelector) -> Result<Vec<TenantRecord>> {
        let tenants = self.list().await?;
        let statics = self.decl.static_tenants();
        let is_static = |t: &TenantRecord| statics.iter().any(|s| s.name == t.slug);
        let mut chosen = vec![false; tenants.len()];
        for part in selector.parts() {
            if *part == SchemaSelector::Shared {
                return Err(LifecycleError::InvalidSelector {
                    selector: selector.to_string(),
                    reason: "the shared schema is no tenant's; select tenants (all, :static:, :dynamic:, a slug, schema or domain prefix)".to_owned(),
                });
            }
            let picks = |t: &TenantRecord| match part {
                SchemaSelector::All => true,
                SchemaSelector::Static => is_static(t),
                SchemaSelector::Dynamic => !is_static(t),
                SchemaSelector::Shared | SchemaSelector::Any(_) => false,
                SchemaSelector::Name(name) => {
                    let declared = statics
                        .iter()
                        .filter(|s| s.name == t.slug)
                        .flat_map(|s| s.domains.iter().map(DomainName::as_str));
                    name_selects(
                        name,
                        t.schema.as_deref(),
                        t.slug.as_str(),
                        t.domains.iter().map(String::as_str).chain(declared),
                    )
                }
            };
            let mut any = false;
            for (tenant, chosen) in tenants.iter().zip(chosen.iter_mut()) {
                if picks(tenant) {
                    *chosen = true;
                    any = true;
                }
            }
            if let (SchemaSelector::Name(name), false) = (part, any) {
                return Err(MigrateError::NoSchemaMatches {
                    selector: name.clone(),
                }
                .into());
            }
        }
        Ok(tenants
            .into_iter()
            .zip(chosen)
            .filter_map(|(tenant, chosen)| chosen.then_some(tenant))
            .collect())
    }
}

async fn run_one(pool: &crate::TenantPool, tenant: &TenantRecord, sql: &str) -> Result<u64> {
    let mut tx = pool.begin(&tenant.scope()).await?;
    let done = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}
