//! `PoolSet`: a pool per database under one connection budget, with scratch databases
//! standing in for tenant databases, all reached by one login role. Counts come from
//! `pg_stat_activity`, as the server sees them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rls_tenancy::{DatabaseUrl, DbError, PoolSet, PoolSetOptions, ScratchDatabase};
use sqlx::{AssertSqlSafe, PgPool};

/// Scratch databases reachable by the first one's runtime role, which every pool logs in as.
struct Databases {
    all: Vec<ScratchDatabase>,
    admin: PgPool,
}

impl Databases {
    async fn new(n: usize) -> Self {
        let mut all = Vec::with_capacity(n);
        for _ in 0..n {
            all.push(ScratchDatabase::create().await.expect("scratch database"));
        }
        let admin = all[0].admin_pool().await.expect("admin pool");
        for db in &all[1..] {
            sqlx::raw_sql(AssertSqlSafe(format!(
                "GRANT CONNECT ON DATABASE {} TO {}",
                db.name(),
                all[0].runtime_role()
            )))
            .execute(&admin)
            .await
            .expect("grant connect");
        }
        Self { all, admin }
    }

    fn name(&self, i: usize) -> String {
        self.all[i].name().as_str().to_owned()
    }

    fn login(&self) -> DatabaseUrl {
        self.all[0].runtime_url().clone()
    }

    /// A set over one server, `main`, that counts how often each database was first opened.
    fn set(&self, options: PoolSetOptions) -> (PoolSet<String>, Arc<AtomicUsize>) {
        let opens = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&opens);
        let set = PoolSet::new(options, [("main", self.login())], move |pool: PgPool| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                let name: String = sqlx::query_scalar("SELECT current_database()::text")
                    .fetch_one(&pool)
                    .await?;
                Ok(name)
            }
        })
        .expect("pool set");
        (set, opens)
    }

    /// The login role's backends, per database, as the server sees them.
    async fn backends(&self) -> Vec<(String, i64)> {
        sqlx::query_as(
            "SELECT datname::text, count(*) FROM pg_stat_activity WHERE usename = $1
              GROUP BY datname ORDER BY datname",
        )
        .bind(self.all[0].runtime_role().as_str())
        .fetch_all(&self.admin)
        .await
        .expect("pg_stat_activity")
    }

    async fn backend_count(&self) -> i64 {
        self.backends().await.iter().map(|(_, n)| n).sum()
    }

    /// Waits (bounded) until the server has let go of backends the set closed.
    async fn settled(&self, expected: i64) -> i64 {
        for _ in 0..100 {
            let n = self.backend_count().await;
            if n <= expected {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.backend_count().await
    }
}

async fn touch(set: &PoolSet<String>, database: &str) {
    let (mut conn, opened) = set.acquire("main", database).await.expect("connection");
    assert_eq!(*opened, database, "what on_open returned for this database");
    let here: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&mut *conn)
        .await
        .expect("query");
    assert_eq!(here, database);
}

