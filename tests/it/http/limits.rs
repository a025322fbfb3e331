//! The request deadline and load shedding: requests past the in-flight bound are answered
//! with a 503 and `Retry-After` at once, the admitted ones succeed, and a request past its
//! deadline is cut (its transaction rolled back) without harming the pool.

use std::time::Duration;

use axum::http::StatusCode;
use rls_tenancy::demo::{DemoState, router};
use rls_tenancy::http::RequestLimits;
use sqlx::PgPool;

use super::{Site, assert_unavailable, lock_subtasks, send, state};

/// Waits (at most 30 s, a bound for correctness, not speed) until `n` of the runtime role's
/// backends wait for a lock.
async fn until_waiting_for_lock(admin: &PgPool, role: &str, n: i64) {
    for _ in 0..300 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND wait_event_type = 'Lock'",
        )
        .bind(role)
        .fetch_one(admin)
        .await
        .expect("pg_stat_activity");
        if waiting >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} requests never reached the database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_past_the_in_flight_bound_are_shed_at_once_and_the_admitted_ones_succeed() {
    let site = Site::new().await;
    let app = router(
        DemoState::new(state(&site.pool), Vec::new())
            .with_limits(RequestLimits::default().max_in_flight(2)),
    );
    let host = site.alpha.host();
    let lock = lock_subtasks(&site.admin).await;
    let admitted: Vec<_> = (0..2)
        .map(|_| {
            let (app, host) = (app.clone(), host.clone());
            tokio::spawn(async move { send(&app, Some(&host), "/api/subtasks").await })
        })
        .collect();
    until_waiting_for_lock(&site.admin, site.db.runtime_role().as_str(), 2).await;

    // Both slots are taken by requests stuck behind the lock: every other request is
    // answered while the lock is still held, so none of them waited for anything.
    for _ in 0..5 {
        assert_unavailable(&send(&app, Some(&host), "/api/subtasks").await);
    }
    // The probes are outside the bound.
    assert_eq!(send(&app, None, "/healthz").await.status, StatusCode::OK);

    lock.commit().await.expect("release the lock");
    for request in admitted {
        let reply = request.await.expect("request task");
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.json()["tenant"], site.alpha.slug);
        reply.assert_nothing_of(&site.bravo);
    }
    // The slots are free again.
    let reply = send(&app, Some(&site.bravo.host()), "/api/subtasks").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["total"], site.bravo.subtasks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_past_its_deadline_is_a_503_and_the_pool_stays_healthy() {
    let site = Site::new().await;
    let app = router(
        DemoState::new(state(&site.pool), Vec::new())
            .with_limits(RequestLimits::default().timeout(Duration::from_millis(500))),
    );
    let lock = lock_subtasks(&site.admin).await;
    let cut = send(&app, Some(&site.alpha.host()), "/api/subtasks").await;
    assert_unavailable(&cut);
    lock.commit().await.expect("release the lock");

    // Every connection of the pool serves again, for either tenant.
    for _ in 0..16 {
        for tenant in [&site.alpha, &site.bravo] {
            let reply = send(&app, Some(&tenant.host()), "/api/subtasks").await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            assert_eq!(reply.json()["total"], tenant.subtasks);
        }
    }
}
