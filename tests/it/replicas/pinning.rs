//! Write pinning through the demo's subtask API, against a standby that replays
//! [`super::APPLY_DELAY`] late: read-your-writes holds with the pin and fails without it, and
//! the LSN pin lets reads back onto the replica as soon as it has replayed the write; the
//! list pages, which read in the request's `Tx`, follow the same route.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::middleware::from_fn;
use axum::routing::get;
use rls_tenancy::demo::{DemoState, router};
use rls_tenancy::http::{PinKey, PinNext, WritePinning, use_primary, writing_route};
use rls_tenancy::{RoutingPool, TenantScope};
use tower::ServiceExt;

use super::{shared, site_with_replica};
use crate::http::{Reply, Site, read, state};

struct Pinned {
    site: Site,
    app: Router,
    routing: RoutingPool,
    subtask: i64,
    was_complete: bool,
}

/// The demo over a primary and the delayed standby, with `x-served-by`.
async fn pinned_site() -> Pinned {
    pinned_site_with(WritePinning::new(PinKey::new(&[7u8; 32]).expect("key"))).await
}

/// [`pinned_site`] with the pinning cookie's settings of the caller's choosing.
async fn pinned_site_with(pinning: WritePinning) -> Pinned {
    let (site, routing) = site_with_replica(shared().await.delayed()).await;
    let app = router(
        DemoState::new(state(&site.pool), Vec::new())
            .with_routing(routing.clone())
            .with_pinning(pinning)
            .with_debug_routing(true),
    );
    let (subtask, was_complete): (i64, bool) = sqlx::query_as(
        "SELECT id, is_complete FROM app.subtasks WHERE account_id = $1 ORDER BY id LIMIT 1",
    )
    .bind(site.alpha.id)
    .fetch_one(&site.admin)
    .await
    .expect("a subtask of alpha");
    Pinned {
        site,
        app,
        routing,
        subtask,
        was_complete,
    }
}

impl Pinned {
    async fn send(&self, method: &str, path: &str, cookie: Option<&str>) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, self.site.alpha.host());
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let request = request.body(Body::empty()).expect("request");
        read(self.app.clone().oneshot(request).await.expect("infallible")).await
    }

    async fn toggle(&self) -> (Reply, String) {
        let reply = self
            .send(
                "POST",
                &format!("/api/subtasks/{}/toggle", self.subtask),
                None,
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.json()["is_complete"], !self.was_complete);
        assert_eq!(reply.headers["x-served-by"], "primary");
        let set_cookie = reply.headers[header::SET_COOKIE].to_str().expect("ASCII");
        assert!(
            set_cookie.starts_with("multidb_pin_writes="),
            "{set_cookie}"
        );
        let cookie = set_cookie.split(';').next().expect("name=value").to_owned();
        (reply, cookie)
    }

    /// Reads the subtask back: whether it is complete, and who served it.
    async fn read_back(&self, cookie: Option<&str>) -> (bool, String) {
        let reply = self
            .send("GET", &format!("/api/subtasks/{}", self.subtask), cookie)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let served_by = reply.headers["x-served-by"]
            .to_str()
            .expect("ASCII")
            .to_owned();
        (
            reply.json()["is_complete"].as_bool().expect("a boolean"),
            served_by,
        )
    }
}

impl Pinned {
    /// The subtask as the JSON list shows it (first or second page): whether it is
    /// complete, and who served the page.
    async fn listed(&self, cookie: Option<&str>) -> (bool, String) {
        for page in 1..=2 {
            let reply = self
                .send("GET", &format!("/api/subtasks?page={page}"), cookie)
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            reply.assert_nothing_of(&self.site.bravo);
            let items = reply.json()["items"].clone();
            let found = items
                .as_array()
                .expect("items")
                .iter()
                .find(|item| item["id"] == self.subtask)
                .map(|item| item["is_complete"].as_bool().expect("a boolean"));
            if let Some(complete) = found {
                let served_by = reply.headers["x-served-by"].to_str().expect("ASCII");
                return (complete, served_by.to_owned());
            }
        }
        panic!("subtask {} is on neither page", self.subtask)
    }
}

#[tokio::test]
async fn the_list_pages_read_the_replica_unless_pinned() {
    let pinned = pinned_site().await;
    let (_, cookie) = pinned.toggle().await;

    assert_eq!(
        pinned.listed(Some(&cookie)).await,
        (!pinned.was_complete, "primary".into()),
        "the pinned list sees the write"
    );
    assert_eq!(
        pinned.listed(None).await,
        (pinned.was_complete, "replica".into()),
        "unpinned, the lagging replica serves the list"
    );
    for (cookie, want) in [(None, "replica"), (Some(cookie.as_str()), "primary")] {
        let reply = pinned.send("GET", "/subtasks", cookie).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.headers["x-served-by"], want, "the HTML page");
        reply.assert_nothing_of(&pinned.site.bravo);
    }
}

