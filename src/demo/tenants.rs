//! The demo's tenants: what `rls-seed` makes for the embedded demo.
//!
//! The embedded demo seeds its database with the seed library ([`crate::seed()`]), as the
//! deploy role and through each tenant's own transaction, exactly as `rls-seed` does: the
//! demo shows the data our users generate, not a fixture of its own.

use crate::connect::DatabaseUrl;
use crate::error::Result;
use crate::seed::{SeedLevel, SeedOptions, account_slug, seed};
use crate::tenant::TenantSlug;

/// How many accounts the embedded demo seeds: `tenant-0` .. `tenant-4`.
const ACCOUNTS: i64 = 5;

/// The demo's fixed seed: every start shows the same data.
const SEED: u64 = 1;

/// What the embedded demo seeds: [`ACCOUNTS`] accounts of the `small` profile with a fixed
/// seed and no progress bar. The profile's floors are raised so every account holds at least
/// 2 projects × 2 tasks × 3 subtasks = 12 subtasks, more than one page of 10: each tenant's
/// pages show a full first page and the links between pages.
///
/// The same as `rls-seed --accounts 5 --seed 1 --profile small --min-projects 2
/// --min-tasks 2 --min-subtasks 3`.
///
/// ```
/// let options = rls_tenancy::demo::seed_options();
/// assert!(options.validate().is_ok());
/// ```
pub fn seed_options() -> SeedOptions {
    SeedOptions::new(ACCOUNTS)
        .seed(SEED)
        .profile("small")
        .min(SeedLevel::Projects, 2)
        .min(SeedLevel::Tasks, 2)
        .min(SeedLevel::Subtasks, 3)
        .progress(false)
}

/// Seeds the demo's tenants through the deploy role at `deploy_url` with `options` (the
/// [`seed_options`], perhaps in tenant schemas) and returns their slugs, in order.
pub(super) async fn seed_tenants(
    deploy_url: &DatabaseUrl,
    options: &SeedOptions,
) -> Result<Vec<TenantSlug>> {
    let report = seed(deploy_url, options).await?;
    tracing::info!(
        accounts = report.accounts,
        users = report.users,
        projects = report.projects,
        tasks = report.tasks,
        subtasks = report.subtasks,
        "seeded the demo tenants with rls-seed"
    );
    Ok((0..report.accounts)
        .map(|index| account_slug(index).parse())
        .collect::<Result<_, _>>()?)
}
