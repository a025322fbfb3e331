//! The database strategy's runtime path on two real servers: `TenantPool::connect_servers`
//! routes each tenant's transaction to its own database, under the pool set's budget, and a
//! server that goes down only fails its own tenants.

use std::time::Duration;

use axum::response::IntoResponse;
use rls_tenancy::http::AppError;
use rls_tenancy::{
    AdminServer, DatabasePattern, DbError, PoolSetOptions, REFERENCE_TENANT_MIGRATIONS,
    ScratchServers, TenantId, TenantPool, TenantPoolOptions, TenantScope, connect,
    provision_database,
};
use sqlx::Connection;

/// A tenant with a database of its own, registered in the control database, holding one
/// project of its own and one of a foreign tenant id (written as the superuser).
struct Placed {
    scope: TenantScope,
    database: String,
}

/// Provisions `slug`'s database on server `on` and registers it.
async fn place(bed: &ScratchServers, on: &'static str, slug: &str) -> Placed {
    let base = bed.control().name().as_str();
    let pattern = DatabasePattern::default();
    let database = pattern
        .database(base, &slug.parse().expect("slug"))
        .expect("name");
    let server = bed
        .deploy_servers()
        .server(&on.parse().expect("server name"))
        .expect("server");
    provision_database(
        server,
        &database,
        &pattern.template(base).expect("template"),
        &REFERENCE_TENANT_MIGRATIONS,
        bed.declaration(),
        &bed.migrate_options().expect("options"),
    )
    .await
    .expect("provisioned");
    let control = bed.control().admin_pool().await.expect("control admin");
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO app.accounts (slug, name, server_name, database_name)
         VALUES ($1, $1, $2, $3) RETURNING id",
    )
    .bind(slug)
    .bind(on)
    .bind(database.as_str())
    .fetch_one(&control)
    .await
    .expect("registered");
    let url = bed
        .admin_url(on)
        .expect("server")
        .with_database(database.as_str());
    let mut su = connect(&url).await.expect("superuser");
    sqlx::query(
        "INSERT INTO app.projects (account_id, name) VALUES ($1, 'project of ' || $2), ($1 + 100000, 'foreign')",
    )
    .bind(id)
    .bind(slug)
    .execute(&mut su)
    .await
    .expect("rows");
    su.close().await.expect("close");
    Placed {
        scope: TenantScope::new(TenantId::new(id).expect("id"), slug.parse().expect("slug")),
        database: database.as_str().to_owned(),
    }
}

async fn pool(bed: &ScratchServers, budget: PoolSetOptions) -> TenantPool {
    let options = TenantPoolOptions::new(bed.declaration().clone())
        .tenant_key(bed.tenant_key().clone())
        .max_connections(2)
        .pool_set(budget);
    TenantPool::connect_servers(bed.control().runtime_url(), bed.runtime_servers(), options)
        .await
        .expect("tenant pool over two servers")
}

/// The project names `tenant`'s transaction sees.
async fn projects(pool: &TenantPool, tenant: &Placed) -> Result<Vec<String>, DbError> {
    let mut tx = pool.begin(&tenant.scope).await?;
    let names = sqlx::query_scalar("SELECT name FROM app.projects ORDER BY name")
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(names)
}

/// The runtime role's backends in tenant databases (not the control database), on both
/// servers, as the servers see them.
async fn tenant_backends(bed: &ScratchServers) -> i64 {
    let mut total = 0;
    for on in ["one", "two"] {
        let mut admin = connect(&bed.admin_url(on).expect("server"))
            .await
            .expect("admin");
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND datname <> $2",
        )
        .bind(bed.control().runtime_role().as_str())
        .bind(bed.control().name().as_str())
        .fetch_one(&mut admin)
        .await
        .expect("pg_stat_activity");
        total += n;
        admin.close().await.expect("close");
    }
    total
}

#[tokio::test]
async fn each_tenant_sees_only_its_own_rows_in_its_own_database_on_either_server() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let acme = place(&bed, "one", "acme").await;
    let globex = place(&bed, "two", "globex").await;
    let pool = pool(&bed, PoolSetOptions::default()).await;

    assert_eq!(
        projects(&pool, &acme).await.expect("acme"),
        ["project of acme"]
    );
    assert_eq!(
        projects(&pool, &globex).await.expect("globex"),
        ["project of globex"]
    );

    // A write for another tenant id, inside acme's transaction in acme's database: refused.
    let mut tx = pool.begin(&acme.scope).await.expect("begin");
    let foreign = sqlx::query("INSERT INTO app.projects (account_id, name) VALUES ($1, 'x')")
        .bind(globex.scope.id().as_i64().expect("int id"))
        .execute(&mut *tx)
        .await;
    assert!(
        foreign.is_err(),
        "a row for globex written in acme's transaction"
    );
    drop(tx);

    // The runtime role in the tenant database, without the tenant context: nothing.
    let url = bed
        .runtime_servers()
        .server(&"two".parse().expect("name"))
        .expect("server")
        .url()
        .with_database(&globex.database);
    let mut bare = connect(&url).await.expect("runtime connects");
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM app.projects")
        .fetch_one(&mut bare)
        .await
        .expect("count");
    assert_eq!(
        seen, 0,
        "two rows are there, none visible without the context"
    );
    let stats = pool.pool_set_stats().expect("a pool set");
    assert_eq!(stats.open_pools, 2);
}

