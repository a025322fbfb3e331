//! What cannot serve the database strategy yet says so (one line, exit 2) and never serves
//! it as the RLS strategy.

use rls_tenancy::{
    PlacementError, ScratchDatabase, Strategy, TenancyDeclaration, TenantPool, TenantPoolOptions,
};

const DUMMY_URL: &str = "postgres://nobody:pw@127.0.0.1:1/nothing";

#[test]
fn what_does_not_serve_it_yet_refuses_the_database_strategy_in_one_line() {
    let runs: [(&str, &[&str], &str); 5] = [
        (
            env!("CARGO_BIN_EXE_rls-demo"),
            &["--strategy", "database"],
            "rls-demo does not support --strategy database yet",
        ),
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
            "rls-seed does not support --strategy database yet",
        ),
        (
            env!("CARGO_BIN_EXE_rls-tenant"),
            &[
                "--database-url",
                DUMMY_URL,
                "run",
                "--tenants",
                "all",
                "-c",
                "SELECT 1",
            ],
            "rls-tenant run does not support --strategy database yet",
        ),
        // The binaries that serve it need servers, and say how to name them.
        (
            env!("CARGO_BIN_EXE_rls-migrate"),
            &["--database-url", DUMMY_URL],
            "needs at least one server",
        ),
        (
            env!("CARGO_BIN_EXE_rls-check"),
            &[
                "--database-url",
                DUMMY_URL,
                "--server",
                "Bad=postgres://u:pw@h/d",
            ],
            "invalid server name",
        ),
    ];
    for (binary, args, says) in runs {
        let output = std::process::Command::new(binary)
            .args(args)
            .env("RLS_STRATEGY", "database")
            .env_remove("DATABASE_URL")
            .env_remove("DEPLOY_DATABASE_URL")
            .env_remove("RLS_SERVERS")
            .env_remove("RLS_CONFIG")
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{binary}: {stderr}");
        assert!(stderr.contains(says), "{binary}: {stderr}");
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