#[tokio::test]
async fn read_your_writes_holds_with_the_pin_and_fails_without_it() {
    let pinned = pinned_site().await;
    let (_, cookie) = pinned.toggle().await;

    let with_pin = pinned.read_back(Some(&cookie)).await;
    assert_eq!(
        with_pin,
        (!pinned.was_complete, "primary".into()),
        "the pinned read sees the write"
    );

    let without = pinned.read_back(None).await;
    assert_eq!(
        without,
        (pinned.was_complete, "replica".into()),
        "unpinned, the lagging replica serves the old value"
    );

    let (value, signature) = cookie.rsplit_once('.').expect("signed");
    let flipped = if signature.starts_with('0') { "1" } else { "0" };
    let tampered = format!("{value}.{flipped}{}", &signature[1..]);
    let forged = pinned.read_back(Some(&tampered)).await;
    assert_eq!(
        forged,
        (pinned.was_complete, "replica".into()),
        "a tampered pin is ignored"
    );
}

#[tokio::test]
async fn an_expired_pin_is_ignored() {
    // A pin whose signed expiry is the moment it was set: past at the next request.
    let pinning = WritePinning::new(PinKey::new(&[7u8; 32]).expect("key")).max_age(Duration::ZERO);
    let pinned = pinned_site_with(pinning).await;
    let (_, cookie) = pinned.toggle().await;
    assert_eq!(
        pinned.read_back(Some(&cookie)).await,
        (pinned.was_complete, "replica".into()),
        "the expired pin is ignored: the lagging replica serves the old value"
    );
}

#[tokio::test]
async fn the_lsn_pin_releases_as_soon_as_the_replica_has_replayed_the_write() {
    let pinned = pinned_site().await;
    let (_, cookie) = pinned.toggle().await;
    let written = Instant::now();
    let mut on_primary = 0;
    loop {
        let (complete, served_by) = pinned.read_back(Some(&cookie)).await;
        assert_eq!(
            complete, !pinned.was_complete,
            "every pinned read sees the write"
        );
        if served_by == "replica" {
            break;
        }
        on_primary += 1;
        assert!(
            written.elapsed() < Duration::from_secs(12),
            "released before the cookie's 15 s: {:?}",
            pinned.routing.replica_status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        on_primary > 0,
        "pinned to the primary while the replica lagged"
    );
    assert!(
        written.elapsed() >= super::APPLY_DELAY - Duration::from_millis(500),
        "not released before the replica could have replayed"
    );
}

#[tokio::test]
async fn a_writing_route_or_a_response_marked_as_written_sets_the_pin() {
    let pinned = pinned_site().await;
    let routes: Router = Router::new()
        .route("/plain", get(|| async { "plain" }))
        .route("/marked", get(|| async { (PinNext, "marked") }))
        .route(
            "/writing",
            get(|| async { "writing" }).layer(from_fn(writing_route)),
        );
    let app = WritePinning::new(PinKey::new(&[7u8; 32]).expect("key"))
        .apply(routes, pinned.routing.clone());
    let cookie_of = |path: &'static str| {
        let app = app.clone();
        async move {
            let request = Request::builder()
                .uri(path)
                .body(Body::empty())
                .expect("request");
            let reply = read(app.oneshot(request).await.expect("infallible")).await;
            assert_eq!(reply.status, StatusCode::OK);
            reply.headers.get(header::SET_COOKIE).cloned()
        }
    };
    assert_eq!(cookie_of("/plain").await, None, "a plain read pins nothing");
    for path in ["/marked", "/writing"] {
        let cookie = cookie_of(path).await.expect("a pin");
        assert!(
            cookie
                .to_str()
                .expect("ASCII")
                .starts_with("multidb_pin_writes=")
        );
    }
}

#[tokio::test]
async fn a_route_behind_the_use_primary_layer_reads_the_primary_and_pins_nothing() {
    let pinned = pinned_site().await;
    let scope = TenantScope::new(
        pinned.site.alpha.id.to_string().parse().expect("id"),
        pinned.site.alpha.slug.parse().expect("slug"),
    );
    let served_by = move |routing: RoutingPool, scope: TenantScope| async move {
        let tx = routing.read(&scope).await.expect("a read");
        let served_by = tx.served_by().as_str();
        tx.commit().await.expect("commit");
        served_by
    };
    let (plain, primary) = (
        (pinned.routing.clone(), scope.clone()),
        (pinned.routing.clone(), scope),
    );
    let routes: Router = Router::new()
        .route("/plain", get(move || served_by(plain.0, plain.1)))
        .route(
            "/primary",
            get(move || served_by(primary.0, primary.1)).layer(from_fn(use_primary)),
        );
    for (path, want) in [("/plain", "replica"), ("/primary", "primary")] {
        let request = Request::builder()
            .uri(path)
            .body(Body::empty())
            .expect("request");
        let reply = read(routes.clone().oneshot(request).await.expect("infallible")).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        assert_eq!(reply.body, want, "{path}");
        assert!(reply.headers.get(header::SET_COOKIE).is_none(), "{path}");
    }
}
