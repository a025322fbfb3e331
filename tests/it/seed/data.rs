//! The shape of the data and its determinism.

use rls_tenancy::{ScratchDatabase, SeedLevel, SeedOptions};

use super::{
    TestResult, account_count, counts_by_account, exact_checksum, natural_checksum, seed_db,
};

#[tokio::test]
async fn counts_fall_within_the_ranges_the_reference_distribution_implies() -> TestResult {
    let db = ScratchDatabase::migrated().await?;
    let report = seed_db(&db, &SeedOptions::new(12).seed(3)).await?;
    let admin = db.admin_pool().await?;
    let counts = counts_by_account(&admin).await?;

    let mut slugs: Vec<String> = counts.iter().map(|c| c.0.clone()).collect();
    slugs.sort();
    let mut expected: Vec<String> = (0..12).map(|i| format!("tenant-{i}")).collect();
    expected.sort();
    assert_eq!(slugs, expected);
    for (slug, users, projects, tasks, subtasks) in &counts {
        assert!((1..=5).contains(users), "{slug}: {users} users");
        assert!((1..=30).contains(projects), "{slug}: {projects} projects");
        assert_eq!(
            tasks % projects,
            0,
            "{slug}: tasks are a per-project count times projects"
        );
        assert!(
            (1..=10).contains(&(tasks / projects)),
            "{slug}: {tasks} tasks"
        );
        assert_eq!(
            subtasks % tasks,
            0,
            "{slug}: subtasks are a per-task count times tasks"
        );
        assert!(
            (1..=10).contains(&(subtasks / tasks)),
            "{slug}: {subtasks} subtasks"
        );
    }
    let total =
        |f: fn(&(String, i64, i64, i64, i64)) -> i64| counts.iter().map(f).sum::<i64>() as u64;
    assert_eq!(report.accounts, 12);
    assert_eq!(report.users, total(|c| c.1));
    assert_eq!(report.projects, total(|c| c.2));
    assert_eq!(report.tasks, total(|c| c.3));
    assert_eq!(report.subtasks, total(|c| c.4));
    Ok(())
}

#[tokio::test]
async fn overrides_narrow_the_profile_ranges() -> TestResult {
    let db = ScratchDatabase::migrated().await?;
    let options = SeedOptions::new(6)
        .profile("small")
        .min(SeedLevel::Users, 2)
        .max(SeedLevel::Users, 2)
        .min(SeedLevel::Tasks, 3)
        .max(SeedLevel::Tasks, 3)
        .max(SeedLevel::Subtasks, 1);
    seed_db(&db, &options).await?;
    let admin = db.admin_pool().await?;
    for (slug, users, projects, tasks, subtasks) in counts_by_account(&admin).await? {
        assert_eq!(users, 2, "{slug}");
        assert!(
            (1..=5).contains(&projects),
            "{slug}: the small profile's projects"
        );
        assert_eq!(tasks, 3 * projects, "{slug}");
        assert_eq!(subtasks, tasks, "{slug}");
    }
    Ok(())
}

#[tokio::test]
async fn the_same_seed_twice_gives_identical_rows_ids_included_whatever_the_jobs() -> TestResult {
    let (one, two) = (
        ScratchDatabase::migrated().await?,
        ScratchDatabase::migrated().await?,
    );
    seed_db(&one, &SeedOptions::new(8).seed(42).jobs(1)).await?;
    seed_db(&two, &SeedOptions::new(8).seed(42).jobs(3)).await?;
    let (one, two) = (one.admin_pool().await?, two.admin_pool().await?);
    assert!(account_count(&one).await? == 8);
    assert_eq!(exact_checksum(&one).await?, exact_checksum(&two).await?);
    assert_eq!(natural_checksum(&one).await?, natural_checksum(&two).await?);
    Ok(())
}

#[tokio::test]
async fn a_different_seed_gives_different_rows() -> TestResult {
    let (one, two) = (
        ScratchDatabase::migrated().await?,
        ScratchDatabase::migrated().await?,
    );
    seed_db(&one, &SeedOptions::new(4).seed(1)).await?;
    seed_db(&two, &SeedOptions::new(4).seed(2)).await?;
    let (one, two) = (one.admin_pool().await?, two.admin_pool().await?);
    assert_ne!(natural_checksum(&one).await?, natural_checksum(&two).await?);
    let names = "SELECT string_agg(name, ',' ORDER BY slug) FROM app.accounts";
    let (a, b): (String, String) = (
        sqlx::query_scalar(names).fetch_one(&one).await?,
        sqlx::query_scalar(names).fetch_one(&two).await?,
    );
    assert_ne!(a, b, "account names come from the seed");
    Ok(())
}

#[tokio::test]
async fn rollback_generates_and_reports_everything_but_commits_nothing() -> TestResult {
    let db = ScratchDatabase::migrated().await?;
    let report = seed_db(&db, &SeedOptions::new(5).rollback(true)).await?;
    assert_eq!(report.accounts, 5);
    assert!(report.subtasks > 0 && report.rolled_back);
    assert!(report.to_string().contains("Rolled back"));
    let admin = db.admin_pool().await?;
    assert_eq!(account_count(&admin).await?, 0);
    let subtasks: i64 = sqlx::query_scalar("SELECT count(*) FROM app.subtasks")
        .fetch_one(&admin)
        .await?;
    assert_eq!(subtasks, 0);
    Ok(())
}
