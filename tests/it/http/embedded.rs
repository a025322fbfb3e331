//! The demo in embedded mode: its own cluster, the tenants rls-seed makes, and nothing left
//! behind on shutdown.

use axum::http::StatusCode;
use rls_tenancy::TenancyDeclaration;
use rls_tenancy::demo::{Demo, DemoOptions, DemoState, router, seed_options};
use rls_tenancy::http::AppState;
use rls_tenancy::{RegistryOptions, ScratchDatabase, TenantPool, TenantPoolOptions, seed};

use super::send;
use super::socket::raw_get;

#[tokio::test]
async fn the_embedded_demo_serves_the_tenants_rls_seed_makes_and_lists_their_urls() {
    let options = DemoOptions::new(
        "127.0.0.1:0".parse().expect("addr"),
        "localhost".parse().expect("base"),
    )
    .max_connections(2);
    let demo = Demo::start(options).await.expect("embedded demo");
    let addr = demo.local_addr();
    let port = addr.port();
    let cluster = demo.cluster_dir().expect("an embedded cluster").to_owned();
    let slugs: Vec<String> = (0..5).map(|n| format!("tenant-{n}")).collect();
    let expected: Vec<String> = slugs
        .iter()
        .map(|slug| format!("http://{slug}.localhost:{port}/"))
        .collect();
    assert_eq!(
        demo.tenant_urls(),
        expected,
        "tenant-0 .. tenant-4, in order"
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(demo.serve(async {
        let _ = stopped.await;
    }));

    // The same seed options on a fresh database of our own: rls-seed is deterministic, so the
    // demo's pages must be exactly these, ids included.
    let reference = ScratchDatabase::migrated().await.expect("scratch database");
    seed(reference.deploy_url(), &seed_options())
        .await
        .expect("seed the reference");
    let pool = TenantPool::connect(
        reference.runtime_url(),
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"))
            .max_connections(2),
    )
    .await
    .expect("runtime pool");
    let registry = pool.registry(RegistryOptions::default());
    let app = router(DemoState::new(
        AppState::new(pool.clone(), registry, "localhost".parse().expect("base")),
        Vec::new(),
    ));

    let mut account_ids = Vec::new();
    for slug in &slugs {
        let host = format!("{slug}.localhost:{port}");
        for page in ["1", "2"] {
            let path = format!("/api/subtasks?page={page}");
            let (status, body) = raw_get(addr, &path, &[&host]).await;
            assert_eq!(status, 200, "{host}{path}: {body}");
            let served: serde_json::Value = serde_json::from_str(&body).expect("json");
            let seeded = send(&app, Some(&format!("{slug}.localhost")), &path).await;
            assert_eq!(seeded.status, StatusCode::OK);
            assert_eq!(served, seeded.json(), "{host}{path} is rls-seed's data");
            assert_eq!(served["tenant"], slug.as_str());
            assert!(
                served["total"].as_i64().expect("total") > 10,
                "{slug} has more than one page: {}",
                served["total"]
            );
            let items = served["items"].as_array().expect("items");
            assert!(!items.is_empty(), "{host}{path} is empty");
            let id = &items[0]["account_id"];
            assert!(items.iter().all(|item| &item["account_id"] == id));
            if page == "1" {
                assert_eq!(items.len(), 10, "a full first page for {slug}");
                account_ids.push(id.as_i64().expect("account id"));
            }
        }
    }
    account_ids.sort_unstable();
    account_ids.dedup();
    assert_eq!(account_ids.len(), slugs.len(), "five distinct accounts");
    let (status, _) = raw_get(
        addr,
        "/api/subtasks",
        &[&format!("tenant-5.localhost:{port}")],
    )
    .await;
    assert_eq!(status, 404, "only five tenants are seeded");

    pool.close().await;
    stop.send(()).expect("server still running");
    server
        .await
        .expect("server task")
        .expect("the server stops cleanly");
    assert!(
        !cluster.exists(),
        "the embedded cluster {} is removed",
        cluster.display()
    );
}
