//! The demo over a real socket: `Demo::start` with a database URL, requests as raw HTTP/1.1
//! bytes, and a graceful shutdown.

use std::net::SocketAddr;

use rls_tenancy::demo::{Demo, DemoOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{BASE, Site};

/// Sends `GET path` with the raw `host_lines` and returns the status code and the body.
pub async fn raw_get(addr: SocketAddr, path: &str, host_lines: &[&str]) -> (u16, String) {
    let mut request = format!("GET {path} HTTP/1.1\r\n");
    for host in host_lines {
        request.push_str(&format!("Host: {host}\r\n"));
    }
    request.push_str("Connection: close\r\n\r\n");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("receive");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn the_demo_serves_each_tenant_its_own_rows_over_a_socket_and_stops_on_request() {
    let site = Site::new().await;
    let options = DemoOptions::new(
        "127.0.0.1:0".parse().expect("addr"),
        BASE.parse().expect("base"),
    )
    .database_url(site.db.runtime_url().clone())
    .max_connections(4);
    let demo = Demo::start(options).await.expect("demo");
    let addr = demo.local_addr();
    assert!(
        demo.cluster_dir().is_none(),
        "a database URL means no embedded cluster"
    );
    assert!(
        demo.tenant_urls().is_empty(),
        "no tenant links for a real database"
    );
    assert_eq!(
        demo.landing_url(),
        format!("http://{BASE}:{}/", addr.port())
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(demo.serve(async {
        let _ = stopped.await;
    }));

    for (me, other) in [(&site.alpha, &site.bravo), (&site.bravo, &site.alpha)] {
        let host = format!("{}:{}", me.host(), addr.port());
        let (status, body) = raw_get(addr, "/api/subtasks", &[&host]).await;
        assert_eq!(status, 200, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(json["tenant"], me.slug);
        assert!(
            json["items"]
                .as_array()
                .expect("items")
                .iter()
                .all(|item| item["account_id"] == me.id)
        );
        assert!(!body.contains(other.word));
        let (status, body) = raw_get(addr, "/subtasks?page=2", &[&host]).await;
        assert_eq!(status, 200);
        assert!(body.contains(&format!("{} subtask 11", me.word)));
        assert!(!body.contains(other.word));
    }
    let alpha = site.alpha.host();
    let bravo = site.bravo.host();
    let (status, body) = raw_get(addr, "/api/subtasks", &[&alpha, &bravo]).await;
    assert_eq!(status, 400, "two Host headers: {body}");
    assert!(!body.contains("subtask"));
    let (status, _) = raw_get(addr, "/api/subtasks", &[]).await;
    assert_eq!(status, 400, "no Host header");
    let (status, _) = raw_get(addr, "/api/subtasks", &["tenant-zulu.demo.test"]).await;
    assert_eq!(status, 404);
    let (status, body) = raw_get(addr, "/healthz", &["127.0.0.1"]).await;
    assert_eq!((status, body.as_str()), (200, "ok"));

    stop.send(()).expect("server still running");
    server
        .await
        .expect("server task")
        .expect("the server stops cleanly");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed after shutdown"
    );
}
