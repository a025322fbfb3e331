//! What cannot serve the database strategy yet says so (one line, exit 2) and never serves
//! it as the RLS strategy.

use rls_tenancy::{
    PlacementError, ScratchDatabase, Strategy, TenancyDeclaration, TenantPool, TenantPoolOptions,
};

const DUMMY_URL: &str = "postgres://nobody:pw@127.0.0.1:1/nothing";

#[test]
fn every_binary_that_does_not_serve_it_refuses_the_database_strategy_in_one_line() {
    let runs: [(&str, &[&str]); 5] = [
        (env!("CARGO_BIN_EXE_rls-demo"), &["--strategy", "database"]),
        (
            env!("CARGO_BIN_EXE_rls-seed"),
            &[
                "--strategy",
                "database",
                "--accounts",
                "1",
                "--database-url",
                DUMMY_URL,
            ],
        ),
        (
            env!("CARGO_BIN_EXE_rls-check"),
            &["--strategy", "database", "--database-url", DUMMY_URL],
        ),
        (
            env!("CARGO_BIN_EXE_rls-migrate"),
            &["--database-url", DUMMY_URL],
        ),
        (
            env!("CARGO_BIN_EXE_rls-tenant"),
            &["--database-url", DUMMY_URL, "list"],
        ),
    ];
    for (binary, args) in runs {
        let output = std::process::Command::new(binary)
            .args(args)
            // The last two take it from the environment.
            .env("RLS_STRATEGY", "database")
            .env_remove("DATABASE_URL")
            .env_remove("DEPLOY_DATABASE_URL")
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{binary}: {stderr}");
        assert!(
            stderr.contains("does not support --strategy database yet"),
            "{binary}: {stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "{binary}: {stderr}");
        assert!(!stderr.contains("pw@"), "{binary}: {stderr}");
    }
}

#[tokio::test]
async fn a_tenant_pool_over_one_database_refuses_the_database_strategy() {
    let db = ScratchDatabase::migrated().await.expect("scratch database");
    let decl = TenancyDeclaration::reference()
        .expect("declaration")
        .with_strategy(Strategy::Database);
    let err = TenantPool::connect(db.runtime_url(), TenantPoolOptions::new(decl))
        .await
        .expect_err("refused");
    let shown = err.to_string();
    assert!(
        matches!(
            err,
            rls_tenancy::DbError::Placement(PlacementError::OneDatabase)
        ),
        "{shown}"
    );
}
