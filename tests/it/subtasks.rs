//! The demo's page query, through the scoped builder, against a real database.

use rls_tenancy::Result;
use rls_tenancy::demo::{MAX_OFFSET, MAX_PER_PAGE, subtask_page};
use rls_tenancy::http::AppError;

use crate::fixture::{ALPHA_SUBTASKS, BETA_SUBTASKS, TwoTenants};

#[tokio::test]
async fn each_page_holds_only_its_tenants_subtasks_in_name_then_id_order() -> Result<()> {
    let t = TwoTenants::new().await?;
    for (scope, total) in [(&t.alpha, ALPHA_SUBTASKS), (&t.beta, BETA_SUBTASKS)] {
        let expected = t.subtask_ids_in_order(scope).await?;
        assert_eq!(expected.len() as i64, total);
        let mut seen = Vec::new();
        let mut tx = t.pool.begin(scope).await?;
        for page in 1..=4 {
            let got = subtask_page(&mut tx, page, 10).await.expect("the page");
            assert_eq!((got.page, got.per_page, got.total), (page, 10, total));
            assert_eq!(&got.tenant, scope.slug());
            for item in &got.items {
                assert_eq!(
                    item.account_id,
                    scope.id().as_i64().expect("bigint id"),
                    "a foreign row: {item:?}"
                );
                assert!(
                    item.task_name.starts_with(scope.slug().as_str()),
                    "{item:?}"
                );
                assert!(
                    item.project_name.starts_with(scope.slug().as_str()),
                    "{item:?}"
                );
            }
            seen.extend(got.items.iter().map(|i| i.id));
        }
        tx.commit().await?;
        assert_eq!(
            seen, expected,
            "pages 1..=4 are the tenant's rows in order, once each"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_page_past_the_end_is_empty_but_still_counts_the_tenant() -> Result<()> {
    let t = TwoTenants::new().await?;
    let mut tx = t.pool.begin(&t.alpha).await?;
    let page = subtask_page(&mut tx, 99, 10).await.expect("the page");
    assert!(page.items.is_empty());
    assert_eq!(page.total, ALPHA_SUBTASKS);
    Ok(())
}

#[tokio::test]
async fn out_of_bounds_pages_are_refused_before_anything_is_sent() -> Result<()> {
    let t = TwoTenants::new().await?;
    let mut tx = t.pool.begin(&t.alpha).await?;
    let too_deep = u32::try_from(MAX_OFFSET / 10 + 2).unwrap_or(u32::MAX);
    for (page, per_page) in [
        (0, 10),
        (1, 0),
        (1, MAX_PER_PAGE + 1),
        (too_deep, 10),
        (u32::MAX, MAX_PER_PAGE),
    ] {
        let refused = subtask_page(&mut tx, page, per_page).await;
        assert!(
            matches!(&refused, Err(AppError::BadRequest(message)) if message.starts_with("invalid page")),
            "page {page} of {per_page}: {refused:?}"
        );
    }
    // The transaction is still usable: nothing failed inside it.
    assert_eq!(
        subtask_page(&mut tx, 1, 10)
            .await
            .expect("the page")
            .items
            .len(),
        10
    );
    Ok(())
}
