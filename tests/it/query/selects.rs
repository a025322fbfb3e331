//! Scoped selects against a real database, with each wall tested on its own:
//!
//! - *builder only*: the scoped statement in a tenant transaction on a superuser connection,
//!   which row-level security does not apply to;
//! - *RLS only*: the same shape without predicates (the cross-tenant path) in the runtime
//!   role's tenant transaction;
//! - *neither*: the shape without predicates as the superuser, to show that the other
//!   tenant's rows really would change the answer.
//!
//! The builder alone must give exactly what RLS alone gives, for both tenants.

use rls_tenancy::{
    CrossTenant, Result, TenancyDeclaration, TenantPool, TenantPoolOptions, TenantScope,
};

use super::shapes::{Row, SHAPES, Shape, build};
use crate::fixture::TwoTenants;

struct Outcome {
    builder_only: Vec<Row>,
    rls_only: Vec<Row>,
    both_walls: Vec<Row>,
    neither: Vec<Row>,
}

async fn run(
    t: &TwoTenants,
    bypass: &TenantPool,
    shape: Shape,
    scope: &TenantScope,
) -> Result<Outcome> {
    let decl = TenancyDeclaration::reference()?;
    let scoped = build(shape, &|| scope.select(&decl));
    let cross = CrossTenant::new("test: ground truth for the scoped builder");
    let unscoped = build(shape, &|| cross.select(&decl));

    let mut tx = bypass.begin(scope).await?;
    let mut builder_only: Vec<Row> = tx.fetch_all(&scoped).await?;
    tx.rollback().await?;

    let mut tx = t.pool.begin(scope).await?;
    let mut rls_only: Vec<Row> = CrossTenant::fetch_all(&mut tx, &unscoped).await?;
    let mut both_walls: Vec<Row> = tx.fetch_all(&scoped).await?;
    tx.rollback().await?;

    let mut admin = t.admin.acquire().await?;
    let mut neither: Vec<Row> = CrossTenant::fetch_all(&mut admin, &unscoped).await?;

    for rows in [
        &mut builder_only,
        &mut rls_only,
        &mut both_walls,
        &mut neither,
    ] {
        rows.sort_unstable();
    }
    Ok(Outcome {
        builder_only,
        rls_only,
        both_walls,
        neither,
    })
}

#[tokio::test]
async fn the_builder_alone_returns_exactly_what_row_level_security_alone_returns() -> Result<()> {
    let t = TwoTenants::new().await?;
    let bypass = TenantPool::from_pool(
        t.admin.clone(),
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration")).skip_guard(),
    )
    .await?;
    for shape in SHAPES {
        let mut leaks_without_walls = false;
        for scope in [&t.alpha, &t.beta] {
            let out = run(&t, &bypass, shape, scope).await?;
            let tenant = Some(scope.id().as_i64().expect("bigint id"));
            assert!(
                !out.rls_only.is_empty(),
                "{shape:?} returns nothing for {scope:?}"
            );
            assert_eq!(out.builder_only, out.rls_only, "{shape:?} for {scope:?}");
            assert_eq!(out.both_walls, out.rls_only, "{shape:?} for {scope:?}");
            for (id, least, greatest) in &out.builder_only {
                assert_eq!(
                    (*least, *greatest),
                    (tenant, tenant),
                    "{shape:?}: row {id} mixes tenants"
                );
            }
            leaks_without_walls |= out.neither != out.rls_only;
        }
        assert!(
            leaks_without_walls,
            "{shape:?} cannot tell a missing predicate from a present one"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_left_join_keeps_rows_without_a_match_in_the_same_tenant() -> Result<()> {
    let t = TwoTenants::new().await?;
    let bypass = TenantPool::from_pool(
        t.admin.clone(),
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration")).skip_guard(),
    )
    .await?;
    let out = run(&t, &bypass, Shape::LeftJoin, &t.alpha).await?;
    // Completed subtasks match no task (no task is complete) and are kept, once each.
    let unmatched = out
        .builder_only
        .iter()
        .filter(|(_, least, greatest)| least == greatest)
        .count();
    assert!(unmatched > 0);
    assert_eq!(out.builder_only, out.rls_only);
    Ok(())
}
