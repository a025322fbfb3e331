//! Streaming a scoped statement's rows out of the tenant transaction.

use futures_util::{StreamExt, TryStreamExt};
use rls_tenancy::sea_query::Expr;
use rls_tenancy::{Filtered, QueryError, Result, StatementError, TenancyDeclaration};

use crate::fixture::{ALPHA_SUBTASKS, TwoTenants};

#[tokio::test]
async fn a_stream_yields_every_row_of_its_tenant_and_none_of_the_other() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    let everything = t
        .alpha
        .select(&decl)
        .from("subtasks")
        .columns(["id", "account_id"]);
    let alpha_id = t.alpha.id().as_i64().expect("bigint id");
    let bypass = t.bypass().await?;
    for pool in [&bypass, &t.pool] {
        let mut tx = pool.begin(&t.alpha).await?;
        let mut rows = tx.fetch::<(i64, i64), _>(&everything);
        let mut seen = 0;
        while let Some((_, account)) = rows.try_next().await? {
            assert_eq!(account, alpha_id);
            seen += 1;
        }
        drop(rows);
        assert_eq!(seen, ALPHA_SUBTASKS);
        tx.commit().await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_refused_stream_yields_its_refusal_and_sends_nothing() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    let mut tx = t.pool.begin(&t.alpha).await?;
    let theirs = t.beta.select(&decl).from("subtasks").column("id");
    let refused: Vec<std::result::Result<(i64,), StatementError>> =
        tx.fetch(&theirs).collect().await;
    assert!(
        matches!(
            refused.as_slice(),
            [Err(StatementError::Refused(
                QueryError::ScopeMismatch { .. }
            ))]
        ),
        "{refused:?}"
    );
    let smuggled = t
        .alpha
        .select(&decl)
        .from("subtasks")
        .column("id")
        .and_where(Expr::cust("true"));
    let refused: Vec<std::result::Result<(i64,), StatementError>> =
        tx.fetch(&smuggled).collect().await;
    assert!(
        matches!(
            refused.as_slice(),
            [Err(StatementError::Refused(QueryError::RawSql))]
        ),
        "{refused:?}"
    );
    // The transaction was not touched.
    let ids: Vec<(i64,)> = tx
        .fetch::<(i64,), _>(&t.alpha.select(&decl).from("projects").column("id"))
        .try_collect()
        .await?;
    assert_eq!(ids.len(), 2);
    tx.commit().await?;
    Ok(())
}
