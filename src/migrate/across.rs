//! [`migrate_schemas`]: the tenant migrations across every tenant schema, in parallel over a
//! bounded number of connections, a batch of schemas per transaction with each schema's
//! migrations in a savepoint of its own (see `batch`).

use std::collections::{HashMap, HashSet};
use std::fmt;

use futures_util::StreamExt;
use sqlx::migrate::Migrator;
use sqlx::{AssertSqlSafe, Connection, PgPool};

use super::batch::{BatchPlan, MAX_BATCH};
use super::current::current_schemas;
use super::schemas::SchemaChanges;
use super::selector::{SchemaSelection, SchemaSelector, SelectedSchema, select_schemas};
use super::{MigrateOptions, Result, records};
use crate::placement::SchemaName;
use crate::policy::{TenancyDeclaration, TenantContext};

/// What happened to one tenant schema.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SchemaOutcome {
    /// Migrations were applied, or policies or grants (re)installed.
    Migrated {
        /// The versions applied.
        applied: Vec<i64>,
    },
    /// Nothing to do.
    Current,
    /// The schema's transaction failed and was rolled back; the others went on.
    Failed {
        /// The error, in words.
        error: String,
    },
}

/// One line of a [`SchemasReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaReport {
    /// The tenant schema.
    pub schema: String,
    /// What happened to it.
    pub outcome: SchemaOutcome,
}

/// What [`migrate_schemas`] did, schema by schema (sorted by name).
///
/// ```
/// use rls_tenancy::{SchemaOutcome, SchemaReport, SchemasReport};
/// let report = SchemasReport {
///     schemas: vec![
///         SchemaReport { schema: "acme".into(), outcome: SchemaOutcome::Current },
///         SchemaReport { schema: "globex".into(), outcome: SchemaOutcome::Failed { error: "boom".into() } },
///     ],
/// };
/// assert!(report.has_failures());
/// assert!(report.to_string().ends_with("tenant schemas: 0 migrated, 1 already current, 1 failed"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemasReport {
    /// Every schema the run looked at.
    pub schemas: Vec<SchemaReport>,
}

impl SchemasReport {
    /// Whether any schema failed (`rls-migrate` then exits 1).
    ///
    /// ```
    /// assert!(!rls_tenancy::SchemasReport::default().has_failures());
    /// ```
    pub fn has_failures(&self) -> bool {
        self.count(|o| matches!(o, SchemaOutcome::Failed { .. })) > 0
    }

    fn count(&self, pick: impl Fn(&SchemaOutcome) -> bool) -> usize {
        self.schemas.iter().filter(|s| pick(&s.outcome)).count()
    }
}

impl fmt::Display for SchemasReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines = self.schemas.iter().map(|s| (s.schema.clone(), &s.outcome));
        write_outcomes(f, lines, "tenant schemas")
    }
}

/// One line per item (`label: outcome`), then the counts of each outcome for `noun`: the
/// report of a run across tenant schemas or tenant databases.
pub(super) fn write_outcomes<'a>(
    f: &mut fmt::Formatter<'_>,
    lines: impl Iterator<Item = (String, &'a SchemaOutcome)>,
    noun: &str,
) -> fmt::Result {
    let (mut migrated, mut current, mut failed) = (0, 0, 0);
    for (label, outcome) in lines {
        match outcome {
            SchemaOutcome::Migrated { applied } if applied.is_empty() => {
                writeln!(f, "{label}: migrated (policies or grants reinstalled)")?;
            }
            SchemaOutcome::Migrated { applied } => writeln!(f, "{label}: migrated {applied:?}")?,
            SchemaOutcome::Current => writeln!(f, "{label}: already current")?,
            SchemaOutcome::Failed { error } => writeln!(f, "{label}: FAILED: {error}")?,
        }
        match outcome {
            SchemaOutcome::Migrated { .. } => migrated += 1,
            SchemaOutcome::Current => current += 1,
            SchemaOutcome::Failed { .. } => failed += 1,
        }
    }
    write!(
        f,
        "{noun}: {migrated} migrated, {current} already current, {failed} failed"
    )
}

