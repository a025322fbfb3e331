//! Faults under the HTTP layer: a slow statement, a held lock, a transaction left idle, killed
//! backends. Each is answered with a 503 and `Retry-After` (never a 500, never a hang), and
//! the pool serves every tenant again afterwards. The request deadline is set far out, so
//! only the database's own timeouts can end a request; every wait is bounded at 30 s, a
//! bound for correctness, not speed.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use rls_tenancy::demo::{DemoState, router};
use rls_tenancy::http::{AppError, RequestLimits, TenantTxLayer, Tx};
use rls_tenancy::{
    TenancyDeclaration, TenantId, TenantPool, TenantPoolOptions, TenantScope, TxTimeouts,
};
use sqlx::PgPool;

use super::{Reply, Site, assert_unavailable, lock_subtasks, send, state};

/// The longest any request of these tests may take before the test fails.
const BOUND: Duration = Duration::from_secs(30);

/// A pool of two connections with `timeouts`.
async fn pool(site: &Site, timeouts: TxTimeouts) -> TenantPool {
    let options = TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"))
        .max_connections(2)
        .timeouts(timeouts);
    site.pool_with(options).await
}

/// The demo's pages over `pool`, plus `/sleep` (a statement of a minute) and `/idle` (a
/// transaction left idle for 2 s between two statements), with a 10-minute deadline.
fn app(pool: &TenantPool) -> Router {
    let limits = RequestLimits::default().timeout(Duration::from_secs(600));
    let faults = Router::new()
        .route("/sleep", get(sleep_in_the_database))
        .route("/idle", get(idle_in_the_transaction))
        .layer(TenantTxLayer)
        .with_state(state(pool));
    router(DemoState::new(state(pool), Vec::new()).with_limits(limits)).merge(faults)
}

async fn sleep_in_the_database(mut tx: Tx) -> Result<&'static str, AppError> {
    sqlx::query("SELECT pg_sleep(60)")
        .execute(tx.conn())
        .await?;
    Ok("slept")
}

async fn idle_in_the_transaction(mut tx: Tx) -> Result<&'static str, AppError> {
    sqlx::query("SELECT 1").execute(tx.conn()).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    sqlx::query("SELECT 1").execute(tx.conn()).await?;
    Ok("done")
}

/// `GET path` for tenant alpha, failing the test past [`BOUND`].
async fn get_alpha(app: &Router, site: &Site, path: &str) -> Reply {
    tokio::time::timeout(BOUND, send(app, Some(&site.alpha.host()), path))
        .await
        .unwrap_or_else(|_| panic!("GET {path} hung"))
}

/// Every connection of the pool serves both tenants their own rows.
async fn assert_healthy(app: &Router, site: &Site) {
    for _ in 0..4 {
        for tenant in [&site.alpha, &site.bravo] {
            let reply = send(app, Some(&tenant.host()), "/api/subtasks").await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            assert_eq!(reply.json()["tenant"], tenant.slug);
            assert_eq!(reply.json()["total"], tenant.subtasks);
        }
    }
}

/// The SQLSTATE of the error a tenant transaction of `pool` gets for `sql`.
async fn sqlstate(pool: &TenantPool, site: &Site, sql: &'static str) -> String {
    let scope = TenantScope::new(
        TenantId::new(site.alpha.id).expect("id"),
        site.alpha.slug.parse().expect("slug"),
    );
    let mut tx = pool.begin(&scope).await.expect("begin");
    let err = tokio::time::timeout(BOUND, sqlx::query(sql).execute(&mut *tx))
        .await
        .expect("the statement hung")
        .expect_err("the statement must fail");
    err.as_database_error()
        .and_then(|e| e.code())
        .map(|code| code.into_owned())
        .unwrap_or_else(|| panic!("not a database error: {err}"))
}

