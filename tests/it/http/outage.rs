//! A database outage on a throwaway cluster of the test's own (the shared server is never
//! stopped): while the database is down, `/readyz` answers 503 within its deadline and
//! tenant requests 503 within a second, each with `Retry-After` (those whose tenant must be
//! looked up in the registry too: it shares the pool's view of the database); once it is
//! back, both answer 200 again, with no restart of anything but the database.

use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use rls_tenancy::demo::{DemoState, router};
use rls_tenancy::{AdminServer, ScratchDatabase, TenancyDeclaration, TenantPoolOptions};

use super::{Reply, Site, assert_unavailable, send, state};

/// The limits the issue names: a tenant request during an outage answers within 1 s; the
/// readiness probe within its deadline (2 s, the default), here with a second of slack.
const TENANT_BOUND: Duration = Duration::from_secs(1);
const READY_BOUND: Duration = Duration::from_secs(3);

async fn timed(app: &Router, host: Option<&str>, path: &str) -> (Reply, Duration) {
    let started = Instant::now();
    let reply = tokio::time::timeout(Duration::from_secs(30), send(app, host, path))
        .await
        .unwrap_or_else(|_| panic!("GET {path} hung"));
    (reply, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_an_outage_requests_fail_fast_and_afterwards_they_succeed_without_a_restart() {
    let server = AdminServer::start_local()
        .await
        .expect("a throwaway cluster");
    let site = Site::on(
        ScratchDatabase::migrated_on(server.clone())
            .await
            .expect("database"),
    )
    .await;
    let cluster = server
        .local_cluster()
        .expect("the cluster this test started");
    let pool = site
        .pool_with(
            TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"))
                .max_connections(4),
        )
        .await;
    let app_state = state(&pool);
    let app = router(DemoState::new(app_state, Vec::new()));
    let host = site.alpha.host();
    let (ready, _) = timed(&app, None, "/readyz").await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    let (page, _) = timed(&app, Some(&host), "/api/subtasks").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);

    site.admin.close().await;
    tokio::task::block_in_place(|| cluster.stop()).expect("stop the cluster");

    let (ready, took) = timed(&app, None, "/readyz").await;
    assert_unavailable(&ready);
    assert!(took < READY_BOUND, "/readyz took {took:?}");
    // The probe found the database down: every tenant request now fails fast, a tenant the
    // registry never looked up (nothing cached: its lookup needs the database) as well as
    // one it did (whose cache the registry's listener may have emptied meanwhile).
    for _ in 0..5 {
        for host in [site.bravo.host(), host.clone()] {
            let (reply, took) = timed(&app, Some(&host), "/api/subtasks").await;
            assert_unavailable(&reply);
            assert!(
                took < TENANT_BOUND,
                "a request for {host} took {took:?} during the outage"
            );
        }
    }

    tokio::task::block_in_place(|| cluster.resume()).expect("start the cluster again");
    let mut ready = timed(&app, None, "/readyz").await.0;
    for _ in 0..60 {
        if ready.status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        ready = timed(&app, None, "/readyz").await.0;
    }
    assert_eq!(
        ready.status,
        StatusCode::OK,
        "not ready after the outage: {}",
        ready.body
    );
    for tenant in [&site.alpha, &site.bravo] {
        let (reply, _) = timed(&app, Some(&tenant.host()), "/api/subtasks").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.json()["total"], tenant.subtasks);
        reply.assert_nothing_of(if tenant.slug == site.alpha.slug {
            &site.bravo
        } else {
            &site.alpha
        });
    }
}
