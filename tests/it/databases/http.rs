//! The demo's router under the database strategy, over two real servers seeded by
//! `rls-seed --strategy database`: the same pages and JSON, a stopped server failing only its
//! own tenants (503 with `Retry-After`) while the others keep answering with their own rows,
//! and requests for more tenants than the budget allows answered without a hang.

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use rls_tenancy::demo::{DemoState, router};
use rls_tenancy::http::AppState;
use rls_tenancy::{
    AdminServer, PoolSetOptions, RegistryOptions, ScratchServers, TenantPool, TenantPoolOptions,
    seed,
};

use super::{admin, seeding};
use crate::http::{BASE, Reply, assert_unavailable, send};

/// A seeded tenant: slug, id, server, and the names of its first page of subtasks as the
/// superuser reads them in its database.
struct Tenant {
    slug: String,
    id: i64,
    server: String,
    first_page: Vec<String>,
}

/// Seeds `accounts` tenants of the small profile over the bed's two servers.
async fn seeded(bed: &ScratchServers, accounts: i64) -> Vec<Tenant> {
    let options = seeding(bed, accounts, bed.deploy_servers().clone())
        .min(rls_tenancy::SeedLevel::Subtasks, 2);
    seed(bed.control().deploy_url(), &options)
        .await
        .expect("seeded");
    let mut control = admin(bed, "one", bed.control().name().as_str()).await;
    let rows: Vec<(String, i64, String, String)> = sqlx::query_as(
        "SELECT slug::text, id, server_name::text, database_name::text FROM app.accounts ORDER BY id",
    )
    .fetch_all(&mut control)
    .await
    .expect("registry");
    let mut tenants = Vec::new();
    for (slug, id, server, database) in rows {
        let mut su = admin(bed, &server, &database).await;
        let first_page: Vec<String> =
            sqlx::query_scalar("SELECT name::text FROM app.subtasks ORDER BY name, id LIMIT 10")
                .fetch_all(&mut su)
                .await
                .expect("first page");
        tenants.push(Tenant {
            slug,
            id,
            server,
            first_page,
        });
    }
    tenants
}

/// The demo's router over the bed's servers as the runtime role, under `budget`.
async fn app(bed: &ScratchServers, budget: PoolSetOptions) -> Router {
    let pool = TenantPool::connect_servers(
        bed.control().runtime_url(),
        bed.runtime_servers(),
        TenantPoolOptions::new(bed.declaration().clone())
            .tenant_key(bed.tenant_key().clone())
            .max_connections(2)
            .pool_set(budget),
    )
    .await
    .expect("tenant pool over two servers");
    let registry = pool.registry(RegistryOptions::default());
    let state = AppState::new(pool, registry, BASE.parse().expect("base domain"));
    router(DemoState::new(state, Vec::new()))
}

/// `GET /api/subtasks` for `tenant`, never taking longer than the test allows.
async fn api(app: &Router, tenant: &Tenant) -> Reply {
    let host = format!("{}.{BASE}", tenant.slug);
    tokio::time::timeout(
        Duration::from_secs(15),
        send(app, Some(&host), "/api/subtasks"),
    )
    .await
    .unwrap_or_else(|_| panic!("{}: the request hung", tenant.slug))
}

/// Asserts a 200 whose items are exactly `tenant`'s first page, each carrying its id.
fn assert_own_rows(reply: &Reply, tenant: &Tenant) {
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "{}: {}",
        tenant.slug,
        reply.body
    );
    let json = reply.json();
    assert_eq!(json["tenant"], tenant.slug.as_str());
    let items = json["items"].as_array().expect("items");
    let names: Vec<&str> = items
        .iter()
        .map(|item| item["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, tenant.first_page, "{}", tenant.slug);
    assert!(
        items.iter().all(|item| item["account_id"] == tenant.id),
        "{}: another tenant's row: {}",
        tenant.slug,
        reply.body
    );
}

#[tokio::test]
async fn a_stopped_server_answers_503_for_its_tenants_only_and_200_again_once_back() {
    let own = AdminServer::start_local()
        .await
        .expect("a cluster of its own");
    let bed = ScratchServers::create_with(own.clone())
        .await
        .expect("scratch servers");
    let cluster = own.local_cluster().expect("a local cluster");
    let tenants = seeded(&bed, 4).await;
    let (staying, stopping): (Vec<&Tenant>, Vec<&Tenant>) =
        tenants.iter().partition(|t| t.server == "one");
    assert_eq!((staying.len(), stopping.len()), (2, 2));
    assert_ne!(tenants[0].first_page, tenants[1].first_page);
    // The default 2 s acquire timeout: a database's first request opens its pool and runs the
    // guard and probes there, which a loaded machine can take most of a second for.
    let app = app(&bed, PoolSetOptions::default()).await;
    for tenant in &tenants {
        assert_own_rows(&api(&app, tenant).await, tenant);
    }
    // The HTML page too, with the tenant's own first row.
    let page = send(
        &app,
        Some(&format!("{}.{BASE}", tenants[1].slug)),
        "/subtasks",
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body.contains(&tenants[1].first_page[0]),
        "{}",
        page.body
    );

    cluster.stop().expect("stop server two");
    // Requests for all four at once, several rounds, while server two is down.
    for _ in 0..3 {
        let replies = futures_util::future::join_all(tenants.iter().map(|t| api(&app, t))).await;
        for (tenant, reply) in tenants.iter().zip(&replies) {
            match tenant.server.as_str() {
                "one" => assert_own_rows(reply, tenant),
                _ => assert_unavailable(reply),
            }
        }
    }

    cluster.resume().expect("server two back");
    for tenant in &stopping {
        let mut answered = None;
        // A probe waits half a second for a connection; a restarted server on a loaded
        // machine may need several.
        for _ in 0..150 {
            let reply = api(&app, tenant).await;
            if reply.status == StatusCode::OK {
                answered = Some(reply);
                break;
            }
            assert_unavailable(&reply);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let reply = answered.unwrap_or_else(|| panic!("{} never answered again", tenant.slug));
        assert_own_rows(&reply, tenant);
    }
    for tenant in &staying {
        assert_own_rows(&api(&app, tenant).await, tenant);
    }
}

#[tokio::test]
async fn requests_for_more_tenants_than_the_budget_allows_get_200_or_503_and_never_hang() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let tenants = seeded(&bed, 6).await;
    let app = app(
        &bed,
        PoolSetOptions::default()
            .max_connections(1)
            .max_per_database(1)
            .acquire_timeout(Duration::from_secs(1)),
    )
    .await;
    let mut ok = 0;
    for _ in 0..3 {
        let replies = futures_util::future::join_all(tenants.iter().map(|t| api(&app, t))).await;
        for (tenant, reply) in tenants.iter().zip(&replies) {
            if reply.status == StatusCode::OK {
                assert_own_rows(reply, tenant);
                ok += 1;
            } else {
                assert_unavailable(reply);
            }
        }
    }
    assert!(ok > 0, "one connection serves some of the requests");
    // One at a time, every tenant is served within the budget.
    for tenant in &tenants {
        assert_own_rows(&api(&app, tenant).await, tenant);
    }
}
