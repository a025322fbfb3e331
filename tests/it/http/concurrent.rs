//! Many requests at once for random tenants, over a pool of reused connections: no response
//! ever carries a row of another tenant.

use std::sync::Arc;

use axum::http::StatusCode;
use rand::RngExt;

use super::{BASE, Seeded, Site};

const TASKS: usize = 32;
const REQUESTS_PER_TASK: usize = 20;

/// Who a request is for: a tenant with rows, one that must be refused, or nobody.
#[derive(Debug, Clone, Copy)]
enum Target {
    Alpha,
    Bravo,
    Inactive,
    Unknown,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_for_random_tenants_never_see_a_foreign_row() {
    let site = Arc::new(Site::new().await);
    let mut rng = rand::rng();
    let plans: Vec<Vec<(Target, u32, bool)>> = (0..TASKS)
        .map(|_| {
            (0..REQUESTS_PER_TASK)
                .map(|_| {
                    let target = match rng.random_range(0..10) {
                        0..=3 => Target::Alpha,
                        4..=7 => Target::Bravo,
                        8 => Target::Inactive,
                        _ => Target::Unknown,
                    };
                    (target, rng.random_range(1..=2), rng.random_range(0..2) == 0)
                })
                .collect()
        })
        .collect();
    let workers: Vec<_> = plans
        .into_iter()
        .map(|plan| {
            let site = site.clone();
            tokio::spawn(async move {
                let mut served = 0;
                for (target, page, json) in plan {
                    served += check_one(&site, target, page, json).await;
                }
                served
            })
        })
        .collect();
    let mut served = 0;
    for worker in workers {
        served += worker
            .await
            .expect("a worker found a foreign row or a wrong status");
    }
    // Most requests were for tenants with rows: the test did look at rows.
    assert!(
        served > TASKS * REQUESTS_PER_TASK / 2,
        "only {served} pages served"
    );
}

/// Sends one request and checks it; returns 1 when a page of rows was served.
async fn check_one(site: &Site, target: Target, page: u32, json: bool) -> usize {
    let path = if json { "/api/subtasks" } else { "/subtasks" };
    let path = format!("{path}?page={page}");
    let everyone = [&site.alpha, &site.bravo, &site.inactive];
    let (me, host): (Option<&Seeded>, String) = match target {
        Target::Alpha => (Some(&site.alpha), site.alpha.host()),
        Target::Bravo => (Some(&site.bravo), site.bravo.host()),
        Target::Inactive => (None, site.inactive.host()),
        Target::Unknown => (None, format!("tenant-nobody.{BASE}")),
    };
    let reply = site.get(&host, &path).await;
    let Some(me) = me else {
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{host}{path}");
        for other in everyone {
            reply.assert_nothing_of(other);
        }
        return 0;
    };
    assert_eq!(reply.status, StatusCode::OK, "{host}{path}: {}", reply.body);
    for other in everyone.into_iter().filter(|o| o.id != me.id) {
        reply.assert_nothing_of(other);
    }
    let expected = (me.subtasks - (page as usize - 1) * 10).min(10);
    if json {
        let body = reply.json();
        assert_eq!(body["tenant"], me.slug);
        let items = body["items"].as_array().expect("items");
        assert_eq!(items.len(), expected);
        for item in items {
            assert_eq!(item["account_id"], me.id, "{item}");
        }
    } else {
        let own = format!("data-account-id=\"{}\"", me.id);
        assert_eq!(reply.body.matches(&own).count(), expected);
        assert_eq!(reply.body.matches("data-account-id=").count(), expected);
    }
    1
}
