//! Hostile hosts and parameters: a 400 or a 404, never a 5xx, never anyone's rows.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use rls_tenancy::demo::{DemoState, MAX_PAGE, router};
use rls_tenancy::http::HostSource;
use tower::ServiceExt;

use super::{BASE, Reply, Site, read, send, state};

/// Asserts `reply` has `status` and shows no tenant's rows.
fn assert_refused(site: &Site, reply: &Reply, status: StatusCode, what: &str) {
    assert_eq!(reply.status, status, "{what}: {}", reply.body);
    for tenant in [&site.alpha, &site.bravo, &site.inactive] {
        reply.assert_nothing_of(tenant);
    }
}

#[tokio::test]
async fn malformed_hosts_are_bad_requests_and_show_no_rows() {
    let site = Site::new().await;
    let long_label = format!("{}.{BASE}", "a".repeat(64));
    let hosts = [
        format!("TENANT-ALPHA.{BASE}"),
        format!("Tenant-alpha.{BASE}"),
        format!("tenant-alpha.{BASE}:0"),
        format!("tenant-alpha.{BASE}:080"),
        format!("tenant-alpha.{BASE}:+80"),
        format!("tenant-alpha.{BASE}:65536"),
        format!("tenant-alpha.{BASE}.."),
        format!("tenant-alpha..{BASE}"),
        format!(".{BASE}"),
        format!("www.tenant-alpha.{BASE}"),
        format!("tenant-alpha.{BASE}.evil.example"),
        "tenant-alpha.evil.example".to_owned(),
        format!("tenant%2Dalpha.{BASE}"),
        format!("-tenant-alpha.{BASE}"),
        format!("tenant_alpha.{BASE}"),
        format!("xn--tenant-alpha.{BASE}"),
        format!("user@tenant-alpha.{BASE}"),
        long_label,
        "127.0.0.1".to_owned(),
        "127.0.0.1:8080".to_owned(),
        "[::1]:8080".to_owned(),
        String::new(),
    ];
    for host in &hosts {
        for path in ["/", "/subtasks", "/api/subtasks"] {
            let reply = site.get(host, path).await;
            assert_refused(
                &site,
                &reply,
                StatusCode::BAD_REQUEST,
                &format!("{host:?} {path}"),
            );
        }
    }
}

#[tokio::test]
async fn hosts_with_bytes_that_no_domain_name_has_are_bad_requests() {
    let site = Site::new().await;
    for raw in [
        &b"tenant-\xc3\xa4lpha.demo.test"[..],
        b"tenant-alpha.demo.test\xff",
        b"tenant-alpha.demo.test\t",
        b"tenant-alpha .demo.test",
    ] {
        let request = Request::builder()
            .uri("/api/subtasks")
            .header(
                header::HOST,
                axum::http::HeaderValue::from_bytes(raw).expect("header"),
            )
            .body(Body::empty())
            .expect("request");
        let response = site.app.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{raw:?}");
    }
}

#[tokio::test]
async fn unknown_and_inactive_tenants_are_not_found_and_look_alike() {
    let site = Site::new().await;
    let unknown = site
        .get(&format!("tenant-zulu.{BASE}"), "/api/subtasks")
        .await;
    assert_refused(&site, &unknown, StatusCode::NOT_FOUND, "unknown");
    let inactive = site.get(&site.inactive.host(), "/api/subtasks").await;
    assert_refused(&site, &inactive, StatusCode::NOT_FOUND, "inactive");
    assert_eq!(unknown.body, inactive.body);
    let html = site.get(&site.inactive.host(), "/subtasks").await;
    assert_refused(&site, &html, StatusCode::NOT_FOUND, "inactive html");
    let root = site.get(&site.inactive.host(), "/").await;
    assert_refused(&site, &root, StatusCode::NOT_FOUND, "inactive root");
}

#[tokio::test]
async fn several_host_headers_or_disagreeing_hosts_are_bad_requests() {
    let site = Site::new().await;
    let alpha = site.alpha.host();
    let bravo = site.bravo.host();
    for (uri, hosts) in [
        ("/api/subtasks", vec![alpha.as_str(), bravo.as_str()]),
        ("/api/subtasks", vec![alpha.as_str(), alpha.as_str()]),
        (
            "http://tenant-bravo.demo.test/api/subtasks",
            vec![alpha.as_str()],
        ),
    ] {
        let mut request = Request::builder().uri(uri);
        for host in &hosts {
            request = request.header(header::HOST, *host);
        }
        let response = site
            .app
            .clone()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(
            response.status(),
            StatusCode::BAD_REQUEST,
            "{uri} {hosts:?}"
        );
    }
    let missing = send(&site.app, None, "/api/subtasks").await;
    assert_refused(&site, &missing, StatusCode::BAD_REQUEST, "no host");
}

#[tokio::test]
async fn forwarding_headers_are_ignored_unless_a_proxy_is_trusted() {
    let site = Site::new().await;
    let request = || {
        Request::builder()
            .uri("/api/subtasks")
            .header(header::HOST, site.alpha.host())
            .header("x-forwarded-host", site.bravo.host())
            .header("forwarded", format!("host={}", site.bravo.host()))
            .body(Body::empty())
            .expect("request")
    };
    let direct = site
        .app
        .clone()
        .oneshot(request())
        .await
        .expect("infallible");
    let direct = read(direct).await;
    assert_eq!(direct.status, StatusCode::OK);
    assert_eq!(direct.json()["tenant"], site.alpha.slug);
    direct.assert_nothing_of(&site.bravo);

    let proxied = router(DemoState::new(
        state(&site.pool).with_host_source(HostSource::TrustedProxy),
        Vec::new(),
    ));
    let reply = read(proxied.oneshot(request()).await.expect("infallible")).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["tenant"], site.bravo.slug);
    reply.assert_nothing_of(&site.alpha);
}

#[tokio::test]
async fn page_numbers_out_of_shape_are_bad_requests_and_pages_past_the_end_are_empty() {
    let site = Site::new().await;
    let host = site.alpha.host();
    for page in [
        "0",
        "-1",
        "+1",
        "01",
        "abc",
        "1.5",
        "1e3",
        "",
        "%20",
        "99999999999",
        "10002",
        "1000001",
        "18446744073709551617",
        "1%00",
        "1;DROP",
    ] {
        for path in ["/api/subtasks", "/subtasks"] {
            let reply = site.get(&host, &format!("{path}?page={page}")).await;
            assert_refused(
                &site,
                &reply,
                StatusCode::BAD_REQUEST,
                &format!("{path} page={page:?}"),
            );
        }
    }
    let twice = site.get(&host, "/api/subtasks?page=1&page=2").await;
    assert_eq!(twice.status, StatusCode::BAD_REQUEST);
    for page in [3, MAX_PAGE] {
        let reply = site.get(&host, &format!("/api/subtasks?page={page}")).await;
        assert_eq!(reply.status, StatusCode::OK, "page {page}");
        let json = reply.json();
        assert_eq!(json["items"].as_array().expect("items").len(), 0);
        assert_eq!(json["total"], site.alpha.subtasks);
        let html = site.get(&host, &format!("/subtasks?page={page}")).await;
        assert_eq!(html.status, StatusCode::OK);
        assert!(html.body.contains("No subtasks on page"));
    }
    let other_params = site.get(&host, "/api/subtasks?page=2&sort=evil").await;
    assert_eq!(other_params.json()["page"], 2);
}
