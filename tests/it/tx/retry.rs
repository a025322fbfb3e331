//! `TenantPool::retry`: a transaction that loses a serialization race or a deadlock runs
//! again and commits once; any other error is returned at once; the bound holds; every
//! failed attempt is rolled back.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use rls_tenancy::sea_query::{Expr, ExprTrait};
use rls_tenancy::{
    Error, Filtered, IsolationLevel, QueryError, Result, RetryPolicy, StatementError,
    TenancyDeclaration, TenantScope, TenantTx, TxOptions,
};
use tokio::sync::Notify;

use super::code;
use crate::fixture::TwoTenants;

fn serializable() -> TxOptions {
    TxOptions::default().isolation(IsolationLevel::Serializable)
}

/// A fast policy for tests: `n` attempts, waits of a few milliseconds.
fn attempts(n: u32) -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(n)
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
}

/// The names of `scope`'s projects that attempts left behind, as the superuser.
async fn markers(t: &TwoTenants, scope: &TenantScope) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT name FROM app.projects WHERE account_id = $1 AND name LIKE 'attempt %' ORDER BY name",
    )
    .bind(scope.id().as_i64().expect("bigint id"))
    .fetch_all(&t.admin)
    .await?)
}

/// Counts an attempt and leaves a project named for it (`attempt n`) in the attempt's
/// transaction: what is left after the retries shows which attempts were committed.
async fn mark(
    tx: &mut TenantTx,
    scope: &TenantScope,
    decl: &TenancyDeclaration,
    count: &AtomicU32,
) -> std::result::Result<u32, Error> {
    let n = count.fetch_add(1, Ordering::SeqCst) + 1;
    let marker = scope
        .insert(decl, "projects")
        .columns(["name"])
        .values([format!("attempt {n}")]);
    tx.execute(&marker).await?;
    Ok(n)
}

/// Fails the transaction with `code` raised by the server, as a real statement failing
/// with it would.
async fn raise(tx: &mut TenantTx, code: &str) -> std::result::Result<(), Error> {
    let sql =
        format!("DO $$ BEGIN RAISE EXCEPTION 'forced failure' USING ERRCODE = '{code}'; END $$");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_forced_serialization_failure_is_retried_and_the_retry_commits_once() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    let task: i64 = sqlx::query_scalar("SELECT min(id) FROM app.tasks WHERE account_id = $1")
        .bind(t.alpha.id().as_i64().expect("bigint id"))
        .fetch_one(&t.admin)
        .await?;
    let read = t
        .alpha
        .select(&decl)
        .from("tasks")
        .column("name")
        .and_where(Expr::col("id").eq(task));
    let write = t
        .alpha
        .update(&decl, "tasks")
        .value("details", "written by A")
        .and_where(Expr::col("id").eq(task));
    let count = AtomicU32::new(0);
    let first_failure: Mutex<Option<String>> = Mutex::new(None);
    let (a_has_read, b_committed) = (Notify::new(), Notify::new());

    let a = t.pool.retry(&t.alpha, serializable(), |tx| {
        Box::pin(async {
            let n = count.fetch_add(1, Ordering::SeqCst) + 1;
            let _snapshot: (String,) = tx.fetch_one(&read).await?;
            if n == 1 {
                a_has_read.notify_one();
                b_committed.notified().await;
            }
            let marker = t
                .alpha
                .insert(&decl, "projects")
                .columns(["name"])
                .values([format!("attempt {n}")]);
            tx.execute(&marker).await?;
            if let Err(e) = tx.execute(&write).await {
                let e = Error::from(e);
                if let Ok(mut first) = first_failure.lock() {
                    first.get_or_insert_with(|| code(&e).unwrap_or_default());
                }
                return Err(e);
            }
            Ok::<_, Error>(n)
        })
    });
    // A concurrent serializable transaction changes the row A has read, and commits first.
    let b = async {
        a_has_read.notified().await;
        let mut tx = t.pool.begin_with(&t.alpha, serializable()).await?;
        tx.execute(
            &t.alpha
                .update(&decl, "tasks")
                .value("name", "renamed by B")
                .and_where(Expr::col("id").eq(task)),
        )
        .await?;
        tx.commit().await?;
        b_committed.notify_one();
        Ok::<_, Error>(())
    };
    let (a, b) = tokio::join!(a, b);
    b?;
    assert_eq!(a?, 2, "committed on the second attempt");
    assert_eq!(count.load(Ordering::SeqCst), 2);
    assert_eq!(
        first_failure.lock().ok().and_then(|f| f.clone()).as_deref(),
        Some(rls_tenancy::SERIALIZATION_FAILURE)
    );
    let (name, details): (String, String) =
        sqlx::query_as("SELECT name, details FROM app.tasks WHERE id = $1")
            .bind(task)
            .fetch_one(&t.admin)
            .await?;
    assert_eq!(
        (name.as_str(), details.as_str()),
        ("renamed by B", "written by A")
    );
    assert_eq!(markers(&t, &t.alpha).await?, vec!["attempt 2".to_owned()]);
    Ok(())
}