/// Applies `migrator` (the application's tenant migrations) to every tenant schema the
/// registry names and every static tenant's (with its own migrations, if it has them), as
/// the deploy role in `options`, over at most `jobs` connections. Schemas migrate a batch per
/// transaction, each schema's migrations and their records in a savepoint of their own: one
/// schema's failure is reported, rolled back, and the others go on; a schema's DDL, records,
/// policies and grants commit together or not at all. A rerun applies only what each schema
/// lacks, and one with nothing to apply reads the state of every schema in a few statements.
/// [`migrate_selected`] migrates a [`SchemaSelection`].
///
/// # Errors
/// [`MigrateError::Connect`] when the server is unreachable, or a database error reading the
/// registry; a schema's own failure is in the report, not an error.
///
/// ```no_run
/// # use rls_tenancy::{MigrateOptions, Strategy, TenancyDeclaration, migrate_schemas, migrator_from_dir};
/// # async fn demo() -> rls_tenancy::Result<()> {
/// let tenant_migrations = migrator_from_dir("migrations/tenant").await?;
/// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?.with_strategy(Strategy::Schema);
/// let options = MigrateOptions::new("postgres://app_deploy@localhost/app".parse()?, "app_runtime")?;
/// let report = migrate_schemas(&tenant_migrations, &decl, &options, 4).await?;
/// println!("{report}");
/// # Ok(()) }
/// ```
pub async fn migrate_schemas(
    migrator: &Migrator,
    decl: &TenancyDeclaration,
    options: &MigrateOptions,
    jobs: u32,
) -> Result<SchemasReport> {
    let mut conn = crate::connect::connect(&options.url).await?;
    let selection = select_schemas(&mut conn, decl, &SchemaSelector::All).await?;
    drop(conn);
    migrate_selected(migrator, decl, options, &selection, jobs, &|_| {}).await
}

/// Applies the tenant migrations to the tenant schemas of `selection` (its shared flag is
/// the caller's: [`crate::migrate_with`]), as [`migrate_schemas`] does; a static tenant's
/// schema with the migrations in its own directory and its own tenant tables. `done` is
/// called as each schema finishes (a progress bar).
///
/// # Errors
/// As [`migrate_schemas`], and [`MigrateError::Source`] when a static tenant's migrations
/// directory cannot be read (before any schema is touched).
///
/// ```no_run
/// # use rls_tenancy::{MigrateOptions, TenancyDeclaration, migrate_selected, migrator_from_dir, select_schemas};
/// # async fn demo(conn: &mut sqlx::PgConnection) -> rls_tenancy::Result<()> {
/// let tenant_migrations = migrator_from_dir("migrations/tenant").await?;
/// let decl = TenancyDeclaration::from_file("policies/tenancy.toml")?;
/// let options = MigrateOptions::new("postgres://app_deploy@localhost/app".parse()?, "app_runtime")?;
/// let selection = select_schemas(conn, &decl, &":static:".parse()?).await?;
/// let report = migrate_selected(&tenant_migrations, &decl, &options, &selection, 4, &|line| {
///     eprintln!("{}", line.schema);
/// }).await?;
/// # Ok(()) }
/// ```
#[tracing::instrument(skip_all, fields(url = %options.url, jobs, schemas = selection.tenants.len()))]
pub async fn migrate_selected(
    migrator: &Migrator,
    decl: &TenancyDeclaration,
    options: &MigrateOptions,
    selection: &SchemaSelection,
    jobs: u32,
    done: &(dyn Fn(&SchemaReport) + Sync),
) -> Result<SchemasReport> {
    let mut own = HashMap::new();
    for tenant in selection
        .tenants
        .iter()
        .filter_map(|t| t.static_tenant.as_ref())
    {
        if let Some(dir) = &tenant.migrations {
            own.insert(tenant.name.clone(), super::migrator_from_dir(dir).await?);
        }
    }
    let jobs = jobs.max(1);
    let pool = options.pool(jobs).await?;
    let context = options.context(decl);
    let dynamic: Vec<&SchemaName> = selection
        .tenants
        .iter()
        .filter(|t| t.static_tenant.is_none())
        .map(|t| &t.schema)
        .collect();
    let current = prepare(
        &pool, migrator, decl, selection, &dynamic, &context, options,
    )
    .await?;
    let behind: Vec<&SchemaName> = dynamic
        .into_iter()
        .filter(|s| !current.contains(s.as_str()))
        .collect();
    let plan = BatchPlan {
        migrator,
        decl,
        context: &context,
        runtime: &options.runtime_role,
    };
    // Batches small enough that every connection gets work, at most MAX_BATCH schemas.
    let size = behind.len().div_ceil(jobs as usize).clamp(1, MAX_BATCH);
    let mut work: Vec<Work<'_>> = selection
        .tenants
        .iter()
        .filter(|t| t.static_tenant.is_none() && current.contains(t.schema.as_str()))
        .map(|t| Work::Current(&t.schema))
        .collect();
    work.extend(behind.chunks(size).map(Work::Batch));
    work.extend(
        selection
            .tenants
            .iter()
            .filter(|t| t.static_tenant.is_some())
            .map(Work::Static),
    );
    let mut schemas: Vec<SchemaReport> = futures_util::stream::iter(work)
        .map(|work| {
            let (pool, plan, own) = (&pool, &plan, &own);
            async move {
                let lines: Vec<SchemaReport> = match work {
                    Work::Current(schema) => vec![line(schema, Ok(SchemaChanges::default()))],
                    Work::Batch(batch) => {
                        let outcomes = plan.migrate(pool, batch).await;
                        batch
                            .iter()
                            .zip(outcomes)
                            .map(|(s, o)| line(s, o))
                            .collect()
                    }
                    Work::Static(selected) => {
                        let tenant = selected.static_tenant.as_ref();
                        let own_decl = tenant.map(|t| decl.for_static_tenant(t));
                        let static_plan = BatchPlan {
                            migrator: tenant.and_then(|t| own.get(&t.name)).unwrap_or(migrator),
                            decl: own_decl.as_ref().unwrap_or(decl),
                            ..*plan
                        };
                        let outcome = static_plan.migrate_alone(pool, &selected.schema).await;
                        vec![line(&selected.schema, outcome)]
                    }
                };
                for report in &lines {
                    done(report);
                }
                futures_util::stream::iter(lines)
            }
        })
        .buffer_unordered(jobs as usize)
        .flatten()
        .collect()
        .await;
    pool.close().await;
    schemas.sort_by(|a, b| a.schema.cmp(&b.schema));
    Ok(SchemasReport { schemas })
}

