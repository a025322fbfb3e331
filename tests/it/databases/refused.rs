//! Bad input to the binaries under the database strategy: one line, exit 2, no password
//! shown, nothing written; and what cannot serve the strategy yet says so the same way.

use rls_tenancy::{
    PlacementError, ScratchDatabase, ScratchServers, Strategy, TenancyDeclaration, TenantPool,
    TenantPoolOptions,
};

const DUMMY_URL: &str = "postgres://nobody:pw@127.0.0.1:1/nothing";

#[test]
fn bad_input_under_the_database_strategy_is_refused_in_one_line_with_exit_2() {
    let runs: [(&str, &[&str], &str); 10] = [
        // A control database but no servers.
        (
            env!("CARGO_BIN_EXE_rls-demo"),
            &["--database-url", DUMMY_URL],
            "needs at least one server",
        ),
        (
            env!("CARGO_BIN_EXE_rls-seed"),
            &["--accounts", "1", "--database-url", DUMMY_URL],
            "needs at least one server",
        ),
        // Servers for the embedded demo, which starts its own.
        (
            env!("CARGO_BIN_EXE_rls-demo"),
            &["--server", "one=postgres://u:pw@127.0.0.1:1/postgres"],
            "--server and --config need --database-url",
        ),
        (
            env!("CARGO_BIN_EXE_rls-demo"),
            &["--max-connections", "0"],
            "--max-connections",
        ),
        (
            env!("CARGO_BIN_EXE_rls-demo"),
            &[
                "--database-url",
                DUMMY_URL,
                "--server",
                "one=postgres://u:pw@127.0.0.1:1/postgres",
                "--replica-url",
                DUMMY_URL,
            ],
            "--replica-url is not available with --strategy database",
        ),
        (
            env!("CARGO_BIN_EXE_rls-seed"),
            &[
                "--accounts",
                "1",
                "--database-url",
                DUMMY_URL,
                "--server",
                "one=postgres://u:pw@127.0.0.1:1/postgres",
                "--rollback",
            ],
            "invalid --rollback",
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
            "needs at least one server",
        ),
        // The binaries that serve it need servers, and say how to name them.
        (
            env!("CARGO_BIN_EXE_rls-migrate"),
            &["--database-url", DUMMY_URL],
            "needs at least one server",
        ),
        (
            env!("CARGO_BIN_EXE_rls-seed"),
            &[
                "--accounts",
                "1",
                "--database-url",
                DUMMY_URL,
                "--server",
                "One=postgres://u:pw@127.0.0.1:1/postgres",
            ],
            "invalid server name",
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
        assert_one_line_exit_2(binary, &output, says);
    }
}

/// Asserts exit code 2 and one line on stderr saying `says`, without a password.
fn assert_one_line_exit_2(binary: &str, output: &std::process::Output, says: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{binary}: {stderr}");
    assert!(stderr.contains(says), "{binary}: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{binary}: {stderr}");
    assert!(!stderr.contains("pw@"), "{binary}: {stderr}");
}

/// `rls-seed --strategy database` over the bed's control database with `servers`
/// (`RLS_SERVERS`) and `args`.
fn rls_seed(bed: &ScratchServers, key: &str, servers: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_rls-seed"))
        .args(["--strategy", "database", "--profile", "small"])
        .args(args)
        .env(
            "DEPLOY_DATABASE_URL",
            bed.control().deploy_url().expose_secret(),
        )
        .env("RLS_SERVERS", servers)
        .env("RLS_RUNTIME_ROLE", bed.control().runtime_role().as_str())
        .env("RLS_TENANT_KEY_FILE", key)
        .env_remove("RLS_CONFIG")
        .output()
        .expect("rls-seed runs")
}

/// The bed's deploy servers as `RLS_SERVERS` gives them, with `extra` entries after.
fn deploy_servers(bed: &ScratchServers, extra: &[&str]) -> String {
    bed.deploy_servers()
        .iter()
        .map(|s| format!("{}={}", s.name(), s.url().expose_secret()))
        .chain(extra.iter().map(|e| (*e).to_owned()))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test]
async fn rls_seed_refuses_an_unreachable_server_or_too_many_tenants_before_writing_anything() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("tenant.key");
    std::fs::write(&key, bed.tenant_key().to_hex()).expect("key file");
    let key = key.to_str().expect("path");
    let unreachable = deploy_servers(&bed, &["three=postgres://u:pw@127.0.0.1:1/postgres"]);
    let output = rls_seed(&bed, key, &unreachable, &["--accounts", "3"]);
    assert_one_line_exit_2("rls-seed", &output, "cannot connect to");

    let config = dir.path().join("servers.toml");
    let entries: String = bed
        .deploy_servers()
        .iter()
        .map(|s| {
            format!(
                "[[server]]\nname = \"{}\"\nurl = \"{}\"\nmax_tenants = 1\n",
                s.name(),
                s.url().expose_secret()
            )
        })
        .collect();
    std::fs::write(&config, entries).expect("config");
    let config = config.to_str().expect("path");
    let output = rls_seed(&bed, key, "", &["--accounts", "3", "--config", config]);
    assert_one_line_exit_2("rls-seed", &output, "3 tenants do not fit on the servers");

    let (databases, registered) = super::footprint(&bed).await;
    assert!(databases.is_empty(), "{databases:?}");
    assert_eq!(registered, 0);

    // Within the limits it seeds, and prints the closing counts.
    let output = rls_seed(&bed, key, "", &["--accounts", "2", "--config", config]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Accounts: 2"), "{stdout}");
    let (databases, registered) = super::footprint(&bed).await;
    assert_eq!(registered, 2);
    assert_eq!(databases.len(), 2, "{databases:?}");
    // A third would pass server one's max_tenants: refused, nothing added.
    let output = rls_seed(
        &bed,
        key,
        "",
        &["--accounts", "3", "--resume", "--config", config],
    );
    assert_one_line_exit_2("rls-seed", &output, "do not fit");
    assert_eq!(super::footprint(&bed).await.1, 2);
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
