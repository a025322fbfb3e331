//! Routing by full domain and by subdomain (`TenantSource::Host`) over a real socket and the
//! real registry: a tenant's own domain (the domains table) and `slug.<base>` both reach its
//! rows and nothing of another's; an unknown domain, a suspended tenant's domain and a
//! malformed host do not; a domain added or removed, or a tenant suspended, reaches the
//! running server through the registry's notices.

use std::net::SocketAddr;

use rls_tenancy::demo::{DemoState, router};
use rls_tenancy::http::TenantSource;
use rls_tenancy::{DomainName, TenancyDeclaration, add_domain, remove_domain};

use super::socket::raw_get;
use super::{Seeded, Site, state};
use crate::support::until_listening;

/// Polls `GET path` on `host` until it answers `status`; at most ~20 s, then the last
/// answer is returned for the caller to assert on (no timing is asserted).
pub async fn eventually(addr: SocketAddr, path: &str, host: &str, status: u16) -> (u16, String) {
    let mut reply = raw_get(addr, path, &[host]).await;
    for _ in 0..200 {
        if reply.0 == status {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        reply = raw_get(addr, path, &[host]).await;
    }
    reply
}

fn assert_serves(reply: &(u16, String), me: &Seeded, other: &Seeded) {
    assert_eq!(reply.0, 200, "{}", reply.1);
    let json: serde_json::Value = serde_json::from_str(&reply.1).expect("json");
    assert_eq!(json["tenant"], me.slug);
    assert!(
        json["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|item| item["account_id"] == me.id),
        "{}",
        reply.1
    );
    assert!(!reply.1.contains(other.word), "leaks {}", other.slug);
}

#[tokio::test]
async fn tenants_are_routed_by_their_own_domain_and_by_subdomain() {
    let site = Site::new().await;
    let decl = TenancyDeclaration::reference().expect("declaration");
    let mut deploy = rls_tenancy::connect(site.db.deploy_url())
        .await
        .expect("deploy");
    let domain = |d: &str| d.parse::<DomainName>().expect("domain");
    for (tenant, d) in [
        (&site.alpha, "alpha-corp.test"),
        (&site.inactive, "charlie-corp.test"),
    ] {
        add_domain(
            &mut deploy,
            &decl,
            &tenant.slug.parse().expect("slug"),
            &domain(d),
        )
        .await
        .expect("domain");
    }
    let app_state = state(&site.pool).with_tenant_source(TenantSource::Host);
    let registry = app_state.registry().clone();
    let app = router(DemoState::new(app_state, Vec::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let port = addr.port();

    let alpha_own = format!("alpha-corp.test:{port}");
    assert_serves(
        &raw_get(addr, "/api/subtasks", &[&alpha_own]).await,
        &site.alpha,
        &site.bravo,
    );
    let bravo_sub = format!("{}:{port}", site.bravo.host());
    assert_serves(
        &raw_get(addr, "/api/subtasks", &[&bravo_sub]).await,
        &site.bravo,
        &site.alpha,
    );
    assert_serves(
        &raw_get(addr, "/api/subtasks", &[&site.alpha.host()]).await,
        &site.alpha,
        &site.bravo,
    );
    for (host, status) in [
        ("unknown-corp.test", 404),
        ("charlie-corp.test", 404),
        ("tenant-charlie.demo.test", 404),
        ("a.tenant-alpha.demo.test", 404),
        ("app.demo.test", 404),
        ("Alpha-corp.test", 400),
        ("alpha-corp.test:0", 400),
        ("xn--80ak6aa92e.demo.test", 400),
    ] {
        let (got, body) = raw_get(addr, "/api/subtasks", &[host]).await;
        assert_eq!(got, status, "{host}: {body}");
        assert!(!body.contains("subtask"), "{host}: {body}");
    }

    // Changes reach the running server through the registry's notices.
    until_listening(&registry).await;
    let bravo_own = format!("bravo-corp.test:{port}");
    assert_eq!(raw_get(addr, "/api/subtasks", &[&bravo_own]).await.0, 404);
    add_domain(
        &mut deploy,
        &decl,
        &site.bravo.slug.parse().expect("slug"),
        &domain("bravo-corp.test"),
    )
    .await
    .expect("domain");
    assert_serves(
        &eventually(addr, "/api/subtasks", &bravo_own, 200).await,
        &site.bravo,
        &site.alpha,
    );
    remove_domain(&mut deploy, &decl, &domain("alpha-corp.test"))
        .await
        .expect("remove");
    assert_eq!(
        eventually(addr, "/api/subtasks", &alpha_own, 404).await.0,
        404
    );
    sqlx::query("UPDATE app.accounts SET is_active = false WHERE slug = $1")
        .bind(site.bravo.slug)
        .execute(&site.admin)
        .await
        .expect("suspend");
    assert_eq!(
        eventually(addr, "/api/subtasks", &bravo_own, 404).await.0,
        404,
        "a suspended tenant's domain"
    );
    assert_eq!(
        raw_get(addr, "/api/subtasks", &[&site.bravo.host()])
            .await
            .0,
        404
    );
    server.abort();
}
