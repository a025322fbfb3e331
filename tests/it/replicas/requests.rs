//! The request's `Tx` through `AppState::with_routing`, over a primary and a streaming
//! standby: a request with a safe method reads on the replica, read-only, or behind
//! `use_primary` on the primary, still read-only; a request that writes, one behind
//! `writing_route`, and every read made while a write transaction is open run on the primary.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode, header};
use axum::middleware::from_fn;
use axum::routing::get;
use rls_tenancy::RoutingPool;
use rls_tenancy::http::{
    AppError, AppState, Tenant, TenantTxLayer, Tx, use_primary, writing_route,
};
use tower::ServiceExt;

use super::{shared, site_with_replica};
use crate::http::{Reply, Site, read, state};

/// Where the request's transaction runs: `served_by in_recovery read_only foreign_rows`.
async fn whereabouts(mut tx: Tx) -> Result<String, AppError> {
    let own = tx.scope().id().as_i64().expect("bigint id");
    let (in_recovery, read_only, foreign): (bool, String, i64) = sqlx::query_as(
        "SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.current_setting('transaction_read_only'),
                (SELECT count(*) FROM app.projects WHERE account_id <> $1)",
    )
    .bind(own)
    .fetch_one(tx.conn())
    .await?;
    Ok(format!(
        "{} {in_recovery} {read_only} {foreign}",
        tx.served_by().as_str()
    ))
}

/// Writes a project named `written` for the request's tenant.
async fn insert(mut tx: Tx) -> Result<String, AppError> {
    let own = tx.scope().id().as_i64().expect("bigint id");
    sqlx::query("INSERT INTO app.projects (account_id, name) VALUES ($1, 'written')")
        .bind(own)
        .execute(tx.conn())
        .await?;
    Ok(tx.served_by().as_str().to_owned())
}

/// The request's transaction and a read the handler opens while it is open.
async fn nested(
    State(state): State<AppState>,
    Tenant(scope): Tenant,
    tx: Tx,
) -> Result<String, AppError> {
    let inner = state.routing().read(&scope).await?;
    let served = format!("{} {}", tx.served_by().as_str(), inner.served_by().as_str());
    inner.commit().await?;
    Ok(served)
}

fn routes(state: AppState) -> Router {
    Router::new()
        .route("/where", get(whereabouts).post(whereabouts))
        .route(
            "/where-primary",
            get(whereabouts).layer(from_fn(use_primary)),
        )
        .route("/insert", get(insert).post(insert))
        .route("/insert-marked", get(insert).layer(from_fn(writing_route)))
        .route("/insert-primary", get(insert).layer(from_fn(use_primary)))
        .route("/nested", get(nested).post(nested))
        .layer(TenantTxLayer)
        .with_state(state)
}

struct Routed {
    site: Site,
    routing: RoutingPool,
}

/// The HTTP site, with a routing pool over a standby that replays at once.
async fn routed_site() -> Routed {
    let (site, routing) = site_with_replica(shared().await.fast()[0]).await;
    Routed { site, routing }
}

impl Routed {
    async fn send(&self, app: &Router, method: &str, path: &str) -> Reply {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.site.alpha.host())
            .body(Body::empty())
            .expect("request");
        read(app.clone().oneshot(request).await.expect("infallible")).await
    }

    /// The body of a 200 to `method path`.
    async fn answers(&self, app: &Router, method: &str, path: &str) -> String {
        let reply = self.send(app, method, path).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{method} {path}: {}",
            reply.body
        );
        reply.body
    }

    async fn written(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM app.projects WHERE name = 'written'")
            .fetch_one(&self.site.admin)
            .await
            .expect("count")
    }
}

#[tokio::test]
async fn a_safe_request_reads_the_replica_and_any_other_the_primary() {
    let routed = routed_site().await;
    let app = routes(state(&routed.site.pool).with_routing(routed.routing.clone()));
    for (method, path, want) in [
        ("GET", "/where", "replica true on 0"),
        ("HEAD", "/where", ""),
        ("POST", "/where", "primary false off 0"),
        ("GET", "/where-primary", "primary false on 0"),
        ("GET", "/nested", "replica replica"),
        ("POST", "/nested", "primary primary"),
    ] {
        let body = routed.answers(&app, method, path).await;
        assert_eq!(body, want, "{method} {path}");
    }

    let without_routing = routes(state(&routed.site.pool));
    assert_eq!(
        routed.answers(&without_routing, "GET", "/where").await,
        "primary false off 0",
        "without with_routing, the request's Tx stays read-write on the primary"
    );
}

#[tokio::test]
async fn a_write_runs_on_the_primary_and_an_unmarked_get_cannot_write() {
    let routed = routed_site().await;
    let app = routes(state(&routed.site.pool).with_routing(routed.routing.clone()));

    // `use_primary` sends a route's reads to the primary; it does not mark the route as
    // writing: its write would set no pinning cookie, and the user agent's next read would
    // go to a replica that may not have it yet.
    for path in ["/insert", "/insert-primary"] {
        let reply = routed.send(&app, "GET", path).await;
        assert_eq!(
            reply.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "GET {path}: {}",
            reply.body
        );
    }
    assert_eq!(
        routed.written().await,
        0,
        "refused in their read-only transactions"
    );

    for (method, path) in [("POST", "/insert"), ("GET", "/insert-marked")] {
        let body = routed.answers(&app, method, path).await;
        assert_eq!(body, "primary", "{method} {path}");
    }
    assert_eq!(routed.written().await, 2, "both writes committed");
}
