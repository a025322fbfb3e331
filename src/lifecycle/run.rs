//! [`TenantLifecycle::run`]: SQL run in each selected tenant's context, reported per tenant.

use std::fmt;
use std::str::FromStr;

use sqlx::AssertSqlSafe;

use super::{LifecycleError, Result, TenantLifecycle, TenantRecord};
use crate::policy::Strategy;
use crate::tenant::TenantSlug;

/// Which tenants `rls-tenant run --tenants` means: `all`, or a comma-separated list of slugs.
///
/// ```
/// use rls_tenancy::TenantSelector;
/// assert_eq!("all".parse::<TenantSelector>()?, TenantSelector::All);
/// assert_eq!(
///     "acme,globex".parse::<TenantSelector>()?,
///     TenantSelector::Slugs(vec!["acme".parse()?, "globex".parse()?])
/// );
/// assert!("".parse::<TenantSelector>().is_err());
/// assert!("acme,Globex".parse::<TenantSelector>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TenantSelector {
    /// Every registered tenant, suspended ones included.
    All,
    /// These tenants, in this order.
    Slugs(Vec<TenantSlug>),
}

impl FromStr for TenantSelector {
    type Err = LifecycleError;

    fn from_str(input: &str) -> Result<Self> {
        if input == "all" {
            return Ok(Self::All);
        }
        let invalid = |reason: String| LifecycleError::InvalidSelector {
            selector: input.to_owned(),
            reason,
        };
        if input.trim().is_empty() {
            return Err(invalid(
                "give `all` or a comma-separated list of tenant slugs".to_owned(),
            ));
        }
        input
            .split(',')
            .map(|slug| slug.parse().map_err(|e| invalid(format!("{slug:?}: {e}"))))
            .collect::<Result<_>>()
            .map(Self::Slugs)
    }
}

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
    /// Runs `sql` (one or more statements) as the deploy role in each selected tenant's own
    /// tenant transaction: the tenant context set (the policies show and accept that
    /// tenant's rows only) and, in the schema mode, `search_path` at its schema. Each tenant
    /// commits or rolls back on its own; a failure is reported and the others go on.
    ///
    /// # Errors
    /// Before anything runs: [`LifecycleError::TenantNotFound`] for a slug no tenant has,
    /// [`LifecycleError::NoSchema`] or [`LifecycleError::SchemaMissing`] for a selected
    /// tenant in the schema mode, [`LifecycleError::Db`] when no tenant transaction can be
    /// opened (a signed database needs the tenant key).
    #[tracing::instrument(skip_all)]
    pub async fn run(&self, selector: &TenantSelector, sql: &str) -> Result<RunReport> {
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

    /// The tenants `selector` names, each checked to exist.
    async fn select(&self, selector: &TenantSelector) -> Result<Vec<TenantRecord>> {
        match selector {
            TenantSelector::All => self.list().await,
            TenantSelector::Slugs(slugs) => {
                let mut tenants = Vec::with_capacity(slugs.len());
                for slug in slugs {
                    tenants.push(self.find(slug).await?);
                }
                Ok(tenants)
            }
        }
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
