//! The tenant pool runs the guard when it opens and refuses a role that can get around
//! row-level security, with an error naming every rule; `skip_guard` is the explicit way out
//! and the deploy-role writer the one for seeding, both logged every time they are used.

use rls_tenancy::TenancyDeclaration;
use rls_tenancy::guard::RuleId;
use rls_tenancy::{DbError, GuardError, Result, TenantPool};

use super::{Fixture, pool_options};
use crate::logs::Warnings;
use crate::support::TwoTenants;

/// The rules of a refusal, or an error saying what came back instead.
fn refused_rules(result: Result<TenantPool, DbError>) -> Result<Vec<RuleId>> {
    match result {
        Err(DbError::Guard(GuardError::Refused { findings })) => {
            Ok(findings.iter().map(|f| f.rule).collect())
        }
        Err(other) => {
            Err(std::io::Error::other(format!("expected GuardRefused, got: {other}")).into())
        }
        Ok(_) => {
            Err(std::io::Error::other("the pool opened for a role the guard must refuse").into())
        }
    }
}

#[tokio::test]
async fn the_tenant_pool_opens_for_the_migrated_runtime_role_and_sees_only_its_tenant() -> Result<()>
{
    let t = TwoTenants::new().await;
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM app.projects")
        .fetch_one(&t.admin)
        .await?;
    assert_eq!(all, 2, "both tenants have a project");
    let pool = TenantPool::connect(t.db.runtime_url(), pool_options()).await?;
    let mut tx = pool.begin(&t.a.scope).await?;
    let visible: Vec<i64> = sqlx::query_scalar("SELECT id FROM app.projects")
        .fetch_all(&mut *tx)
        .await?;
    assert_eq!(
        visible,
        [t.a.project],
        "only tenant a's project, not {}",
        t.b.project
    );
    tx.commit().await?;
    pool.close().await;
    Ok(())
}

#[tokio::test]
async fn opening_the_tenant_pool_as_a_superuser_fails_naming_the_rule() -> Result<()> {
    let fx = Fixture::migrated().await?;
    let result = TenantPool::connect(&fx.db().admin_url(), pool_options()).await;
    let message = match &result {
        Err(e) => e.to_string(),
        Ok(_) => String::new(),
    };
    assert!(message.contains("[role-superuser]"), "{message}");
    assert!(
        message.contains("row-level security never applies"),
        "{message}"
    );
    assert!(
        matches!(result, Err(DbError::Guard(GuardError::Refused { .. }))),
        "a refusal is the guard's verdict, not a usage error"
    );
    assert!(refused_rules(result)?.contains(&RuleId::RoleSuperuser));
    Ok(())
}

#[tokio::test]
async fn opening_the_tenant_pool_as_the_deploy_role_fails_naming_the_rules() -> Result<()> {
    let fx = Fixture::migrated().await?;
    let result = TenantPool::connect(fx.db().deploy_url(), pool_options()).await;
    let message = result
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    for rule in ["[owns-database]", "[owns-schema]", "[owns-object]"] {
        assert!(message.contains(rule), "{rule} missing from: {message}");
    }
    let rules = refused_rules(result)?;
    assert!(rules.contains(&RuleId::OwnsSchema) && rules.contains(&RuleId::OwnsObject));
    Ok(())
}

#[tokio::test]
async fn wrapping_a_superuser_pool_fails_too() -> Result<()> {
    let fx = Fixture::migrated().await?;
    let admin = fx.db().admin_pool().await?;
    let result = TenantPool::from_pool(admin, pool_options()).await;
    assert!(refused_rules(result)?.contains(&RuleId::RoleSuperuser));
    Ok(())
}

#[tokio::test]
async fn the_tenant_pool_refuses_a_runtime_role_that_was_made_a_superuser() -> Result<()> {
    let mut fx = Fixture::migrated().await?;
    fx.inject("ALTER ROLE {runtime} SUPERUSER").await?;
    let result = TenantPool::connect(fx.db().runtime_url(), pool_options()).await;
    assert_eq!(refused_rules(result)?, [RuleId::RoleSuperuser]);
    Ok(())
}