#[tokio::test]
async fn requests_for_more_tenant_databases_than_the_budget_allows_hold_at_most_the_budget() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let mut tenants = Vec::new();
    for (i, on) in ["one", "two", "one", "two", "one"].into_iter().enumerate() {
        tenants.push(place(&bed, on, &format!("budget-{i}")).await);
    }
    let pool = pool(
        &bed,
        PoolSetOptions::default()
            .max_connections(2)
            .max_per_database(1),
    )
    .await;
    let mut most = 0;
    for round in 0..2 {
        for tenant in &tenants {
            let names = projects(&pool, tenant).await.expect("projects");
            assert_eq!(names, [format!("project of {}", tenant.scope.slug())]);
            let held = tenant_backends(&bed).await;
            assert!(
                held <= 2,
                "round {round}, {}: {held} connections to tenant databases for a budget of 2",
                tenant.scope.slug()
            );
            most = most.max(held);
        }
    }
    assert_eq!(most, 2, "the budget was used to the full");
    let stats = pool.pool_set_stats().expect("a pool set");
    assert_eq!(stats.open_pools, 2);
    assert_eq!(
        stats.evictions, 8,
        "ten touches of five databases through two slots"
    );

    // Concurrent requests for all five tenants, each holding its transaction a moment:
    // waiters get a slot as one frees, nobody fails, the budget holds.
    let scopes = tenants.iter().map(|t| t.scope.clone()).collect();
    assert_eq!(
        concurrent_failures(&pool, scopes).await,
        0,
        "a request past the acquire timeout"
    );
    assert!(tenant_backends(&bed).await <= 2);
}

#[tokio::test]
async fn a_stopped_server_fails_only_its_own_tenants_with_503_and_the_others_keep_answering() {
    let own = AdminServer::start_local()
        .await
        .expect("a cluster of its own");
    let bed = ScratchServers::create_with(own.clone())
        .await
        .expect("scratch servers");
    let cluster = own.local_cluster().expect("a local cluster");
    let staying = place(&bed, "one", "staying").await;
    let stopping = place(&bed, "two", "stopping").await;
    // Both tenants' pools open (and their databases checked) before the outage, with room for
    // a loaded machine's logins: the outage is what is under test, not a first login's time.
    let pool = pool(
        &bed,
        PoolSetOptions::default().acquire_timeout(Duration::from_secs(5)),
    )
    .await;
    assert!(projects(&pool, &staying).await.is_ok());
    assert!(projects(&pool, &stopping).await.is_ok());
    cluster.stop().expect("stop server two");

    let mut answered = 0;
    let mut refused = 0;
    for _ in 0..10 {
        let names = projects(&pool, &staying)
            .await
            .expect("server one's tenant keeps answering");
        assert_eq!(names, ["project of staying"]);
        answered += 1;
        // A hang detector, not a timing: the first request finds the server down within the
        // acquire timeout, the others are refused at once.
        let err = tokio::time::timeout(Duration::from_secs(60), projects(&pool, &stopping))
            .await
            .expect("no hang")
            .expect_err("server two is down");
        let response = AppError::from(rls_tenancy::Error::from(err)).into_response();
        assert_eq!(response.status(), 503);
        assert!(response.headers().contains_key("retry-after"));
        refused += 1;
    }
    assert_eq!((answered, refused), (10, 10));
    cluster.resume().expect("server two back");
    // Back once a request gets through: each probe waits half a second, and a login slower
    // than that (a loaded machine) completes in the background and ends the outage. A
    // bounded poll on the condition, never a fixed wait.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let back = loop {
        match projects(&pool, &stopping).await {
            Ok(names) => break names,
            Err(err) => assert!(
                std::time::Instant::now() < deadline,
                "server two's tenant does not answer two minutes after the server came back: {err}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(back, ["project of stopping"]);
}

/// Runs a transaction for each of `scopes` at once, each holding it a moment; how many failed.
async fn concurrent_failures(pool: &TenantPool, scopes: Vec<TenantScope>) -> usize {
    let requests: Vec<_> = scopes
        .into_iter()
        .map(|scope| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut tx = pool.begin(&scope).await?;
                sqlx::query("SELECT pg_sleep(0.05)")
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            })
        })
        .collect();
    let mut failed = 0;
    for request in requests {
        if request.await.expect("task").is_err() {
            failed += 1;
        }
    }
    failed
}

#[tokio::test]
async fn one_tenant_databases_connections_ended_fail_no_request_and_leave_its_server_up() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let ended = place(&bed, "one", "ended").await;
    let neighbour = place(&bed, "one", "neighbour").await;
    let pool = pool(&bed, PoolSetOptions::default()).await;
    // Both databases' pools hold their two connections, idle.
    assert_eq!(
        concurrent_failures(&pool, vec![ended.scope.clone(); 2]).await,
        0
    );
    assert_eq!(
        concurrent_failures(&pool, vec![neighbour.scope.clone(); 2]).await,
        0
    );

    // Every session on one tenant's database ends (a DBA, a restore, a drop and re-create of
    // the database): its server and the other database on it are fine.
    let mut su = connect(&bed.admin_url("one").expect("server"))
        .await
        .expect("superuser");
    let ended_sessions: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
    )
    .bind(&ended.database)
    .fetch_one(&mut su)
    .await
    .expect("terminate");
    assert_eq!(ended_sessions, 2, "the pool's two idle connections");
    su.close().await.expect("close");

    assert_eq!(
        projects(&pool, &ended)
            .await
            .expect("the dead connections are replaced"),
        ["project of ended"]
    );
    assert_eq!(
        concurrent_failures(&pool, vec![neighbour.scope.clone(); 4]).await,
        0,
        "the other tenant on the same server is not refused"
    );
}
