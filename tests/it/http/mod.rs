//! The HTTP layer and the demo, end to end against a real database: the router through
//! `tower::ServiceExt::oneshot`, and once over a real socket.

mod binary;
mod concurrent;
mod domains;
mod embedded;
mod faults;
mod hosts;
mod limits;
mod outage;
mod pages;
mod schemas;
mod shutdown;
mod socket;
mod static_tenants;
mod tx;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use rls_tenancy::TenancyDeclaration;
use rls_tenancy::demo::{DemoState, router};
use rls_tenancy::http::AppState;
use rls_tenancy::{RegistryOptions, ScratchDatabase, TenantPool, TenantPoolOptions};
use sqlx::PgPool;
use tower::ServiceExt;

/// The base domain the tests' tenants live under.
pub const BASE: &str = "demo.test";

/// One tenant of the fixture: every name it owns starts with its `word`.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub slug: &'static str,
    pub id: i64,
    pub word: &'static str,
    pub subtasks: usize,
}

impl Seeded {
    pub fn host(&self) -> String {
        format!("{}.{BASE}", self.slug)
    }
}

/// A migrated database with two active tenants and one inactive one, each with its own
/// project, task and subtasks, and the demo router over it as the runtime role.
pub struct Site {
    pub db: ScratchDatabase,
    pub admin: PgPool,
    pub pool: TenantPool,
    pub app: Router,
    pub alpha: Seeded,
    pub bravo: Seeded,
    pub inactive: Seeded,
}

impl Site {
    /// `alpha` has 15 subtasks (two pages), `bravo` 12, the inactive `charlie` 3.
    pub async fn new() -> Self {
        Self::on(ScratchDatabase::migrated().await.expect("scratch database")).await
    }

    /// The same site on a migrated database of the caller's choosing.
    pub async fn on(db: ScratchDatabase) -> Self {
        let admin = db.admin_pool().await.expect("admin pool");
        let alpha = seed(&admin, "tenant-alpha", "alpha", 15, true).await;
        let bravo = seed(&admin, "tenant-bravo", "bravo", 12, true).await;
        let inactive = seed(&admin, "tenant-charlie", "charlie", 3, false).await;
        let pool = TenantPool::connect(
            db.runtime_url(),
            TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"))
                .max_connections(8),
        )
        .await
        .expect("runtime pool");
        let app = router(DemoState::new(state(&pool), Vec::new()));
        Self {
            db,
            admin,
            pool,
            app,
            alpha,
            bravo,
            inactive,
        }
    }

    /// Another runtime-role pool on the site's database, with `options`.
    pub async fn pool_with(&self, options: TenantPoolOptions) -> TenantPool {
        TenantPool::connect(self.db.runtime_url(), options)
            .await
            .expect("runtime pool")
    }

    /// Sends `GET path` with `Host: host` through the router.
    pub async fn get(&self, host: &str, path: &str) -> Reply {
        send(&self.app, Some(host), path).await
    }
}

/// The HTTP layer's state over `pool`, for tenants under [`BASE`].
pub fn state(pool: &TenantPool) -> AppState {
    let registry = pool.registry(RegistryOptions::default());
    AppState::new(pool.clone(), registry, BASE.parse().expect("base domain"))
}

/// Inserts a tenant with one project, one task and `subtasks` subtasks, as the superuser.
async fn seed(
    admin: &PgPool,
    slug: &'static str,
    word: &'static str,
    subtasks: usize,
    active: bool,
) -> Seeded {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO app.accounts (slug, name, is_active) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(slug)
    .bind(format!("{word} inc"))
    .bind(active)
    .fetch_one(admin)
    .await
    .expect("account");
    let project: i64 = sqlx::query_scalar(
        "INSERT INTO app.projects (account_id, name) VALUES ($1, $2 || ' project') RETURNING id",
    )
    .bind(id)
    .bind(word)
    .fetch_one(admin)
    .await
    .expect("project");
    let task: i64 = sqlx::query_scalar(
        "INSERT INTO app.tasks (account_id, project_id, name) VALUES ($1, $2, $3 || ' task') RETURNING id",
    )
    .bind(id)
    .bind(project)
    .bind(word)
    .fetch_one(admin)
    .await
    .expect("task");
    sqlx::query(
        "INSERT INTO app.subtasks (account_id, task_id, name, is_complete)
         SELECT $1, $2, $3 || ' subtask ' || lpad(n::text, 2, '0'), n % 2 = 0
         FROM generate_series(1, $4) n",
    )
    .bind(id)
    .bind(task)
    .bind(word)
    .bind(i32::try_from(subtasks).expect("count"))
    .execute(admin)
    .await
    .expect("subtasks");
    Seeded {
        slug,
        id,
        word,
        subtasks,
    }
}

/// A response, read to the end.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Asserts the body shows none of `other`'s data: not its names, not its account id.
    pub fn assert_nothing_of(&self, other: &Seeded) {
        assert!(
            !self.body.contains(other.word),
            "the response leaks {}'s rows:\n{}",
            other.slug,
            self.body
        );
        for leak in [
            format!("\"account_id\":{},", other.id),
            format!("data-account-id=\"{}\"", other.id),
        ] {
            assert!(!self.body.contains(&leak), "the response carries {leak}");
        }
    }
}

/// Sends `GET path` through `app`, with `Host: host` when given.
pub async fn send(app: &Router, host: Option<&str>, path: &str) -> Reply {
    let mut request = Request::builder().uri(path);
    if let Some(host) = host {
        request = request.header(header::HOST, host);
    }
    let request = request.body(Body::empty()).expect("request");
    read(app.clone().oneshot(request).await.expect("infallible")).await
}

/// Reads a response to the end.
pub async fn read(response: Response) -> Reply {
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(bytes.to_vec()).expect("UTF-8 body"),
    }
}

/// Asserts a 503 with `Retry-After` and the generic body: a temporary failure, never a 500.
pub fn assert_unavailable(reply: &Reply) {
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.body
    );
    assert_eq!(reply.headers[header::RETRY_AFTER], "1");
    assert_eq!(reply.body, "service unavailable");
}

/// Holds an exclusive lock on the subtasks (as the superuser) until the returned
/// transaction ends: every tenant request that reads them waits.
pub async fn lock_subtasks(admin: &PgPool) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut lock = admin.begin().await.expect("admin tx");
    sqlx::query("LOCK TABLE app.subtasks IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .expect("lock");
    lock
}
