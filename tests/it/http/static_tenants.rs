//! Static tenants in the schema mode, over a real socket and the real registry: `www` on the
//! base domain and `blog` on two domains of its own are served by routers of their own
//! (`route_static_tenants`), `blog` from its own tables; dynamic tenants, by their own domain
//! or by subdomain, share the default router; unknown hosts and the shared schema are 404.

use axum::Router;
use axum::routing::get;
use rls_tenancy::http::{
    AppError, AppState, TenantSource, TenantTxLayer, Tx, route_static_tenants,
};
use rls_tenancy::{
    DomainError, RegistryOptions, ScratchDatabase, TenancyDeclaration, TenantKey, TenantPool,
    TenantPoolOptions, add_domain,
};

use super::domains::eventually;
use super::socket::raw_get;
use crate::migrate::rls_migrate;
use crate::selectors::static_declaration;
use crate::support::until_listening;

async fn names(tx: &mut Tx, sql: &str) -> Result<String, AppError> {
    let names: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_all(tx.conn())
        .await?;
    Ok(names.join(", "))
}

async fn app_page(mut tx: Tx) -> Result<String, AppError> {
    Ok(format!(
        "app: {}",
        names(&mut tx, "SELECT name FROM projects ORDER BY name").await?
    ))
}

async fn landing_page(mut tx: Tx) -> Result<String, AppError> {
    Ok(format!(
        "landing: {}",
        names(&mut tx, "SELECT name FROM projects ORDER BY name").await?
    ))
}

async fn blog_page(mut tx: Tx) -> Result<String, AppError> {
    Ok(format!(
        "blog: {}",
        names(&mut tx, "SELECT title FROM posts ORDER BY title").await?
    ))
}

#[tokio::test]
async fn static_tenants_have_their_own_router_and_tables_and_dynamic_ones_share_the_default() {
    let db = ScratchDatabase::create().await.expect("scratch database");
    let admin = db.admin_pool().await.expect("admin");
    let dir = tempfile::tempdir().expect("tempdir");
    let decl_path = static_declaration(dir.path());
    let key_path = dir.path().join("tenant.key");
    let args = [
        "--strategy",
        "schema",
        "--runtime-role",
        db.runtime_role().as_str(),
        "--tenant-key-file",
        key_path.to_str().expect("utf-8"),
        "--declaration",
        decl_path.to_str().expect("utf-8"),
    ];
    let deploy = db.deploy_url().expose_secret().to_owned();
    let (code, output) = rls_migrate(&args, Some(&deploy));
    assert_eq!(code, 0, "{output}");
    sqlx::raw_sql(
        "INSERT INTO app.accounts (slug, name, schema_name)
             VALUES ('tenant-a', 'A', 'tenant_a'), ('tenant-b', 'B', 'tenant_b');
         INSERT INTO app.domains (domain, account_id, is_primary)
             SELECT 'crm.acme.test', id, true FROM app.accounts WHERE slug = 'tenant-a'",
    )
    .execute(&admin)
    .await
    .expect("dynamic tenants");
    let (code, output) = rls_migrate(
        &[&args[..], &["--schemas", ":dynamic:"]].concat(),
        Some(&deploy),
    );
    assert_eq!(code, 0, "{output}");
    sqlx::raw_sql(
        "INSERT INTO www.projects (account_id, name) SELECT id, 'www project' FROM app.accounts WHERE slug = 'www';
         INSERT INTO blog.posts (account_id, title) SELECT id, 'hello from blog' FROM app.accounts WHERE slug = 'blog';
         INSERT INTO tenant_a.projects (account_id, name) SELECT id, 'a project' FROM app.accounts WHERE slug = 'tenant-a';
         INSERT INTO tenant_b.projects (account_id, name) SELECT id, 'b project' FROM app.accounts WHERE slug = 'tenant-b';",
    )
    .execute(&admin)
    .await
    .expect("rows");

    let decl = TenancyDeclaration::from_file(&decl_path).expect("declaration");
    let mut conn = rls_tenancy::connect(db.deploy_url()).await.expect("deploy");
    let err = add_domain(
        &mut conn,
        &decl,
        &"tenant-a".parse().expect("slug"),
        &"help.example.com".parse().expect("domain"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, DomainError::StaticDomain { tenant, .. } if tenant == "blog"),
        "{err}"
    );

    let (key, _) = TenantKey::load_or_create(&key_path).expect("key");
    let pool = TenantPool::connect(
        db.runtime_url(),
        TenantPoolOptions::new(decl).tenant_key(key),
    )
    .await
    .expect("schema-mode pool");
    let registry = pool.registry(RegistryOptions::default());
    let state = AppState::new(pool, registry.clone(), "example.com".parse().expect("base"))
        .with_tenant_source(TenantSource::Host);
    let site = |page: Router<AppState>| page.layer(TenantTxLayer).with_state(state.clone());
    let app = route_static_tenants(
        site(Router::new().route("/", get(app_page))),
        [
            (
                "www".parse().expect("slug"),
                site(Router::new().route("/", get(landing_page))),
            ),
            (
                "blog".parse().expect("slug"),
                site(Router::new().route("/", get(blog_page))),
            ),
        ],
        state.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("listener");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    for (host, page) in [
        ("example.com", "landing: www project"),
        ("www.example.com", "landing: www project"),
        ("blog.example.com", "blog: hello from blog"),
        ("help.example.com:8443", "blog: hello from blog"),
        ("crm.acme.test", "app: a project"),
        ("tenant-a.example.com", "app: a project"),
        ("tenant-b.example.com", "app: b project"),
    ] {
        let (status, body) = raw_get(addr, "/", &[host]).await;
        assert_eq!((status, body.as_str()), (200, page), "{host}");
    }
    for (host, status) in [
        ("unknown-corp.test", 404),
        ("nope.example.com", 404),
        ("app.example.com", 404),
        ("Blog.example.com", 400),
    ] {
        let (got, body) = raw_get(addr, "/", &[host]).await;
        assert_eq!(got, status, "{host}: {body}");
        assert!(
            !body.contains("project") && !body.contains("blog:"),
            "{body}"
        );
    }

    // A suspended tenant's domain stops routing.
    until_listening(&registry).await;
    sqlx::query("UPDATE app.accounts SET is_active = false WHERE slug = 'tenant-a'")
        .execute(&admin)
        .await
        .expect("suspend");
    assert_eq!(eventually(addr, "/", "crm.acme.test", 404).await.0, 404);
    assert_eq!(raw_get(addr, "/", &["tenant-a.example.com"]).await.0, 404);
    assert_eq!(
        raw_get(addr, "/", &["tenant-b.example.com"]).await.1,
        "app: b project"
    );
    server.abort();
}