/// A part of the run: a schema found current, a batch of dynamic tenants' schemas, or a
/// static tenant's schema (its own migrations and tables: migrated alone).
enum Work<'a> {
    Current(&'a SchemaName),
    Batch(&'a [&'a SchemaName]),
    Static(&'a SelectedSchema),
}

/// A schema's report line from its outcome.
fn line(schema: &SchemaName, outcome: Result<SchemaChanges>) -> SchemaReport {
    let outcome = match outcome {
        Ok(changes) if changes == SchemaChanges::default() => SchemaOutcome::Current,
        Ok(changes) => SchemaOutcome::Migrated {
            applied: changes.applied,
        },
        Err(error) => {
            tracing::warn!(schema = schema.as_str(), %error, "tenant schema failed to migrate");
            SchemaOutcome::Failed {
                error: error.to_string(),
            }
        }
    };
    SchemaReport {
        schema: schema.as_str().to_owned(),
        outcome,
    }
}

/// Before any schema is migrated: the shared records table made if need be, the records of
/// the per-schema tables an older install kept moved into it, and the names among `dynamic`
/// that are current already, read in a few statements for all of them: a rerun with nothing
/// to do opens no transaction per schema.
async fn prepare(
    pool: &PgPool,
    migrator: &Migrator,
    decl: &TenancyDeclaration,
    selection: &SchemaSelection,
    dynamic: &[&SchemaName],
    context: &TenantContext,
    options: &MigrateOptions,
) -> Result<HashSet<String>> {
    let mut conn = pool.acquire().await?;
    sqlx::raw_sql(AssertSqlSafe(records::create_sql(decl.schema())))
        .execute(&mut *conn)
        .await?;
    let all: Vec<&str> = selection
        .tenants
        .iter()
        .map(|t| t.schema.as_str())
        .collect();
    records::adopt_schema_tables(&mut conn, decl.schema(), &all).await?;
    // In a transaction of its own, without JIT: with thousands of schemas these catalog
    // reads' plans cost enough to be JIT-compiled, for seconds (see `schemas::prologue`).
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT set_config('jit', 'off', true)")
        .execute(&mut *tx)
        .await?;
    let current = current_schemas(
        &mut tx,
        migrator,
        decl,
        dynamic,
        context,
        &options.runtime_role,
    )
    .await?;
    tx.commit().await?;
    Ok(current)
}
