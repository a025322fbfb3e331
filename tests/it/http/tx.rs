//! `Tx` and `TenantTxLayer`: a handler's work is committed on 2xx/3xx and rolled back on
//! anything else; an RLS refusal is a 404; misuse is a 500 that says nothing.

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Redirect;
use axum::routing::get;
use rls_tenancy::http::{AppError, AppState, Tenant, TenantTxLayer, Tx};
use serde::Deserialize;

use super::{BASE, Site, send, state};

#[derive(Deserialize)]
struct Name {
    name: String,
    account: Option<i64>,
}

/// Inserts a project named `name` for the request's tenant (or for `account`, if given).
async fn insert(tx: &mut Tx, name: &Name) -> Result<(), AppError> {
    let account = name
        .account
        .unwrap_or(tx.scope().id().as_i64().expect("bigint id"));
    sqlx::query("INSERT INTO app.projects (account_id, name) VALUES ($1, $2)")
        .bind(account)
        .bind(&name.name)
        .execute(tx.conn())
        .await?;
    Ok(())
}

async fn ok(mut tx: Tx, Query(name): Query<Name>) -> Result<&'static str, AppError> {
    insert(&mut tx, &name).await?;
    Ok("saved")
}

async fn redirect(mut tx: Tx, Query(name): Query<Name>) -> Result<Redirect, AppError> {
    insert(&mut tx, &name).await?;
    Ok(Redirect::to("/"))
}

async fn bad_request(mut tx: Tx, Query(name): Query<Name>) -> Result<&'static str, AppError> {
    insert(&mut tx, &name).await?;
    Err(AppError::bad_request("refused after writing"))
}

async fn internal(mut tx: Tx, Query(name): Query<Name>) -> Result<&'static str, AppError> {
    insert(&mut tx, &name).await?;
    Err(AppError::Internal("secret detail: password=hunter2".into()))
}

async fn twice(_first: Tx, _second: Tx) -> &'static str {
    "unreachable"
}

#[derive(Deserialize)]
struct NewTask {
    project: i64,
    name: String,
}

/// Inserts a task of the request's tenant under `project`.
async fn task(mut tx: Tx, Query(task): Query<NewTask>) -> Result<&'static str, AppError> {
    let account = tx.scope().id().as_i64().expect("bigint id");
    sqlx::query("INSERT INTO app.tasks (account_id, project_id, name) VALUES ($1, $2, $3)")
        .bind(account)
        .bind(task.project)
        .bind(&task.name)
        .execute(tx.conn())
        .await?;
    Ok("saved")
}

async fn whoami(Tenant(scope): Tenant, tx: Tx) -> String {
    assert_eq!(tx.scope(), &scope);
    scope.slug().to_string()
}

fn routes(state: AppState) -> Router {
    Router::new()
        .route("/ok", get(ok))
        .route("/redirect", get(redirect))
        .route("/bad-request", get(bad_request))
        .route("/internal", get(internal))
        .route("/twice", get(twice))
        .route("/whoami", get(whoami))
        .route("/task", get(task))
        .layer(TenantTxLayer)
        .with_state(state)
}

async fn projects_named(site: &Site, name: &str) -> Vec<i64> {
    sqlx::query_scalar("SELECT account_id FROM app.projects WHERE name = $1")
        .bind(name)
        .fetch_all(&site.admin)
        .await
        .expect("projects")
}

#[tokio::test]
async fn a_successful_handlers_writes_are_committed_for_its_tenant() {
    let site = Site::new().await;
    let app = routes(state(&site.pool));
    let host = site.alpha.host();
    let reply = send(&app, Some(&host), "/ok?name=kept").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(projects_named(&site, "kept").await, vec![site.alpha.id]);
    let reply = send(&app, Some(&host), "/redirect?name=kept-too").await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(projects_named(&site, "kept-too").await, vec![site.alpha.id]);
}

#[tokio::test]
async fn a_failing_handlers_writes_are_rolled_back() {
    let site = Site::new().await;
    let app = routes(state(&site.pool));
    let host = site.alpha.host();
    let reply = send(&app, Some(&host), "/bad-request?name=dropped").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body, "refused after writing");
    let reply = send(&app, Some(&host), "/internal?name=dropped").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        reply.body, "internal server error",
        "no detail in a 5xx body"
    );
    assert!(projects_named(&site, "dropped").await.is_empty());
}

#[tokio::test]
async fn a_write_into_another_tenant_is_refused_by_rls_as_not_found() {
    let site = Site::new().await;
    let app = routes(state(&site.pool));
    let path = format!("/ok?name=smuggled&account={}", site.bravo.id);
    let reply = send(&app, Some(&site.alpha.host()), &path).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
    assert_eq!(reply.body, "not found");
    assert!(projects_named(&site, "smuggled").await.is_empty());
}

#[tokio::test]
async fn tx_resolves_the_same_tenant_as_the_tenant_extractor() {
    let site = Site::new().await;
    let app = routes(state(&site.pool));
    for tenant in [&site.alpha, &site.bravo] {
        let reply = send(&app, Some(&tenant.host()), "/whoami").await;
        assert_eq!(reply.body, tenant.slug);
    }
    let bare = send(&app, Some(BASE), "/whoami").await;
    assert_eq!(bare.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn misusing_tx_is_a_generic_server_error_not_a_query() {
    let site = Site::new().await;
    let app = routes(state(&site.pool));
    let reply = send(&app, Some(&site.alpha.host()), "/twice").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.body, "internal server error");

    let without_layer = Router::new()
        .route("/ok", get(ok))
        .with_state(state(&site.pool));
    let reply = send(&without_layer, Some(&site.alpha.host()), "/ok?name=orphan").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.body, "internal server error");
    assert!(projects_named(&site, "orphan").await.is_empty());
}

#[tokio::test]
async fn bad_values_from_the_client_are_4xx_and_another_tenants_parent_looks_missing() {
    let site = Site::new().await;
    let app = routes(state(&site.pool));
    let project_of = |account: i64| {
        let admin = site.admin.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT min(id) FROM app.projects WHERE account_id = $1")
                .bind(account)
                .fetch_one(&admin)
                .await
                .expect("project")
        }
    };
    let own = project_of(site.alpha.id).await;
    let foreign = project_of(site.bravo.id).await;
    let host = site.alpha.host();

    let reply = send(&app, Some(&host), &format!("/task?project={own}&name=fine")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);

    let other = send(
        &app,
        Some(&host),
        &format!("/task?project={foreign}&name=x"),
    )
    .await;
    let missing = send(&app, Some(&host), "/task?project=999999999&name=x").await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.body);
    assert_eq!((other.status, &other.body), (missing.status, &missing.body));
    assert_eq!(
        other.body, "not found",
        "the body must not quote the key values"
    );

    let long = "x".repeat(201);
    let reply = send(
        &app,
        Some(&host),
        &format!("/task?project={own}&name={long}"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    assert_eq!(reply.body, "bad request", "no database message in the body");
}
