//! The `rls-seed` binary: counts printed as the reference prints them, and bad input refused
//! with one line and exit code 2, before anything is written.

use std::process::{Command, Output};

use rls_tenancy::ScratchDatabase;

use super::{TestResult, account_count};

fn rls_seed(url: &str, args: &[&str]) -> std::io::Result<Output> {
    Command::new(env!("CARGO_BIN_EXE_rls-seed"))
        .arg("--database-url")
        .arg(url)
        .args(args)
        .env_remove("DEPLOY_DATABASE_URL")
        .env_remove("RUST_LOG")
        .output()
}

#[tokio::test]
async fn the_binary_prints_the_counts_as_the_reference_does() -> TestResult {
    let db = ScratchDatabase::migrated().await?;
    let out = rls_seed(
        db.deploy_url().expose_secret(),
        &["--accounts", "3", "--seed", "8"],
    )?;
    let stdout = String::from_utf8(out.stdout)?;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let labels: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split(": ").next())
        .collect();
    assert_eq!(
        labels,
        [
            "Accounts", "Users", "Projects", "Tasks", "Subtasks", "Elapsed"
        ]
    );
    assert!(stdout.starts_with("Accounts: 3\n"));
    // No progress bar when stderr is not a terminal: only the deploy-role writer's warning,
    // which every pool it opens logs.
    let stderr = String::from_utf8(out.stderr)?;
    assert!(
        stderr
            .lines()
            .all(|line| line.contains("TenantPoolOptions::deploy_role_writer")),
        "{stderr}"
    );
    Ok(())
}

#[tokio::test]
async fn bad_input_exits_2_with_one_line_and_writes_nothing() -> TestResult {
    let db = ScratchDatabase::migrated().await?;
    let deploy = db.deploy_url().expose_secret().to_owned();
    let cases: [(&str, &[&str], &str); 10] = [
        ("zero accounts", &["--accounts", "0"], "invalid --accounts"),
        (
            "negative accounts",
            &["--accounts", "-5"],
            "invalid --accounts",
        ),
        (
            "a negative minimum",
            &["--accounts", "2", "--min-users", "-1"],
            "invalid --min-users",
        ),
        (
            "min above max",
            &["--accounts", "2", "--min-tasks", "5", "--max-tasks", "2"],
            "invalid --min-tasks: 5 is greater than --max-tasks 2",
        ),
        (
            "a zero maximum",
            &["--accounts", "2", "--max-projects", "0"],
            "invalid --max-projects",
        ),
        (
            "an unknown profile",
            &["--accounts", "2", "--profile", "huge"],
            "unknown seed profile \"huge\"",
        ),
        (
            "zero jobs",
            &["--accounts", "2", "--jobs", "0"],
            "invalid --jobs",
        ),
        (
            "a negative seed",
            &["--accounts", "2", "--seed", "-1"],
            "--seed",
        ),
        ("not a number", &["--accounts", "many"], "--accounts"),
        ("no accounts flag", &[], "--accounts"),
    ];
    for (case, args, expected) in cases {
        let out = rls_seed(&deploy, args)?;
        let stderr = String::from_utf8(out.stderr)?;
        assert_eq!(out.status.code(), Some(2), "{case}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{case}: one line, got {stderr}"
        );
        assert!(stderr.starts_with("rls-seed: "), "{case}: {stderr}");
        assert!(stderr.contains(expected), "{case}: {stderr}");
        assert!(out.stdout.is_empty(), "{case}");
    }
    assert_eq!(account_count(&db.admin_pool().await?).await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_database_it_cannot_seed_exits_2_with_one_line_and_writes_nothing() -> TestResult {
    let migrated = ScratchDatabase::migrated().await?;
    let bare = ScratchDatabase::create().await?;
    let unreachable = "postgres://nobody:pw@127.0.0.1:1/nothing".to_owned();
    let cases = [
        (
            "an unreachable server",
            unreachable,
            "cannot connect to postgres://nobody:***@127.0.0.1:1/nothing",
        ),
        (
            "a database not migrated",
            bare.deploy_url().expose_secret().to_owned(),
            "the database is not migrated: table app.accounts is missing",
        ),
        (
            "the runtime role",
            migrated.runtime_url().expose_secret().to_owned(),
            "cannot run as role",
        ),
        (
            "a superuser",
            migrated.admin_url().expose_secret().to_owned(),
            "row-level security would not vet the rows",
        ),
    ];
    for (case, url, expected) in cases {
        let out = rls_seed(&url, &["--accounts", "2"])?;
        let stderr = String::from_utf8(out.stderr)?;
        assert_eq!(out.status.code(), Some(2), "{case}: {stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{case}: one line, got {stderr}"
        );
        assert!(stderr.contains(expected), "{case}: {stderr}");
        assert!(!stderr.contains(":pw@"), "{case}: never print a password");
    }
    assert_eq!(account_count(&migrated.admin_pool().await?).await?, 0);
    Ok(())
}

#[tokio::test]
async fn a_rerun_of_the_binary_refuses_and_resume_continues() -> TestResult {
    let db = ScratchDatabase::migrated().await?;
    let url = db.deploy_url().expose_secret().to_owned();
    assert_eq!(rls_seed(&url, &["--accounts", "2"])?.status.code(), Some(0));
    let out = rls_seed(&url, &["--accounts", "3"])?;
    let stderr = String::from_utf8(out.stderr)?;
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("already holds 2 of the 3 accounts"),
        "{stderr}"
    );
    let out = rls_seed(&url, &["--accounts", "3", "--resume"])?;
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout)?.starts_with("Accounts: 1\n"));
    assert_eq!(account_count(&db.admin_pool().await?).await?, 3);
    Ok(())
}
