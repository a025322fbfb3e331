//! The axum extractors on the crm schema's UUID orgs, with every tenant source, and an
//! authorization hook that refuses a caller who is not a member before any transaction opens.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use rls_tenancy::http::{
    AppError, AppState, Authorize, Tenant, TenantClaim, TenantSource, TenantTxLayer, Tx,
};
use rls_tenancy::{
    RegistryOptions, TenantDomains, TenantHeader, TenantPath, TenantPool, TenantPoolOptions,
    TenantRegistry, TenantScope,
};
use sqlx::postgres::PgPoolOptions;
use tower::ServiceExt;

use super::Crm;
use crate::http::{Reply, read};

const BASE: &str = "crm.test";

/// Request headers, name and value.
type Headers<'a> = Vec<(&'a str, &'a str)>;

/// The caller, as the application's authentication middleware established it.
#[derive(Debug, Clone)]
struct User(String);

/// The application's membership table: which user belongs to which orgs (by handle).
struct Members(HashMap<&'static str, Vec<&'static str>>);

impl Authorize for Members {
    async fn authorize(&self, parts: &Parts, scope: &TenantScope) -> Result<(), AppError> {
        let member = parts.extensions.get::<User>().is_some_and(|User(user)| {
            self.0
                .get(user.as_str())
                .is_some_and(|orgs| orgs.contains(&scope.slug().as_str()))
        });
        if member {
            Ok(())
        } else {
            Err(AppError::Forbidden)
        }
    }
}

/// The application's authentication: `Authorization: Bearer <user>` (a stand-in for a
/// verified token) becomes a [`User`], and `X-Claim-Org` a [`TenantClaim`] by id.
async fn authenticate(mut request: Request, next: Next) -> Response {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    if let Some(user) = bearer {
        request.extensions_mut().insert(User(user));
    }
    let claim = request
        .headers()
        .get("x-claim-org")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if let Some(id) = claim {
        request.extensions_mut().insert(TenantClaim::Id(id));
    }
    next.run(request).await
}

/// The names of the org's customers, from its own tenant transaction.
async fn customers(Tenant(scope): Tenant, mut tx: Tx) -> Result<String, AppError> {
    assert_eq!(tx.scope(), &scope);
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM crm.customers ORDER BY name")
        .fetch_all(tx.conn())
        .await?;
    Ok(names.join(","))
}

