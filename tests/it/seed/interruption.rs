//! Whole accounts only: interrupted runs, reruns and `--resume`.

use std::time::Duration;

use rls_tenancy::{ScratchDatabase, SeedError, SeedOptions};

use super::{
    TestResult, account_count, counts_by_account, exact_checksum, natural_checksum, seed_db,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_load_midway_leaves_only_whole_accounts_and_resume_completes_it() -> TestResult
{
    const ACCOUNTS: i64 = 400;
    let options = SeedOptions::new(ACCOUNTS).profile("small").seed(11).jobs(2);
    let (killed, reference) = (
        ScratchDatabase::migrated().await?,
        ScratchDatabase::migrated().await?,
    );
    seed_db(&reference, &options).await?;
    let reference_admin = reference.admin_pool().await?;
    let admin = killed.admin_pool().await?;

    let url = killed.deploy_url().clone();
    let run = tokio::spawn({
        let options = options.clone();
        async move { rls_tenancy::seed(&url, &options).await }
    });
    // Once some accounts are in, terminate the seeder's backends until the run gives up: a
    // kill that lands between two accounts is survived by reconnecting, one mid-statement
    // is not.
    while account_count(&admin).await? < 3 && !run.is_finished() {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    while !run.is_finished() {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
              WHERE usename = $1 AND datname = current_database()",
        )
        .bind(killed.deploy_role().as_str())
        .execute(&admin)
        .await?;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let outcome = run.await?;
    assert!(
        outcome.is_err(),
        "the killed run must fail, not report success"
    );

    let present = counts_by_account(&admin).await?;
    assert!(
        !present.is_empty() && present.len() < ACCOUNTS as usize,
        "{} accounts",
        present.len()
    );
    let whole = counts_by_account(&reference_admin).await?;
    for account in &present {
        assert!(
            whole.contains(account),
            "{} is whole: {account:?}",
            account.0
        );
    }

    let error = seed_db(&killed, &options).await.map(|_| ()).err();
    assert!(
        matches!(error, Some(SeedError::Conflict { .. })),
        "{error:?}"
    );
    let resumed = seed_db(&killed, &options.clone().resume(true)).await?;
    assert_eq!(resumed.accounts + resumed.already_present, ACCOUNTS as u64);
    assert_eq!(resumed.already_present, present.len() as u64);
    assert_eq!(
        natural_checksum(&admin).await?,
        natural_checksum(&reference_admin).await?
    );
    Ok(())
}

#[tokio::test]
async fn a_rerun_refuses_saying_what_exists_and_writes_nothing() -> TestResult {
    let db = ScratchDatabase::migrated().await?;
    seed_db(&db, &SeedOptions::new(3)).await?;
    let admin = db.admin_pool().await?;
    let before = exact_checksum(&admin).await?;

    let error = seed_db(&db, &SeedOptions::new(5)).await.map(|_| ()).err();
    let Some(error) = error else {
        return Err("a rerun over existing accounts must be refused".into());
    };
    assert!(error.is_usage());
    assert_eq!(
        error.to_string(),
        "the database already holds 3 of the 5 accounts to seed (tenant-0 .. tenant-2): \
         pass --resume to add only the missing ones, or seed an empty database"
    );
    assert_eq!(exact_checksum(&admin).await?, before);
    Ok(())
}

#[tokio::test]
async fn resume_adds_exactly_the_missing_accounts_as_one_run_would() -> TestResult {
    let (resumed, fresh) = (
        ScratchDatabase::migrated().await?,
        ScratchDatabase::migrated().await?,
    );
    seed_db(&resumed, &SeedOptions::new(3).seed(5)).await?;
    let report = seed_db(&resumed, &SeedOptions::new(6).seed(5).resume(true)).await?;
    assert_eq!((report.accounts, report.already_present), (3, 3));
    assert!(report.to_string().contains("Already present: 3"));
    seed_db(&fresh, &SeedOptions::new(6).seed(5)).await?;
    let (resumed_admin, fresh_admin) = (resumed.admin_pool().await?, fresh.admin_pool().await?);
    assert_eq!(
        exact_checksum(&resumed_admin).await?,
        exact_checksum(&fresh_admin).await?
    );

    let again = seed_db(&resumed, &SeedOptions::new(6).seed(5).resume(true)).await?;
    assert_eq!(
        (again.accounts, again.already_present),
        (0, 6),
        "a completed run adds nothing"
    );
    Ok(())
}

#[tokio::test]
async fn resume_refuses_accounts_another_seed_made() -> TestResult {
    let db = ScratchDatabase::migrated().await?;
    seed_db(&db, &SeedOptions::new(2).seed(1)).await?;
    let error = seed_db(&db, &SeedOptions::new(4).seed(2).resume(true))
        .await
        .map(|_| ())
        .err();
    assert!(
        matches!(&error, Some(SeedError::Mismatch { slug, .. }) if slug == "tenant-0"),
        "{error:?}"
    );
    let admin = db.admin_pool().await?;
    assert_eq!(account_count(&admin).await?, 2);
    Ok(())
}
