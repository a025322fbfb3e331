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