/// The runtime role's backends: pid and the query they run.
async fn backends(admin: &PgPool, role: &str) -> Vec<(i32, String)> {
    sqlx::query_as("SELECT pid, query FROM pg_stat_activity WHERE usename = $1")
        .bind(role)
        .fetch_all(admin)
        .await
        .expect("pg_stat_activity")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_past_the_statement_timeout_is_a_503_and_the_pool_stays_healthy() {
    let site = Site::new().await;
    let timeouts = TxTimeouts::default().statement(Duration::from_millis(300));
    let pool = pool(&site, timeouts).await;
    assert_eq!(sqlstate(&pool, &site, "SELECT pg_sleep(60)").await, "57014");
    let app = app(&pool);
    assert_unavailable(&get_alpha(&app, &site, "/sleep").await);
    assert_healthy(&app, &site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_past_the_lock_timeout_is_a_503_and_the_pool_stays_healthy() {
    let site = Site::new().await;
    let timeouts = TxTimeouts::default().lock(Duration::from_millis(300));
    let pool = pool(&site, timeouts).await;
    let app = app(&pool);
    let lock = lock_subtasks(&site.admin).await;
    assert_eq!(
        sqlstate(&pool, &site, "SELECT count(*) FROM app.subtasks").await,
        "55P03"
    );
    // Answered while the lock is still held: the lock timeout ended the wait.
    assert_unavailable(&get_alpha(&app, &site, "/api/subtasks").await);
    lock.commit().await.expect("release the lock");
    assert_healthy(&app, &site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_left_idle_past_its_timeout_is_a_503_and_its_connection_is_not_reused() {
    let site = Site::new().await;
    let timeouts = TxTimeouts::default().idle_in_transaction(Duration::from_millis(300));
    let pool = pool(&site, timeouts).await;
    let app = app(&pool);
    assert_unavailable(&get_alpha(&app, &site, "/idle").await);
    assert_healthy(&app, &site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_idle_backends_are_replaced_without_an_error() {
    let site = Site::new().await;
    let pool = pool(&site, TxTimeouts::default()).await;
    let app = app(&pool);
    assert_healthy(&app, &site).await;
    let role = site.db.runtime_role().as_str().to_owned();
    let killed: Vec<i32> = backends(&site.admin, &role)
        .await
        .into_iter()
        .map(|(pid, _)| pid)
        .collect();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid")
        .bind(&killed)
        .execute(&site.admin)
        .await
        .expect("terminate");
    assert!(!killed.is_empty(), "the pool had no backend to kill");

    // Each pooled connection is dead now; BEGIN finds out and begins again on a live one.
    assert_healthy(&app, &site).await;
    let alive = backends(&site.admin, &role).await;
    assert!(
        alive.iter().all(|(pid, _)| !killed.contains(pid)),
        "a killed backend is still listed: {alive:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_killed_mid_statement_is_a_503_and_its_connection_is_not_reused() {
    let site = Site::new().await;
    let pool = pool(&site, TxTimeouts::default().statement(Duration::ZERO)).await;
    let app = app(&pool);
    let role = site.db.runtime_role().as_str().to_owned();
    let sleeping = {
        let (app, host) = (app.clone(), site.alpha.host());
        tokio::spawn(async move { send(&app, Some(&host), "/sleep").await })
    };
    let mut victim = None;
    for _ in 0..300 {
        victim = backends(&site.admin, &role)
            .await
            .into_iter()
            .find(|(_, query)| query.contains("pg_sleep"))
            .map(|(pid, _)| pid);
        if victim.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let victim = victim.expect("the request never reached the database");
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(victim)
        .fetch_one(&site.admin)
        .await
        .expect("terminate");
    assert!(terminated);

    let reply = tokio::time::timeout(BOUND, sleeping)
        .await
        .expect("the request hung")
        .expect("request task");
    assert_unavailable(&reply);
    assert_healthy(&app, &site).await;
    let alive = backends(&site.admin, &role).await;
    assert!(
        alive.iter().all(|(pid, _)| *pid != victim),
        "the killed backend is still listed: {alive:?}"
    );
}
