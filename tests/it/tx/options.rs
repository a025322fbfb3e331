//! `TenantPool::begin_with` and `TxOptions`: a read-only tenant transaction refuses writes,
//! an isolation level is the transaction's, and either way it sees one tenant.

use rls_tenancy::{Error, IsolationLevel, Result, StatementError, TenancyDeclaration, TxOptions};

use super::code;
use crate::fixture::TwoTenants;

const READ_ONLY_SQL_TRANSACTION: &str = "25006";

#[tokio::test]
async fn a_write_in_a_read_only_tenant_transaction_is_refused_with_25006() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    let mut tx = t
        .pool
        .begin_with(&t.alpha, TxOptions::default().read_only())
        .await?;
    assert_eq!(
        t.projects_seen(&mut tx).await?,
        2,
        "alpha's projects, not beta's 3"
    );
    let insert = t
        .alpha
        .insert(&decl, "projects")
        .columns(["name"])
        .values(["new"]);
    assert_refused_as_read_only(tx.execute(&insert).await);
    tx.rollback().await?;
    let mut tx = t
        .pool
        .begin_with(&t.alpha, TxOptions::default().read_only())
        .await?;
    let update = t.alpha.update(&decl, "tasks").value("is_complete", true);
    assert_refused_as_read_only(tx.execute(&update).await);
    tx.rollback().await?;
    assert_eq!(t.count("projects", &t.alpha).await?, 2);
    let complete: i64 = sqlx::query_scalar("SELECT count(*) FROM app.tasks WHERE is_complete")
        .fetch_one(&t.admin)
        .await?;
    assert_eq!(complete, 0);

    // The same write in a read-write transaction goes through: the option made the refusal.
    let mut tx = t.pool.begin(&t.alpha).await?;
    assert_eq!(tx.execute(&insert).await?, 1);
    tx.commit().await?;
    assert_eq!(t.count("projects", &t.alpha).await?, 3);
    Ok(())
}

fn assert_refused_as_read_only(write: std::result::Result<u64, StatementError>) {
    let error = Error::from(write.expect_err("a write in a read-only transaction"));
    assert!(
        matches!(error, Error::Statement(StatementError::Database(_))),
        "{error:?}"
    );
    assert_eq!(code(&error).as_deref(), Some(READ_ONLY_SQL_TRANSACTION));
}

#[tokio::test]
async fn a_tenant_transaction_runs_at_the_isolation_level_it_asked_for() -> Result<()> {
    let t = TwoTenants::new().await?;
    for (options, isolation, read_only) in [
        (TxOptions::default(), "read committed", "off"),
        (
            TxOptions::default().isolation(IsolationLevel::Serializable),
            "serializable",
            "off",
        ),
        (
            TxOptions::default()
                .isolation(IsolationLevel::RepeatableRead)
                .read_only(),
            "repeatable read",
            "on",
        ),
    ] {
        for scope in [&t.alpha, &t.beta] {
            let mut tx = t.pool.begin_with(scope, options).await?;
            let (level, ro, tenant): (String, String, String) = sqlx::query_as(
                "SELECT current_setting('transaction_isolation'),
                        current_setting('transaction_read_only'),
                        current_setting('app.tenant_id')",
            )
            .fetch_one(&mut *tx)
            .await?;
            let accounts: Vec<i64> =
                sqlx::query_scalar("SELECT DISTINCT account_id FROM app.subtasks")
                    .fetch_all(&mut *tx)
                    .await?;
            tx.commit().await?;
            assert_eq!((level.as_str(), ro.as_str()), (isolation, read_only));
            assert_eq!(tenant, scope.id().to_string());
            assert_eq!(accounts, vec![scope.id().as_i64().expect("bigint id")]);
        }
    }
    Ok(())
}