/// The crm tenant pool over a plain pool that counts every connection handed out: a
/// tenant transaction cannot open without one.
async fn counted_pool(crm: &Crm) -> (TenantPool, Arc<AtomicUsize>) {
    let acquired = Arc::new(AtomicUsize::new(0));
    let (on_acquire, on_connect) = (acquired.clone(), acquired.clone());
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .before_acquire(move |_, _| {
            let acquired = on_acquire.clone();
            Box::pin(async move {
                acquired.fetch_add(1, Ordering::SeqCst);
                Ok(true)
            })
        })
        .after_connect(move |_, _| {
            let acquired = on_connect.clone();
            Box::pin(async move {
                acquired.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
        })
        .connect_with(crm.db.runtime_url().connect_options().expect("options"))
        .await
        .expect("runtime pool");
    let pool = TenantPool::from_pool(pool, TenantPoolOptions::new(crm.decl.clone()))
        .await
        .expect("tenant pool");
    (pool, acquired)
}

/// The registry on a pool of its own, so its lookups are not counted as transactions.
async fn registry(crm: &Crm) -> TenantRegistry {
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(crm.db.runtime_url().connect_options().expect("options"))
        .await
        .expect("registry pool");
    TenantRegistry::new(pool, &crm.decl, RegistryOptions::default())
}

fn app(state: AppState) -> Router {
    Router::new()
        .route("/customers", get(customers))
        .route("/t/{org}/customers", get(customers))
        .layer(TenantTxLayer)
        .layer(middleware::from_fn(authenticate))
        .with_state(state)
}

async fn send(app: &Router, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = Request::builder().uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Body::empty()).expect("request");
    read(app.clone().oneshot(request).await.expect("infallible")).await
}

#[tokio::test]
async fn a_header_resolver_with_a_membership_hook_refuses_a_non_member_before_any_transaction() {
    let crm = Crm::new().await;
    let (pool, acquired) = counted_pool(&crm).await;
    let members = Members(HashMap::from([
        ("alice", vec!["org-a"]),
        ("bob", vec!["org-b"]),
    ]));
    let state = AppState::new(pool, registry(&crm).await, BASE.parse().expect("base"))
        .with_tenant_source(TenantSource::Header(
            TenantHeader::new("x-org").expect("header"),
        ))
        .with_authorization(members);
    let app = app(state);

    let member = send(
        &app,
        "/customers",
        &[("x-org", "org-a"), ("authorization", "Bearer alice")],
    )
    .await;
    assert_eq!(
        (member.status, member.body.as_str()),
        (StatusCode::OK, "customer of org-a")
    );
    let opened = acquired.load(Ordering::SeqCst);
    assert!(opened >= 1, "the member's request opened a transaction");

    for (case, headers) in [
        (
            "a member of another org",
            vec![("x-org", "org-a"), ("authorization", "Bearer bob")],
        ),
        (
            "a user of no org",
            vec![("x-org", "org-b"), ("authorization", "Bearer mallory")],
        ),
        ("nobody signed in", vec![("x-org", "org-a")]),
    ] {
        let refused = send(&app, "/customers", &headers).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{case}: {refused:?}");
        assert_eq!(refused.body, "forbidden", "{case}: a generic body");
        assert_eq!(
            acquired.load(Ordering::SeqCst),
            opened,
            "{case}: no connection was taken, so no transaction opened"
        );
    }

    let bob = send(
        &app,
        "/customers",
        &[("x-org", "org-b"), ("authorization", "Bearer bob")],
    )
    .await;
    assert_eq!(
        (bob.status, bob.body.as_str()),
        (StatusCode::OK, "customer of org-b")
    );
    let unknown = send(
        &app,
        "/customers",
        &[("x-org", "org-z"), ("authorization", "Bearer bob")],
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{unknown:?}");
    let missing = send(&app, "/customers", &[("authorization", "Bearer bob")]).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST, "{missing:?}");
}

#[tokio::test]
async fn every_tenant_source_resolves_a_uuid_org_to_its_own_rows_only() {
    let crm = Crm::new().await;
    let domains = TenantDomains::new([("crm.org-b.example", "org-b")]).expect("domains");
    let id_b = crm.b.scope.id().to_string();
    let sources: Vec<(&str, TenantSource, &str, Headers)> = vec![
        (
            "subdomain",
            TenantSource::Subdomain,
            "/customers",
            vec![("host", "org-b.crm.test")],
        ),
        (
            "full domain",
            TenantSource::Domain(domains),
            "/customers",
            vec![("host", "crm.org-b.example:8443")],
        ),
        (
            "header",
            TenantSource::Header(TenantHeader::new("x-org").expect("header")),
            "/customers",
            vec![("x-org", "org-b")],
        ),
        (
            "path prefix",
            TenantSource::PathPrefix(TenantPath::default()),
            "/t/org-b/customers",
            vec![],
        ),
        (
            "claim by id",
            TenantSource::Claim,
            "/customers",
            vec![("x-claim-org", id_b.as_str())],
        ),
    ];
    for (case, source, path, headers) in sources {
        let state = AppState::new(
            crm.pool.clone(),
            crm.pool.registry(RegistryOptions::default()),
            BASE.parse().expect("base"),
        )
        .with_tenant_source(source);
        let app = app(state);
        let reply = send(&app, path, &headers).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, "customer of org-b"),
            "{case}"
        );
    }
    let claims = app(AppState::new(
        crm.pool.clone(),
        crm.pool.registry(RegistryOptions::default()),
        BASE.parse().expect("base"),
    )
    .with_tenant_source(TenantSource::Claim));
    let unclaimed = send(&claims, "/customers", &[]).await;
    assert_eq!(
        unclaimed.status,
        StatusCode::NOT_FOUND,
        "no claim is no tenant"
    );
    let bigint = send(&claims, "/customers", &[("x-claim-org", "7")]).await;
    assert_eq!(
        bigint.status,
        StatusCode::BAD_REQUEST,
        "a bigint id on a UUID schema"
    );
}
