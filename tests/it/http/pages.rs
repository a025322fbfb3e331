//! The demo's pages: each tenant sees its own rows and nobody else's, in HTML and in JSON.

use axum::http::{StatusCode, header};

use super::{BASE, Site};

#[tokio::test]
async fn each_tenants_json_page_holds_only_its_own_rows() {
    let site = Site::new().await;
    for (me, other) in [(&site.alpha, &site.bravo), (&site.bravo, &site.alpha)] {
        let reply = site.get(&me.host(), "/api/subtasks").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let json = reply.json();
        assert_eq!(json["tenant"], me.slug);
        assert_eq!(json["page"], 1);
        assert_eq!(json["per_page"], 10);
        assert_eq!(json["total"], me.subtasks);
        let items = json["items"].as_array().expect("items");
        assert_eq!(items.len(), 10);
        for item in items {
            assert_eq!(item["account_id"], me.id, "{item}");
            let name = item["name"].as_str().expect("name");
            assert!(name.starts_with(me.word), "{name}");
            assert_eq!(item["task_name"], format!("{} task", me.word));
            assert_eq!(item["project_name"], format!("{} project", me.word));
        }
        reply.assert_nothing_of(other);
        reply.assert_nothing_of(&site.inactive);
    }
}

#[tokio::test]
async fn the_json_page_is_ordered_by_name_and_the_second_page_holds_the_rest() {
    let site = Site::new().await;
    let host = site.alpha.host();
    let first = site.get(&host, "/api/subtasks?page=1").await.json();
    let second = site.get(&host, "/api/subtasks?page=2").await.json();
    let names = |page: &serde_json::Value| -> Vec<String> {
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["name"].as_str().expect("name").to_owned())
            .collect()
    };
    let mut all = names(&first);
    all.extend(names(&second));
    let expected: Vec<String> = (1..=15).map(|n| format!("alpha subtask {n:02}")).collect();
    assert_eq!(all, expected);
    assert_eq!(second["page"], 2);
    assert_eq!(second["total"], 15);
}

#[tokio::test]
async fn each_tenants_html_page_shows_only_its_own_rows_with_links_to_its_pages() {
    let site = Site::new().await;
    for (me, other) in [(&site.alpha, &site.bravo), (&site.bravo, &site.alpha)] {
        let reply = site.get(&me.host(), "/subtasks").await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(
            reply.headers[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        assert!(
            reply.headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
        assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
        for n in 1..=10 {
            let name = format!("{} subtask {n:02}", me.word);
            assert!(reply.body.contains(&name), "{name} missing");
        }
        assert!(!reply.body.contains(&format!("{} subtask 11", me.word)));
        assert_eq!(
            reply.body.matches("<tr data-account-id=").count(),
            10,
            "ten rows a page"
        );
        assert_eq!(
            reply
                .body
                .matches(&format!("data-account-id=\"{}\"", me.id))
                .count(),
            10
        );
        assert!(
            reply.body.contains("href=\"/subtasks?page=2\""),
            "a next link"
        );
        assert!(
            !reply.body.contains("rel=\"prev\""),
            "no previous link on page 1"
        );
        reply.assert_nothing_of(other);
        reply.assert_nothing_of(&site.inactive);
    }
    let last = site.get(&site.alpha.host(), "/subtasks?page=2").await;
    assert!(last.body.contains("rel=\"prev\" href=\"/subtasks?page=1\""));
    assert!(!last.body.contains("rel=\"next\""));
    assert_eq!(last.body.matches("<tr data-account-id=").count(), 5);
}

/// A name that is markup, with both kinds of quote and an ampersand.
const HOSTILE: &str = "<script>alert(1)</script> & 'q\"";

/// [`HOSTILE`] as the pages must write it.
const ESCAPED: &str = "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#39;q&quot;";

#[tokio::test]
async fn names_that_are_markup_are_shown_as_text_in_every_column() {
    let site = Site::new().await;
    let id: i64 = sqlx::query_scalar(
        "WITH p AS (INSERT INTO app.projects (account_id, name) VALUES ($1, $2) RETURNING id),
              t AS (INSERT INTO app.tasks (account_id, project_id, name)
                    SELECT $1, p.id, $2 FROM p RETURNING id)
         INSERT INTO app.subtasks (account_id, task_id, name)
         SELECT $1, t.id, $2 FROM t RETURNING id",
    )
    .bind(site.alpha.id)
    .bind(HOSTILE)
    .fetch_one(&site.admin)
    .await
    .expect("hostile project, task and subtask");

    let mut html = String::new();
    for page in 1..=2 {
        let reply = site
            .get(&site.alpha.host(), &format!("/subtasks?page={page}"))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(!reply.body.contains("<script"), "{}", reply.body);
        html.push_str(&reply.body);
    }
    assert_eq!(
        html.matches(ESCAPED).count(),
        3,
        "the subtask, task and project cells, escaped:\n{html}"
    );

    let mut items = Vec::new();
    for page in 1..=2 {
        let json = site
            .get(&site.alpha.host(), &format!("/api/subtasks?page={page}"))
            .await
            .json();
        items.extend(json["items"].as_array().expect("items").clone());
    }
    let item = items
        .iter()
        .find(|item| item["id"] == id)
        .expect("the hostile subtask is listed");
    for field in ["name", "task_name", "project_name"] {
        assert_eq!(
            item[field], HOSTILE,
            "JSON carries {field} as data, unchanged"
        );
    }

    let other = site.get(&site.bravo.host(), "/subtasks").await;
    assert!(
        !other.body.contains(ESCAPED),
        "not on another tenant's page"
    );
}

#[tokio::test]
async fn the_root_of_a_tenant_redirects_to_its_subtasks() {
    let site = Site::new().await;
    let reply = site.get(&site.alpha.host(), "/").await;
    assert!(reply.status.is_redirection(), "{}", reply.status);
    assert_eq!(reply.headers[header::LOCATION], "/subtasks");
}

#[tokio::test]
async fn the_bare_base_domain_shows_a_landing_page_without_tenant_data() {
    let site = Site::new().await;
    for host in [BASE.to_owned(), format!("{BASE}:8080"), format!("{BASE}.")] {
        let reply = site.get(&host, "/").await;
        assert_eq!(reply.status, StatusCode::OK, "{host}");
        assert!(reply.body.contains("rls-tenancy demo"));
        for tenant in [&site.alpha, &site.bravo, &site.inactive] {
            reply.assert_nothing_of(tenant);
            assert!(
                !reply.body.contains(tenant.slug),
                "{host} names {}",
                tenant.slug
            );
        }
    }
    for path in ["/subtasks", "/api/subtasks"] {
        let reply = site.get(BASE, path).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path} on the bare domain"
        );
    }
}

#[tokio::test]
async fn healthz_answers_on_any_host_without_touching_a_tenant() {
    let site = Site::new().await;
    for host in [
        site.alpha.host(),
        BASE.to_owned(),
        "127.0.0.1:8080".to_owned(),
    ] {
        let reply = site.get(&host, "/healthz").await;
        assert_eq!(reply.status, StatusCode::OK, "{host}");
        assert_eq!(reply.body, "ok");
    }
}

#[tokio::test]
async fn an_unknown_path_on_a_tenant_is_a_plain_404() {
    let site = Site::new().await;
    let reply = site.get(&site.alpha.host(), "/admin").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body, "not found");
}
