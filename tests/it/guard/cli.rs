//! `rls-check` as CI runs it: exit 0 clean, 1 on a refusal, 2 on usage and connection errors,
//! one clear line on stderr, never a panic, never a password.

use rls_tenancy::Result;
use rls_tenancy::TenancyDeclaration;
use rls_tenancy::guard::{self, GuardOptions, RuleId};

use super::{Fixture, rls_check, rls_check_as_runtime, rules};

/// Asserts a run failed with exit 2 and one line on stderr containing `expected`.
fn assert_usage_error(run: &super::Run, expected: &str) {
    assert_eq!(run.code, Some(2), "{run:?}");
    assert!(run.stderr.contains(expected), "{run:?}");
    assert!(!run.stderr.contains("panicked"), "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
}

#[tokio::test]
async fn the_text_report_is_grouped_by_severity_and_hides_the_password() -> Result<()> {
    let mut fx = Fixture::migrated().await?;
    fx.inject(
        "ALTER TABLE app.tasks NO FORCE ROW LEVEL SECURITY;
         CREATE MATERIALIZED VIEW app.user_counts AS SELECT 1 AS one;
         GRANT SELECT ON app.user_counts TO {runtime}",
    )
    .await?;
    let run = rls_check_as_runtime(fx.db(), &[]).await?;
    assert_eq!(run.code, Some(1), "{run:?}");
    let (refuse, warn) = (run.stdout.find("REFUSE (1)"), run.stdout.find("WARN ("));
    assert!(
        refuse.is_some() && warn.is_some() && refuse < warn,
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("fix:    ALTER TABLE \"app\".\"tasks\" FORCE ROW LEVEL SECURITY;")
    );
    let url = url::Url::parse(fx.db().runtime_url().expose_secret())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let password = url.password().unwrap_or_default();
    assert!(password.len() > 8, "the scratch role has a real password");
    assert!(!run.stdout.contains(password) && !run.stderr.contains(password));
    Ok(())
}

#[tokio::test]
async fn the_json_report_lists_findings_by_severity_with_rule_ids() -> Result<()> {
    let mut fx = Fixture::migrated().await?;
    fx.inject("GRANT TRUNCATE ON app.users TO {runtime}")
        .await?;
    let run = rls_check_as_runtime(fx.db(), &["--format", "json"]).await?;
    assert_eq!(run.code, Some(1), "{run:?}");
    let json: serde_json::Value =
        serde_json::from_str(&run.stdout).map_err(|e| std::io::Error::other(e.to_string()))?;
    assert_eq!(json["summary"]["refuse"], 1, "{json}");
    assert_eq!(json["refuse"][0]["rule"], "table-truncate");
    assert_eq!(json["refuse"][0]["severity"], "refuse");
    assert_eq!(json["refuse"][0]["object"], "table app.users");
    assert_eq!(
        json["refuse"][0]["fix_sql"],
        format!(
            "REVOKE TRUNCATE ON TABLE \"app\".\"users\" FROM \"{}\";",
            fx.db().runtime_role().as_str()
        )
    );
    Ok(())
}

#[tokio::test]
async fn role_inspects_another_role_than_the_one_logged_in() -> Result<()> {
    let fx = Fixture::migrated().await?;
    let admin = fx.db().admin_url();
    let runtime = fx.db().runtime_role().as_str();
    let run = rls_check(&["--database-url", admin.expose_secret(), "--role", runtime]).await?;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(
        run.stdout.starts_with(&format!("role {runtime} ")),
        "{run:?}"
    );
    let deploy = fx.db().deploy_role().as_str();
    let run = rls_check(&["--database-url", admin.expose_secret(), "--role", deploy]).await?;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stdout.contains("[owns-schema]"), "{run:?}");
    let report = guard::check_url(
        &admin,
        &GuardOptions::new(TenancyDeclaration::reference().expect("declaration")).role(deploy),
    )
    .await?;
    assert!(rules(&report).contains(&RuleId::OwnsDatabase));
    Ok(())
}

#[tokio::test]
async fn an_unreachable_server_exits_2_with_a_clear_message() -> Result<()> {
    let run = rls_check(&[
        "--database-url",
        "postgres://someone:s3cretpw@127.0.0.1:1/app",
    ])
    .await?;
    assert_usage_error(
        &run,
        "cannot connect to postgres://someone:***@127.0.0.1:1/app",
    );
    assert!(!run.stderr.contains("s3cretpw"), "{run:?}");
    assert_eq!(run.stderr.trim_end().lines().count(), 1, "{run:?}");
    Ok(())
}

#[tokio::test]
async fn a_missing_schema_exits_2_with_a_clear_message() -> Result<()> {
    let fx = Fixture::migrated().await?;
    let run = rls_check_as_runtime(fx.db(), &["--schema", "nosuch"]).await?;
    assert_usage_error(&run, "schema \"nosuch\" does not exist");
    Ok(())
}

#[tokio::test]
async fn an_unmigrated_database_exits_2_with_a_clear_message() -> Result<()> {
    let db = rls_tenancy::ScratchDatabase::create().await?;
    let run = rls_check(&["--database-url", db.runtime_url().expose_secret()]).await?;
    assert_usage_error(&run, "schema \"app\" does not exist");
    Ok(())
}

#[tokio::test]
async fn an_unknown_role_exits_2() -> Result<()> {
    let fx = Fixture::migrated().await?;
    let run = rls_check_as_runtime(fx.db(), &["--role", "no_such_role_anywhere"]).await?;
    assert_usage_error(&run, "role \"no_such_role_anywhere\" does not exist");
    Ok(())
}

#[tokio::test]
async fn usage_errors_exit_2() -> Result<()> {
    assert_usage_error(
        &rls_check(&[]).await?,
        "no database URL given: pass --database-url or set DATABASE_URL",
    );
    assert_usage_error(
        &rls_check(&["--database-url", "mysql://x@y/z"]).await?,
        "invalid database URL",
    );
    let url = "postgres://x@127.0.0.1:1/app";
    assert_usage_error(
        &rls_check(&["--database-url", url, "--min-server-version", "15"]).await?,
        "invalid server version \"15\"",
    );
    assert_usage_error(
        &rls_check(&["--database-url", url, "--schema", "App; DROP"]).await?,
        "invalid schema",
    );
    assert_usage_error(
        &rls_check(&["--database-url", url, "--format", "xml"]).await?,
        "invalid value 'xml'",
    );
    Ok(())
}