#[tokio::test]
async fn skip_guard_opens_the_pool_even_for_a_superuser_and_warns_every_time() -> Result<()> {
    let fx = Fixture::migrated().await?;
    let warnings = Warnings::capture();
    for _ in 0..2 {
        let options = pool_options().skip_guard();
        let pool = TenantPool::connect(&fx.db().admin_url(), options).await?;
        pool.close().await;
    }
    assert_eq!(
        warnings.count("TenantPoolOptions::skip_guard"),
        2,
        "{}",
        warnings.text()
    );
    assert!(warnings.text().contains(" WARN "), "{}", warnings.text());
    Ok(())
}

#[tokio::test]
async fn the_deploy_role_writer_opens_for_the_deploy_role_and_warns_every_time() -> Result<()> {
    let fx = Fixture::migrated().await?;
    let warnings = Warnings::capture();
    for _ in 0..2 {
        let options = pool_options().deploy_role_writer();
        let pool = TenantPool::connect(fx.db().deploy_url(), options).await?;
        pool.close().await;
    }
    assert_eq!(
        warnings.count("TenantPoolOptions::deploy_role_writer"),
        2,
        "{}",
        warnings.text()
    );
    Ok(())
}

#[tokio::test]
async fn the_deploy_role_writer_refuses_a_superuser_login() -> Result<()> {
    let mut fx = Fixture::migrated().await?;
    // A superuser without BYPASSRLS, so that only the superuser rule can refuse it.
    fx.inject("CREATE ROLE {top} LOGIN SUPERUSER NOBYPASSRLS PASSWORD 'writer-pw'")
        .await?;
    let url = fx
        .db()
        .admin_url()
        .with_credentials(&fx.extra_role("top"), "writer-pw")?;
    let options = pool_options().deploy_role_writer();
    let result = TenantPool::connect(&url, options).await;
    assert_eq!(refused_rules(result)?, [RuleId::RoleSuperuser]);
    Ok(())
}

#[tokio::test]
async fn the_deploy_role_writer_refuses_a_bypassrls_login() -> Result<()> {
    let mut fx = Fixture::migrated().await?;
    fx.inject("ALTER ROLE {deploy} BYPASSRLS").await?;
    let options = pool_options().deploy_role_writer();
    let result = TenantPool::connect(fx.db().deploy_url(), options).await;
    let message = result
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(message.contains("[role-bypassrls]"), "{message}");
    assert_eq!(refused_rules(result)?, [RuleId::RoleBypassRls]);
    Ok(())
}

#[tokio::test]
async fn a_policy_for_another_role_stops_the_pool_with_a_clear_message_instead_of_empty_pages()
-> Result<()> {
    let mut fx = Fixture::migrated().await?;
    fx.inject("CREATE ROLE {mid}; ALTER POLICY tenant_isolation ON app.projects TO {mid}")
        .await?;
    let result = TenantPool::connect(fx.db().runtime_url(), pool_options()).await;
    let message = result
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(
        message.contains("[policy-not-for-role]")
            && message.contains("app.projects")
            && message.contains("empty pages"),
        "{message}"
    );
    assert_eq!(refused_rules(result)?, [RuleId::PolicyNotForRole]);
    Ok(())
}

#[tokio::test]
async fn warnings_alone_do_not_stop_the_pool_from_opening() -> Result<()> {
    let mut fx = Fixture::migrated().await?;
    fx.inject(
        "DROP POLICY tenant_isolation ON app.tasks;
         CREATE POLICY tenant_isolation ON app.tasks
           USING (account_id = nullif(current_setting('app.tenant_id', true), '')::bigint)",
    )
    .await?;
    let pool = TenantPool::connect(fx.db().runtime_url(), pool_options()).await?;
    pool.close().await;
    Ok(())
}

#[tokio::test]
async fn a_role_override_in_the_guard_options_cannot_vouch_for_a_superuser_pool() -> Result<()> {
    let fx = Fixture::migrated().await?;
    // The options name the well-behaved runtime role, but the pool logs in as the superuser:
    // the pool must check the role it really uses.
    let options = pool_options().guard(
        rls_tenancy::GuardOptions::new(TenancyDeclaration::reference().expect("declaration"))
            .role(fx.db().runtime_role().as_str()),
    );
    let result = TenantPool::connect(&fx.db().admin_url(), options).await;
    assert!(refused_rules(result)?.contains(&RuleId::RoleSuperuser));
    Ok(())
}
