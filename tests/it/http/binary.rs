//! The `rls-demo` binary refuses bad flags and unreachable databases with exit code 2 and
//! a one-line message, before serving anything.

use std::process::Command;

fn run(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_rls-demo"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "off")
        .output()
        .expect("run rls-demo");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_malformed_base_domain_is_a_usage_error() {
    for base in [
        "Example.com",
        "127.0.0.1",
        "example.com:80",
        "a..b",
        "ex ample.com",
    ] {
        let (code, stderr) = run(&["--listen", "127.0.0.1:0", "--base-domain", base]);
        assert_eq!(code, Some(2), "{base}: {stderr}");
        assert!(stderr.contains("invalid base domain"), "{stderr}");
    }
}

#[test]
fn a_malformed_database_url_or_listen_address_is_a_usage_error() {
    let (code, stderr) = run(&["--listen", "127.0.0.1:0", "--database-url", "mysql://x@y/z"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("invalid database URL"), "{stderr}");
    let (code, _) = run(&["--listen", "localhost:http"]);
    assert_eq!(code, Some(2));
}

#[test]
fn an_unreachable_database_is_a_connection_error_that_hides_the_password() {
    let (code, stderr) = run(&[
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        "postgres://app:s3cret-pw@127.0.0.1:1/app",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
    assert!(
        !stderr.contains("s3cret-pw"),
        "the password leaked: {stderr}"
    );
}

#[test]
fn a_replica_url_with_another_role_or_database_or_without_a_primary_is_refused() {
    let primary = "postgres://app_runtime:s3cret@127.0.0.1:1/app";
    for (replica, what) in [
        ("postgres://admin:s3cret@127.0.0.1:2/app", "role `admin`"),
        (
            "postgres://app_runtime:s3cret@127.0.0.1:2/other",
            "database `other`",
        ),
    ] {
        let (code, stderr) = run(&[
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            primary,
            "--replica-url",
            replica,
        ]);
        assert_eq!(code, Some(2), "{stderr}");
        assert!(
            stderr.contains(what) && stderr.contains("same role and database"),
            "{stderr}"
        );
        assert!(
            !stderr.contains("s3cret"),
            "the password is hidden: {stderr}"
        );
    }
    let (code, stderr) = run(&["--listen", "127.0.0.1:0", "--replica-url", primary]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--database-url"), "{stderr}");
}

#[test]
fn a_peer_timeout_that_is_not_a_duration_above_zero_is_a_usage_error() {
    for bad in ["0s", "0ms", "fast", "-1s", "1 parsec"] {
        let flag = format!("--peer-timeout={bad}");
        let (code, stderr) = run(&["--listen", "127.0.0.1:0", &flag]);
        assert_eq!(code, Some(2), "{bad}: {stderr}");
        assert!(
            stderr.contains("--peer-timeout") && stderr.contains("above zero"),
            "{bad}: {stderr}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_rls-demo"))
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("DATABASE_URL")
        .env("RLS_DEMO_PEER_TIMEOUT", "0s")
        .env("RUST_LOG", "off")
        .output()
        .expect("run rls-demo");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--peer-timeout"), "{stderr}");
}

#[test]
fn a_valid_peer_timeout_is_taken_and_the_demo_goes_on_to_connect() {
    // Past argument parsing, the unreachable database is what stops it.
    let (code, stderr) = run(&[
        "--listen",
        "127.0.0.1:0",
        "--peer-timeout",
        "250ms",
        "--failover-wait",
        "100ms",
        "--database-url",
        "postgres://app:pw@127.0.0.1:1,127.0.0.1:2/app",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(!stderr.contains("--peer-timeout"), "{stderr}");
    assert!(stderr.contains("no host of the primary is up"), "{stderr}");
}
