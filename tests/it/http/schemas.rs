//! The demo under `--strategy schema`: each tenant's page and JSON come from its own schema,
//! and a database migrated for the RLS strategy only is refused with what to run.

use rls_tenancy::demo::{Demo, DemoOptions, seed_options};
use rls_tenancy::{
    MigrateOptions, REFERENCE_TENANT_MIGRATIONS, ScratchDatabase, Strategy, TenancyDeclaration,
    install_policies, seed,
};
use sqlx::PgPool;

use super::socket::raw_get;

/// `(id, name)` of the first page of `schema`'s subtasks, as the page orders them, read as the
/// superuser.
async fn first_page(admin: &PgPool, schema: &str) -> Vec<(i64, String)> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, name::text FROM {schema}.subtasks ORDER BY name, id LIMIT 10"
    )))
    .fetch_all(admin)
    .await
    .expect("first page")
}

#[tokio::test]
async fn the_embedded_demo_in_schema_mode_serves_each_tenant_from_its_own_schema_only() {
    let options = DemoOptions::new(
        "127.0.0.1:0".parse().expect("addr"),
        "localhost".parse().expect("base"),
    )
    .max_connections(2)
    .strategy(Strategy::Schema);
    let demo = Demo::start(options)
        .await
        .expect("embedded demo, schema mode");
    let addr = demo.local_addr();
    let port = addr.port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(demo.serve(async {
        let _ = stopped.await;
    }));

    // The same seed in schemas on a database of our own: the demo's pages must be these rows.
    let reference = ScratchDatabase::migrated_signed()
        .await
        .expect("scratch database");
    let migrate = MigrateOptions::new(
        reference.deploy_url().clone(),
        reference.runtime_role().as_str(),
    )
    .expect("options")
    .tenant_key(reference.tenant_key().expect("signed").clone());
    let decl = TenancyDeclaration::reference()
        .expect("declaration")
        .with_strategy(Strategy::Schema);
    install_policies(&decl, &migrate)
        .await
        .expect("schema-mode grants");
    let in_schemas = seed_options().in_tenant_schemas(
        &REFERENCE_TENANT_MIGRATIONS,
        reference.runtime_role().as_str(),
    );
    seed(reference.deploy_url(), &in_schemas)
        .await
        .expect("seed the reference");
    let admin = reference.admin_pool().await.expect("admin");

    for (me, other) in [("tenant-0", "tenant-1"), ("tenant-1", "tenant-0")] {
        let (mine, theirs) = (me.replace('-', "_"), other.replace('-', "_"));
        let expected = first_page(&admin, &mine).await;
        let foreign = first_page(&admin, &theirs).await;
        assert_ne!(expected, foreign, "the two tenants hold different rows");
        let my_id: i64 = sqlx::query_scalar("SELECT id FROM app.accounts WHERE slug = $1")
            .bind(me)
            .fetch_one(&admin)
            .await
            .expect("account");

        let host = format!("{me}.localhost:{port}");
        let (status, body) = raw_get(addr, "/api/subtasks", &[&host]).await;
        assert_eq!(status, 200, "{host}: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(json["tenant"], me);
        let items = json["items"].as_array().expect("items");
        let served: Vec<(i64, String)> = items
            .iter()
            .map(|item| {
                (
                    item["id"].as_i64().expect("id"),
                    item["name"].as_str().expect("name").to_owned(),
                )
            })
            .collect();
        assert_eq!(served, expected, "{me}'s first page, from schema {mine}");
        assert!(
            items.iter().all(|item| item["account_id"] == my_id),
            "{me}'s rows only: {body}"
        );

        let (status, html) = raw_get(addr, "/subtasks", &[&host]).await;
        assert_eq!(status, 200, "{host}: {html}");
        assert!(html.contains(me), "the page names {me}");
        for (_, name) in foreign
            .iter()
            .filter(|f| !expected.iter().any(|e| e.1 == f.1))
        {
            assert!(
                !html.contains(name.as_str()),
                "{me}'s page shows {other}'s {name:?}"
            );
        }
        let (id, _) = &expected[0];
        let (status, body) = raw_get(addr, &format!("/api/subtasks/{id}"), &[&host]).await;
        assert_eq!(status, 200, "{body}");
        let item: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(
            item["account_id"], my_id,
            "the item endpoint reads {mine} too"
        );
    }

    stop.send(()).expect("server still running");
    server
        .await
        .expect("server task")
        .expect("the server stops cleanly");
}

#[tokio::test]
async fn schema_mode_on_a_database_migrated_for_rls_only_says_what_to_run() {
    let db = ScratchDatabase::migrated().await.expect("scratch database");
    let options = DemoOptions::new(
        "127.0.0.1:0".parse().expect("addr"),
        "localhost".parse().expect("base"),
    )
    .database_url(db.runtime_url().clone())
    .max_connections(2)
    .strategy(Strategy::Schema);
    let err = Demo::start(options).await.expect_err("refused");
    let message = err.to_string();
    assert!(
        message.contains("rls-migrate --strategy schema"),
        "{message}"
    );
}