#[tokio::test]
async fn touching_more_databases_than_the_budget_allows_never_holds_more_connections_than_the_budget()
 {
    let dbs = Databases::new(7).await;
    let (set, _) = dbs.set(
        PoolSetOptions::default()
            .max_connections(3)
            .max_per_database(1),
    );
    let mut most = 0;
    for round in 0..2 {
        for i in 0..7 {
            touch(&set, &dbs.name(i)).await;
            let held = dbs.backend_count().await;
            assert!(
                held <= 3,
                "round {round}, database {i}: {held} backends for a budget of 3"
            );
            most = most.max(held);
            assert!(set.stats().connections <= 3);
        }
    }
    assert_eq!(most, 3, "the budget was used to the full");
    let stats = set.stats();
    assert_eq!(stats.open_pools, 3);
    assert_eq!(
        stats.opens, 14,
        "every touch after the first three needed a pool"
    );
    assert_eq!(stats.evictions, 11);

    // Concurrently: twelve requests over seven databases, each holding its connection a
    // moment; the server never sees more than the budget.
    let sampler = {
        let admin = dbs.admin.clone();
        let role = dbs.all[0].runtime_role().as_str().to_owned();
        tokio::spawn(async move {
            let mut most = 0_i64;
            for _ in 0..60 {
                let n: i64 =
                    sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE usename = $1")
                        .bind(&role)
                        .fetch_one(&admin)
                        .await
                        .expect("count");
                most = most.max(n);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            most
        })
    };
    let requests: Vec<_> = (0..12)
        .map(|i| {
            let set = set.clone();
            let database = dbs.name(i % 7);
            tokio::spawn(async move {
                let (mut conn, _) = set.acquire("main", &database).await.expect("connection");
                sqlx::query("SELECT pg_sleep(0.05)")
                    .execute(&mut *conn)
                    .await
                    .expect("query");
            })
        })
        .collect();
    for request in requests {
        request.await.expect("request");
    }
    let most = sampler.await.expect("sampler");
    assert!(most <= 3, "{most} backends at once for a budget of 3");
    set.close().await;
    assert_eq!(
        dbs.settled(0).await,
        0,
        "closing the set closes every connection"
    );
}

#[tokio::test]
async fn the_least_recently_used_idle_pool_is_the_one_evicted() {
    let dbs = Databases::new(3).await;
    let (set, _) = dbs.set(
        PoolSetOptions::default()
            .max_connections(2)
            .max_per_database(1),
    );
    let (a, b, c) = (dbs.name(0), dbs.name(1), dbs.name(2));
    // sqlx pings a released connection before it is idle again, so a pool is busy for a round
    // trip after its request: only idle pools are evicted, and with a and b both still busy
    // the set would take whichever came back first. Each touch is given time to come back.
    for database in [&a, &b, &a] {
        touch(&set, database).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // b is now the least recently used.
    touch(&set, &c).await;
    assert_eq!(set.stats().evictions, 1);
    dbs.settled(2).await;
    let open: Vec<String> = dbs.backends().await.into_iter().map(|(d, _)| d).collect();
    assert!(
        open.contains(&a),
        "a, used recently, kept its connection: {open:?}"
    );
    assert!(open.contains(&c), "c got one: {open:?}");
    assert!(
        !open.contains(&b),
        "b's pool was closed, with its connection: {open:?}"
    );
}

#[tokio::test]
async fn a_request_beyond_the_budget_waits_then_fails_with_unavailable() {
    let dbs = Databases::new(2).await;
    let (set, _) = dbs.set(
        PoolSetOptions::default()
            .max_connections(1)
            .acquire_timeout(Duration::from_millis(300)),
    );
    let (a, b) = (dbs.name(0), dbs.name(1));
    let (held, _) = set.acquire("main", &a).await.expect("a's connection");
    let refused = tokio::time::timeout(Duration::from_secs(10), set.acquire("main", &b))
        .await
        .expect("the request ends (no hang)")
        .expect_err("no room while a's connection is in use");
    assert!(
        matches!(refused, DbError::Unavailable { .. }),
        "a 503 with Retry-After, not {refused:?}"
    );
    let same = tokio::time::timeout(Duration::from_secs(10), set.acquire("main", &a))
        .await
        .expect("the request ends (no hang)")
        .expect_err("a's one connection is in use");
    assert!(matches!(same, DbError::Unavailable { .. }), "{same:?}");
    drop(held);
    touch(&set, &b).await;
    assert_eq!(set.stats().evictions, 1, "a's idle pool made room for b");
}

#[tokio::test]
async fn what_runs_when_a_database_first_opens_runs_once_per_database() {
    let dbs = Databases::new(3).await;
    let (set, opens) = dbs.set(
        PoolSetOptions::default()
            .max_connections(2)
            .max_per_database(1),
    );
    let (a, b, c) = (dbs.name(0), dbs.name(1), dbs.name(2));
    for _ in 0..3 {
        touch(&set, &a).await;
    }
    assert_eq!(opens.load(Ordering::SeqCst), 1, "a: once, not per request");
    touch(&set, &b).await;
    touch(&set, &c).await; // evicts a
    touch(&set, &a).await; // a's pool opens again, its check does not run again
    assert_eq!(set.stats().evictions, 2);
    assert_eq!(opens.load(Ordering::SeqCst), 3, "once each for a, b and c");

    let (set, opens) = dbs.set(
        PoolSetOptions::default()
            .max_connections(4)
            .max_per_database(4),
    );
    let first: Vec<_> = (0..4)
        .map(|_| {
            let set = set.clone();
            let a = a.clone();
            tokio::spawn(async move { touch(&set, &a).await })
        })
        .collect();
    for request in first {
        request.await.expect("request");
    }
    assert_eq!(
        opens.load(Ordering::SeqCst),
        1,
        "concurrent first requests: one check"
    );
}

#[tokio::test]
async fn a_server_that_refuses_connections_fails_fast_and_the_other_server_keeps_serving() {
    let dbs = Databases::new(1).await;
    let refusing = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = refusing.local_addr().expect("address").port();
    drop(refusing); // nothing listens there now: connections are refused
    let down = dbs.login().with_port(port).expect("url");
    let set: PoolSet = PoolSet::new(
        PoolSetOptions::default().acquire_timeout(Duration::from_millis(400)),
        [("up", dbs.login()), ("down", down)],
        |_| async { Ok(()) },
    )
    .expect("pool set");
    let first = set
        .acquire("down", "anything")
        .await
        .expect_err("the server refuses");
    assert!(
        matches!(first, DbError::Unavailable { .. }),
        "found down: 503, not {first:?}"
    );
    assert!(set.is_down("down"));
    assert!(!set.is_down("up"));
    let again = set
        .acquire("down", "anything")
        .await
        .expect_err("still down");
    assert!(matches!(again, DbError::Unavailable { .. }), "{again:?}");
    let (mut conn, ()) = set
        .acquire("up", &dbs.name(0))
        .await
        .map(|(conn, opened)| (conn, *opened))
        .expect("the other server serves");
    sqlx::query("SELECT 1")
        .execute(&mut *conn)
        .await
        .expect("query");
    let unknown = set
        .acquire("elsewhere", &dbs.name(0))
        .await
        .expect_err("never configured");
    assert!(
        unknown.to_string().contains("--server elsewhere=URL"),
        "{unknown}"
    );
}
