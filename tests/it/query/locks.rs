//! Row locks (`FOR UPDATE`, `FOR SHARE`, `SKIP LOCKED`, `NOWAIT`) against a real database:
//! they lock the scope tenant's rows and no other tenant's.

use rls_tenancy::sea_query::{Expr, ExprTrait, Order};
use rls_tenancy::{Filtered, QueryError, Result, StatementError, TenancyDeclaration};

use crate::fixture::TwoTenants;

const LOCK_NOT_AVAILABLE: &str = "55P03";

fn sqlstate<T: std::fmt::Debug>(result: &std::result::Result<T, StatementError>) -> Option<String> {
    match result {
        Err(StatementError::Database(sqlx::Error::Database(e))) => e.code().map(|c| c.into_owned()),
        _ => None,
    }
}

#[tokio::test]
async fn skip_locked_gives_each_worker_a_different_row_and_nowait_fails_fast() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    let next = || {
        t.alpha
            .select(&decl)
            .from("tasks")
            .column("id")
            .order_by("id", Order::Asc)
            .limit(1)
            .for_update()
            .skip_locked()
    };
    let mut first = t.pool.begin(&t.alpha).await?;
    let (a,): (i64,) = first.fetch_one(&next()).await?;
    let mut second = t.pool.begin(&t.alpha).await?;
    let (b,): (i64,) = second.fetch_one(&next()).await?;
    assert_ne!(
        a, b,
        "the second worker must skip the row the first one holds"
    );

    let mut third = t.pool.begin(&t.alpha).await?;
    let held = t
        .alpha
        .select(&decl)
        .from("tasks")
        .column("id")
        .and_where(Expr::col("id").eq(a))
        .for_update()
        .nowait();
    let waited: std::result::Result<Vec<(i64,)>, _> = third.fetch_all(&held).await;
    assert_eq!(
        sqlstate(&waited).as_deref(),
        Some(LOCK_NOT_AVAILABLE),
        "{waited:?}"
    );
    third.rollback().await?;

    // The other tenant's rows were not locked: without the predicate, FOR UPDATE NOWAIT over
    // every task would meet alpha's locked rows and fail. Checked with the builder alone.
    let bypass = t.bypass().await?;
    let mut beta = bypass.begin(&t.beta).await?;
    let all_of_beta = t
        .beta
        .select(&decl)
        .from("tasks")
        .column("account_id")
        .for_update()
        .nowait();
    let rows: Vec<(i64,)> = beta.fetch_all(&all_of_beta).await?;
    let beta_id = t.beta.id().as_i64().expect("bigint id");
    assert_eq!(rows.len(), 9);
    assert!(rows.iter().all(|(id,)| *id == beta_id));
    beta.rollback().await?;
    first.rollback().await?;
    second.rollback().await?;
    Ok(())
}

#[tokio::test]
async fn for_share_lets_readers_share_and_keeps_writers_out() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    let project = |lock: fn(rls_tenancy::Select<'_>) -> rls_tenancy::Select<'_>| {
        lock(
            t.alpha
                .select(&decl)
                .from("projects")
                .column("id")
                .order_by("id", Order::Asc)
                .limit(1),
        )
        .nowait()
    };
    let mut reader = t.pool.begin(&t.alpha).await?;
    let shared: Vec<(i64,)> = reader.fetch_all(&project(|q| q.for_share())).await?;
    assert_eq!(shared.len(), 1);
    let mut other_reader = t.pool.begin(&t.alpha).await?;
    let also: Vec<(i64,)> = other_reader.fetch_all(&project(|q| q.for_share())).await?;
    assert_eq!(also, shared);
    let mut writer = t.pool.begin(&t.alpha).await?;
    let refused: std::result::Result<Vec<(i64,)>, _> =
        writer.fetch_all(&project(|q| q.for_update())).await;
    assert_eq!(
        sqlstate(&refused).as_deref(),
        Some(LOCK_NOT_AVAILABLE),
        "{refused:?}"
    );
    Ok(())
}

#[test]
fn skip_locked_or_nowait_without_a_lock_is_refused() -> Result<()> {
    let decl = TenancyDeclaration::reference()?;
    let scope = rls_tenancy::TenantScope::new(rls_tenancy::TenantId::new(1)?, "alpha".parse()?);
    for select in [
        scope.select(&decl).from("tasks").column("id").skip_locked(),
        scope.select(&decl).from("tasks").column("id").nowait(),
    ] {
        assert_eq!(select.build().err(), Some(QueryError::NoRowLock));
    }
    Ok(())
}