#[tokio::test]
async fn a_deadlock_is_retried_and_only_the_attempt_that_succeeds_is_committed() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    let count = AtomicU32::new(0);
    let done = t
        .pool
        .retry_with(&t.alpha, serializable(), attempts(5), |tx| {
            Box::pin(async {
                let n = mark(tx, &t.alpha, &decl, &count).await?;
                if n < 3 {
                    raise(tx, rls_tenancy::DEADLOCK_DETECTED).await?;
                }
                Ok::<_, Error>(n)
            })
        })
        .await?;
    assert_eq!(done, 3);
    assert_eq!(count.load(Ordering::SeqCst), 3);
    assert_eq!(markers(&t, &t.alpha).await?, vec!["attempt 3".to_owned()]);
    assert!(markers(&t, &t.beta).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn retries_stop_at_the_bound_and_every_attempt_is_rolled_back() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    let count = AtomicU32::new(0);
    let failed = t
        .pool
        .retry_with(&t.alpha, serializable(), attempts(4), |tx| {
            Box::pin(async {
                let n = mark(tx, &t.alpha, &decl, &count).await?;
                raise(tx, rls_tenancy::SERIALIZATION_FAILURE).await?;
                Ok::<_, Error>(n)
            })
        })
        .await;
    let error = failed.expect_err("every attempt fails");
    assert_eq!(
        code(&error).as_deref(),
        Some(rls_tenancy::SERIALIZATION_FAILURE)
    );
    assert_eq!(count.load(Ordering::SeqCst), 4);
    assert!(markers(&t, &t.alpha).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_non_retryable_error_is_returned_at_once_and_its_attempt_rolled_back() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    let user = |email: &'static str| {
        t.alpha
            .insert(&decl, "users")
            .columns(["email", "first_name", "last_name", "password"])
            .values([email, "F", "L", "x"])
    };

    // A unique violation (23505): the same email twice in one tenant.
    let count = AtomicU32::new(0);
    let duplicate = t
        .pool
        .retry_with(&t.alpha, serializable(), attempts(5), |tx| {
            Box::pin(async {
                mark(tx, &t.alpha, &decl, &count).await?;
                tx.execute(&user("twice@example.test")).await?;
                tx.execute(&user("twice@example.test")).await?;
                Ok::<_, Error>(())
            })
        })
        .await;
    let error = duplicate.expect_err("a duplicate email");
    assert_eq!(code(&error).as_deref(), Some("23505"));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(markers(&t, &t.alpha).await?.is_empty());
    assert_eq!(t.count("users", &t.alpha).await?, 0);

    // A statement the builder refuses: not a database error, not retried.
    let count = AtomicU32::new(0);
    let refused = t
        .pool
        .retry(&t.alpha, serializable(), |tx| {
            Box::pin(async {
                count.fetch_add(1, Ordering::SeqCst);
                tx.execute(&t.beta.delete(&decl, "tasks")).await?;
                Ok::<_, Error>(())
            })
        })
        .await;
    assert!(matches!(
        refused,
        Err(Error::Statement(StatementError::Refused(
            QueryError::ScopeMismatch { .. }
        )))
    ));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(t.count("tasks", &t.beta).await?, 9);
    Ok(())
}
