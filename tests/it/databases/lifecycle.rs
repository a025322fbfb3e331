//! `rls-tenant` in the database mode: create on the server with the fewest tenants or the one
//! named, list with server and database, suspend, resume, drop; every bad input refused with
//! nothing changed.

use rls_tenancy::{
    ConnectError, LifecycleError, NewTenant, PlacementError, ScratchServers, Server, ServerSet,
    TenantSlug, connect,
};

use super::moving::{pool, projects, two_tenants};
use super::{admin, footprint, lifecycle};

fn slug(s: &str) -> TenantSlug {
    s.parse().expect("slug")
}

#[tokio::test]
async fn tenants_spread_over_the_servers_and_list_says_where_each_lives() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let tenants = lifecycle(&bed, bed.deploy_servers().clone()).await;
    let mut placed = Vec::new();
    for s in ["a", "b", "c"] {
        let record = tenants
            .create(&NewTenant::new(slug(s)))
            .await
            .expect("created");
        placed.push(record.server.clone().expect("a server"));
    }
    assert_eq!(
        placed,
        ["one", "two", "one"],
        "the fewest tenants first, in order on a tie"
    );
    let named = tenants
        .create(&NewTenant::new(slug("d")).server("one".parse().expect("name")))
        .await
        .expect("created where asked");
    assert_eq!(named.server.as_deref(), Some("one"));
    let list = tenants.list().await.expect("list");
    let base = bed.control().name().as_str();
    let b = list
        .iter()
        .find(|t| t.slug.as_str() == "b")
        .expect("b listed");
    assert_eq!(b.server.as_deref(), Some("two"));
    assert_eq!(
        b.database.as_deref(),
        Some(format!("{base}_tenant_b").as_str())
    );
    let text = rls_tenancy::list_text(&list);
    assert!(text.contains(&format!("two/{base}_tenant_b")), "{text}");
    // The runtime role reaches b's database on server two, not on server one.
    let runtime = |on: &str| {
        bed.runtime_servers()
            .server(&on.parse().expect("name"))
            .expect("server")
            .url()
            .with_database(&format!("{base}_tenant_b"))
    };
    assert!(connect(&runtime("two")).await.is_ok());
    assert!(
        connect(&runtime("one")).await.is_err(),
        "no such database on server one"
    );

    tenants.suspend(&slug("b")).await.expect("suspend");
    assert!(!tenants.find(&slug("b")).await.expect("find").active);
    tenants.resume(&slug("b")).await.expect("resume");
    let plan = tenants.drop_plan(&slug("b")).await.expect("plan");
    assert!(
        plan.to_string()
            .contains(&format!("database {base}_tenant_b on server two")),
        "{plan}"
    );
    tenants.drop_tenant(&slug("b")).await.expect("drop");
    let (databases, rows) = footprint(&bed).await;
    assert_eq!(rows, 3);
    assert!(
        !databases.iter().any(|d| d.ends_with("_tenant_b")),
        "{databases:?}"
    );
    assert_eq!(databases.len(), 3, "{databases:?}");
    tenants.close().await;
}

/// Runs `create` and checks it was refused with `expected` and changed nothing.
async fn refused(
    bed: &ScratchServers,
    servers: ServerSet,
    new: NewTenant,
    expected: impl Fn(&LifecycleError) -> bool,
) {
    let before = footprint(bed).await;
    let tenants = lifecycle(bed, servers).await;
    let err = tenants.create(&new).await.expect_err("refused");
    assert!(expected(&err), "{err}");
    assert!(err.is_usage(), "exit code 2: {err}");
    assert!(!err.to_string().contains('\n'), "one line: {err}");
    assert_eq!(footprint(bed).await, before, "nothing changed: {err}");
    tenants.close().await;
}

