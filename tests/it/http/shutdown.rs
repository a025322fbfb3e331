//! Graceful shutdown of the `rls-demo` binary: on SIGTERM it stops accepting, lets requests
//! in flight finish within `--shutdown-timeout`, cuts the ones still stuck after it (their
//! transactions roll back) and exits 0.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::socket::raw_get;
use super::{Site, lock_subtasks};

/// Starts the binary against the site's database and returns it with its address.
async fn start_demo(site: &Site, shutdown_timeout: &str) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rls-demo"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--base-domain",
            super::BASE,
            "--shutdown-timeout",
            shutdown_timeout,
        ])
        .env("DATABASE_URL", site.db.runtime_url().expose_secret())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start rls-demo");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await.expect("read stdout") {
        if let Some(addr) = line.strip_prefix("rls-demo listening on http://") {
            let addr = addr.parse().expect("address");
            // Keep reading, so the demo's later lines do not meet a closed pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return (child, addr);
        }
    }
    panic!("rls-demo exited before it listened");
}

/// Sends SIGTERM to the child.
fn terminate(child: &Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// How many of `role`'s backends wait for a lock, or are inside a transaction at all.
async fn backends(admin: &PgPool, role: &str, waiting_only: bool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE usename = $1 AND xact_start IS NOT NULL
           AND (NOT $2 OR wait_event_type = 'Lock')",
    )
    .bind(role)
    .bind(waiting_only)
    .fetch_one(admin)
    .await
    .expect("pg_stat_activity")
}

/// Polls `condition` every 100 ms for at most 30 s (a bound for correctness, not speed).
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..300 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never: {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sigterm_a_request_in_flight_finishes_and_the_demo_exits_0() {
    let site = Site::new().await;
    let role = site.db.runtime_role().as_str().to_owned();
    let (mut demo, addr) = start_demo(&site, "60s").await;
    let lock = lock_subtasks(&site.admin).await;
    let host = site.alpha.host();
    let in_flight =
        tokio::spawn(async move { raw_get(addr, "/api/subtasks", &[host.as_str()]).await });
    eventually("the request waits for the lock", || async {
        backends(&site.admin, &role, true).await == 1
    })
    .await;

    terminate(&demo);
    eventually("the demo stops accepting", || async {
        tokio::net::TcpStream::connect(addr).await.is_err()
    })
    .await;
    lock.commit().await.expect("release the lock");

    let (status, body) = in_flight.await.expect("request task");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("\"tenant\":\"{}\"", site.alpha.slug)),
        "{body}"
    );
    let exit = demo.wait().await.expect("wait");
    assert_eq!(exit.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sigterm_a_request_stuck_past_the_deadline_is_cut_and_the_demo_exits_0() {
    let site = Site::new().await;
    let role = site.db.runtime_role().as_str().to_owned();
    let (mut demo, addr) = start_demo(&site, "1s").await;
    let lock = lock_subtasks(&site.admin).await;
    let host = site.alpha.host();
    let stuck = tokio::spawn(async move { raw_get(addr, "/api/subtasks", &[host.as_str()]).await });
    eventually("the request waits for the lock", || async {
        backends(&site.admin, &role, true).await == 1
    })
    .await;

    terminate(&demo);
    // The lock is held past the deadline: the request is cut while it still waits.
    let (status, body) = stuck.await.expect("request task");
    assert_eq!(status, 503, "{body}");
    let exit = demo.wait().await.expect("wait");
    assert_eq!(exit.code(), Some(0));

    // Nothing of the cut request survives: once the lock is gone, its transaction ends
    // without committing anything (the test's own pool of the role is idle).
    lock.commit().await.expect("release the lock");
    eventually("no transaction of the runtime role is left", || async {
        backends(&site.admin, &role, false).await == 0
    })
    .await;
}
