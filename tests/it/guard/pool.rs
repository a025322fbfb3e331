//! The tenant pool runs the guard when it opens and refuses a role that can get around
//! row-level security, with an error naming every rule; `skip_guard` is the explicit way out.

use rls_tenancy::TenancyDeclaration;
use rls_tenancy::guard::RuleId;
use rls_tenancy::{
    DbError, GuardError, Result, TenantId, TenantPool, TenantPoolOptions, TenantScope,
};

use super::Fixture;

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
async fn the_tenant_pool_opens_for_the_migrated_runtime_role() -> Result<()> {
    let fx = Fixture::migrated().await?;
    let pool = TenantPool::connect(
        fx.db().runtime_url(),
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration")),
    )
    .await?;
    let scope = TenantScope::new(TenantId::new(1)?, "tenant-1".parse()?);
    let mut tx = pool.begin(&scope).await?;
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM app.projects")
        .fetch_one(&mut *tx)
        .await?;
    assert_eq!(visible, 0);
    tx.commit().await?;
    pool.close().await;
    Ok(())
}

#[tokio::test]
async fn opening_the_tenant_pool_as_a_superuser_fails_naming_the_rule() -> Result<()> {
    let fx = Fixture::migrated().await?;
    let result = TenantPool::connect(
        &fx.db().admin_url(),
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration")),
    )
    .await;
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
    let result = TenantPool::connect(
        fx.db().deploy_url(),
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration")),
    )
    .await;
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
    let result = TenantPool::from_pool(
        admin,
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration")),
    )
    .await;
    assert!(refused_rules(result)?.contains(&RuleId::RoleSuperuser));
    Ok(())
}

#[tokio::test]
async fn the_tenant_pool_refuses_a_runtime_role_that_was_made_a_superuser() -> Result<()> {
    let mut fx = Fixture::migrated().await?;
    fx.inject("ALTER ROLE {runtime} SUPERUSER").await?;
    let result = TenantPool::connect(
        fx.db().runtime_url(),
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration")),
    )
    .await;
    assert_eq!(refused_rules(result)?, [RuleId::RoleSuperuser]);
    Ok(())
}

#[tokio::test]
async fn skip_guard_opens_the_pool_even_for_a_superuser() -> Result<()> {
    let fx = Fixture::migrated().await?;
    let options =
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration")).skip_guard();
    let pool = TenantPool::connect(&fx.db().admin_url(), options).await?;
    pool.close().await;
    Ok(())
}

#[tokio::test]
async fn warnings_alone_do_not_stop_the_pool_from_opening() -> Result<()> {
    let mut fx = Fixture::migrated().await?;
    fx.inject(
        "CREATE MATERIALIZED VIEW app.user_counts AS SELECT account_id, count(*) FROM app.users GROUP BY 1;
         GRANT SELECT ON app.user_counts TO {runtime}",
    )
    .await?;
    let pool = TenantPool::connect(
        fx.db().runtime_url(),
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration")),
    )
    .await?;
    pool.close().await;
    Ok(())
}

#[tokio::test]
async fn a_role_override_in_the_guard_options_cannot_vouch_for_a_superuser_pool() -> Result<()> {
    let fx = Fixture::migrated().await?;
    // The options name the well-behaved runtime role, but the pool logs in as the superuser:
    // the pool must check the role it really uses.
    let options = TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"))
        .guard(
            rls_tenancy::GuardOptions::new(TenancyDeclaration::reference().expect("declaration"))
                .role(fx.db().runtime_role().as_str()),
        );
    let result = TenantPool::connect(&fx.db().admin_url(), options).await;
    assert!(refused_rules(result)?.contains(&RuleId::RoleSuperuser));
    Ok(())
}