#[tokio::test]
async fn bad_input_is_refused_in_one_line_and_changes_nothing() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let servers = bed.deploy_servers().clone();
    // One tenant exists, so that "nothing changed" compares with something.
    lifecycle(&bed, servers.clone())
        .await
        .create(&NewTenant::new(slug("kept")))
        .await
        .expect("created");

    refused(
        &bed,
        servers.clone(),
        NewTenant::new(slug("x")).server("three".parse().expect("name")),
        |e| {
            matches!(
                e,
                LifecycleError::Connect(ConnectError::UnknownServer { .. })
            )
        },
    )
    .await;

    let one = servers.server(&"one".parse().expect("name")).expect("one");
    let down: Server = format!(
        "down={}",
        one.url().with_port(1).expect("port").expose_secret()
    )
    .parse()
    .expect("server");
    let with_down = ServerSet::new(servers.iter().cloned().chain([down]).collect()).expect("set");
    refused(
        &bed,
        with_down,
        NewTenant::new(slug("x")).server("down".parse().expect("name")),
        |e| matches!(e, LifecycleError::Connect(ConnectError::Unreachable { .. })),
    )
    .await;

    for unsafe_slug in ["template", &"b".repeat(60)] {
        refused(
            &bed,
            servers.clone(),
            NewTenant::new(slug(unsafe_slug)),
            |e| {
                matches!(
                    e,
                    LifecycleError::Placement(PlacementError::InvalidDatabaseName { .. })
                )
            },
        )
        .await;
    }

    refused(&bed, servers.clone(), NewTenant::new(slug("kept")), |e| {
        matches!(e, LifecycleError::SlugTaken { .. })
    })
    .await;

    // "kept" is on server one: a limit of one tenant fills it.
    let full = ServerSet::new(
        servers
            .iter()
            .map(|s| {
                if s.name().as_str() == "one" {
                    s.clone().max_tenants(1)
                } else {
                    s.clone().max_tenants(0)
                }
            })
            .collect(),
    )
    .expect("set");
    refused(
        &bed,
        full.clone(),
        NewTenant::new(slug("x")).server("one".parse().expect("name")),
        |e| matches!(e, LifecycleError::ServerFull { server, max: 1 } if server == "one"),
    )
    .await;
    refused(&bed, full, NewTenant::new(slug("x")), |e| {
        matches!(e, LifecycleError::ServersFull)
    })
    .await;
}

#[tokio::test]
async fn dropping_a_tenant_whose_database_has_runtime_sessions_open_drops_it_once_they_close() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let (tenants, acme, globex) = two_tenants(&bed).await;
    let database = acme.database.clone().expect("database");
    // The runtime role's pool holds a connection to acme's database, idle; the deploy role
    // may not end the runtime role's sessions (it is no member of it, nor of
    // pg_signal_backend), so DROP DATABASE ... WITH (FORCE) alone is refused.
    let pool = pool(&bed).await;
    assert_eq!(projects(&pool, &acme.scope()).await.expect("read").len(), 3);
    let mut su = admin(&bed, "one", "postgres").await;
    let sessions: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = $2",
    )
    .bind(&database)
    .bind(bed.control().runtime_role().as_str())
    .fetch_one(&mut su)
    .await
    .expect("pg_stat_activity");
    assert!(sessions >= 1, "a runtime session is open on the database");
    let can_end: bool = sqlx::query_scalar(
        "SELECT pg_has_role($1, $2, 'USAGE') OR pg_has_role($1, 'pg_signal_backend', 'USAGE')",
    )
    .bind(bed.control().deploy_role().as_str())
    .bind(bed.control().runtime_role().as_str())
    .fetch_one(&mut su)
    .await
    .expect("roles");
    assert!(
        !can_end,
        "the deploy role cannot end the runtime role's sessions"
    );

    let plan = tenants
        .drop_tenant(&acme.slug)
        .await
        .expect("dropped, once the runtime role's sessions closed");
    assert_eq!(plan.tenant.slug, acme.slug);
    let (databases, rows) = footprint(&bed).await;
    assert_eq!(rows, 1, "globex's registry row only");
    assert!(
        !databases.iter().any(|d| d.ends_with(&database)),
        "{databases:?}"
    );
    assert!(
        projects(&pool, &acme.scope()).await.is_err(),
        "the dropped tenant is not served"
    );
    assert_eq!(
        projects(&pool, &globex.scope())
            .await
            .expect("the other tenant is served"),
        ["globex project"]
    );
    pool.close().await;
}
