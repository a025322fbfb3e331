//! Tenant resolution through the registry, against a real database, as the runtime role.

use std::time::{Duration, Instant};

use rls_tenancy::TenancyDeclaration;
use rls_tenancy::{
    BaseDomain, HostError, RegistryOptions, ResolveError, Result, ScratchDatabase, TenantPool,
    TenantPoolOptions, TenantRegistry, TenantScope, TenantSlug,
};
use sqlx::PgPool;

use crate::support::until_listening;

async fn runtime_pool(db: &ScratchDatabase) -> Result<TenantPool> {
    Ok(TenantPool::connect(
        db.runtime_url(),
        TenantPoolOptions::new(TenancyDeclaration::reference()?).max_connections(2),
    )
    .await?)
}

async fn add_account(admin: &PgPool, slug: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("INSERT INTO app.accounts (slug, name) VALUES ($1, $1) RETURNING id")
            .bind(slug)
            .fetch_one(admin)
            .await?,
    )
}

async fn set_active(admin: &PgPool, slug: &str, active: bool) -> Result<()> {
    sqlx::query("UPDATE app.accounts SET is_active = $2 WHERE slug = $1")
        .bind(slug)
        .bind(active)
        .execute(admin)
        .await?;
    Ok(())
}

fn slug(s: &str) -> TenantSlug {
    match s.parse() {
        Ok(slug) => slug,
        Err(e) => unreachable!("test slugs are valid: {e}"),
    }
}

fn is_not_found(result: &Result<TenantScope, ResolveError>) -> bool {
    matches!(result, Err(ResolveError::TenantNotFound { .. }))
}

#[tokio::test]
async fn a_known_tenant_resolves_to_its_own_id_and_not_its_neighbours() -> Result<()> {
    let db = ScratchDatabase::migrated().await?;
    let admin = db.admin_pool().await?;
    let first = add_account(&admin, "first").await?;
    let second = add_account(&admin, "second").await?;
    let registry = runtime_pool(&db)
        .await?
        .registry(RegistryOptions::default());

    let scope = registry.resolve(&slug("second")).await?;
    assert_eq!(scope.id().as_i64().expect("bigint id"), second);
    assert_ne!(scope.id().as_i64().expect("bigint id"), first);
    assert_eq!(scope.slug().as_str(), "second");
    // Served from the cache the second time, with the same answer.
    assert_eq!(registry.resolve(&slug("second")).await?, scope);
    Ok(())
}

#[tokio::test]
async fn unknown_and_inactive_tenants_are_both_not_found() -> Result<()> {
    let db = ScratchDatabase::migrated().await?;
    let admin = db.admin_pool().await?;
    add_account(&admin, "dormant").await?;
    set_active(&admin, "dormant", false).await?;
    let registry = runtime_pool(&db)
        .await?
        .registry(RegistryOptions::default());

    assert!(is_not_found(&registry.resolve(&slug("nobody")).await));
    assert!(is_not_found(&registry.resolve(&slug("dormant")).await));
    let err = registry.resolve(&slug("nobody")).await.err();
    assert!(
        err.is_some_and(
            |e| rls_tenancy::cli::exit_code(&e.into()) == std::process::ExitCode::from(2)
        ),
        "not found is the caller's input, not a failure"
    );
    Ok(())
}

#[tokio::test]
async fn a_deactivated_tenant_is_cached_until_its_ttl_and_refused_after() -> Result<()> {
    let db = ScratchDatabase::migrated().await?;
    let admin = db.admin_pool().await?;
    add_account(&admin, "leaving").await?;
    let pool = runtime_pool(&db).await?;
    // Without the change listener: the TTL is the fallback when it is down.
    let ttl_only = RegistryOptions::default().listen(false);
    let long = pool.registry(ttl_only.ttl(Duration::from_secs(3600)));
    let short = pool.registry(ttl_only.ttl(Duration::from_millis(20)));
    long.resolve(&slug("leaving")).await?;
    short.resolve(&slug("leaving")).await?;

    set_active(&admin, "leaving", false).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert!(
        long.resolve(&slug("leaving")).await.is_ok(),
        "the long TTL still trusts its cache"
    );
    assert!(
        is_not_found(&short.resolve(&slug("leaving")).await),
        "the short TTL has expired"
    );
    long.invalidate(&slug("leaving"));
    assert!(
        is_not_found(&long.resolve(&slug("leaving")).await),
        "invalidate forgets at once"
    );
    Ok(())
}

#[tokio::test]
async fn unknown_slugs_are_remembered_briefly_unless_negative_caching_is_off() -> Result<()> {
    let db = ScratchDatabase::migrated().await?;
    let admin = db.admin_pool().await?;
    let pool = runtime_pool(&db).await?;
    let ttl_only = RegistryOptions::default().listen(false);
    let remembering = pool.registry(ttl_only.negative_ttl(Duration::from_secs(3600)));
    let forgetting = pool.registry(ttl_only.negative_ttl(Duration::ZERO));
    assert!(is_not_found(&remembering.resolve(&slug("late")).await));
    assert!(is_not_found(&forgetting.resolve(&slug("late")).await));

    let id = add_account(&admin, "late").await?;

    assert!(is_not_found(&remembering.resolve(&slug("late")).await));
    assert_eq!(
        forgetting
            .resolve(&slug("late"))
            .await?
            .id()
            .as_i64()
            .expect("bigint id"),
        id
    );
    remembering.invalidate(&slug("late"));
    assert_eq!(
        remembering
            .resolve(&slug("late"))
            .await?
            .id()
            .as_i64()
            .expect("bigint id"),
        id
    );
    Ok(())
}

#[tokio::test]
async fn the_cache_holds_no_more_tenants_than_its_bound() -> Result<()> {
    let db = ScratchDatabase::migrated().await?;
    let admin = db.admin_pool().await?;
    let registry = runtime_pool(&db)
        .await?
        .registry(RegistryOptions::default().max_entries(2));
    // The listener empties the cache when it starts and forgets each slug it hears inserted:
    // both must be over before the count below means anything.
    until_listening(&registry).await;
    let mut ids = Vec::new();
    for n in 0..6 {
        ids.push(add_account(&admin, &format!("tenant-{n}")).await?);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (n, id) in ids.into_iter().enumerate() {
        let name = format!("tenant-{n}");
        assert_eq!(
            registry
                .resolve(&slug(&name))
                .await?
                .id()
                .as_i64()
                .expect("bigint id"),
            id
        );
    }
    let cached = registry.cached_tenants();
    assert!(
        (1..=2).contains(&cached),
        "{cached} tenants cached with a bound of 2"
    );
    // Evicted tenants are read again, correctly.
    for n in 0..6 {
        let name = format!("tenant-{n}");
        assert_eq!(registry.resolve(&slug(&name)).await?.slug().as_str(), name);
    }
    Ok(())
}

#[tokio::test]
async fn from_subdomain_resolves_tenants_lands_the_bare_domain_and_refuses_bad_hosts() -> Result<()>
{
    let db = ScratchDatabase::migrated().await?;
    let admin = db.admin_pool().await?;
    let id = add_account(&admin, "tenant-1").await?;
    add_account(&admin, "tenant-2").await?;
    let registry = runtime_pool(&db)
        .await?
        .registry(RegistryOptions::default());
    let base: BaseDomain = "localhost".parse()?;

    let scope = TenantScope::from_subdomain("tenant-1.localhost:8080", &base, &registry).await?;
    assert_eq!(scope.map(|s| s.id().as_i64().expect("bigint id")), Some(id));
    assert_eq!(
        TenantScope::from_subdomain("localhost:8080", &base, &registry).await?,
        None
    );
    assert!(matches!(
        TenantScope::from_subdomain("tenant-3.localhost", &base, &registry).await,
        Err(ResolveError::TenantNotFound { .. })
    ));
    assert!(matches!(
        TenantScope::from_subdomain("tenant-1.tenant-2.localhost", &base, &registry).await,
        Err(ResolveError::InvalidHost(HostError::ExtraLabels {
            count: 2
        }))
    ));
    let bad = TenantScope::from_subdomain("tenant-1.localhost\0", &base, &registry).await;
    assert!(matches!(
        bad,
        Err(ResolveError::InvalidHost(HostError::ControlCharacter))
    ));
    Ok(())
}

#[tokio::test]
async fn header_and_path_resolvers_share_the_registry_and_the_slug_rules() -> Result<()> {
    use axum::http::{HeaderMap, HeaderValue};
    use rls_tenancy::{LabelError, TenantHeader, TenantPath};

    let db = ScratchDatabase::migrated().await?;
    let admin = db.admin_pool().await?;
    let id = add_account(&admin, "acme").await?;
    let registry = runtime_pool(&db)
        .await?
        .registry(RegistryOptions::default());

    let header = TenantHeader::new("x-tenant")?;
    let mut headers = HeaderMap::new();
    headers.insert("x-tenant", HeaderValue::from_static("acme"));
    assert_eq!(
        TenantScope::from_header(&headers, &header, &registry)
            .await?
            .id()
            .as_i64()
            .expect("bigint id"),
        id
    );
    headers.insert("x-tenant", HeaderValue::from_static("ACME"));
    assert!(matches!(
        TenantScope::from_header(&headers, &header, &registry).await,
        Err(ResolveError::InvalidTenantHeader {
            reason: LabelError::UpperCase,
            ..
        })
    ));

    let paths = TenantPath::default();
    let (scope, rest) = TenantScope::from_path("/t/acme/subtasks", &paths, &registry).await?;
    assert_eq!(
        (scope.id().as_i64().expect("bigint id"), rest),
        (id, "/subtasks")
    );
    assert!(matches!(
        TenantScope::from_path("/t/xn--acme/", &paths, &registry).await,
        Err(ResolveError::InvalidTenantPath {
            reason: LabelError::ReservedHyphens
        })
    ));
    assert!(matches!(
        TenantScope::from_path("/t/nobody/", &paths, &registry).await,
        Err(ResolveError::TenantNotFound { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn an_endless_ttl_is_capped_instead_of_panicking() -> rls_tenancy::Result<()> {
    let db = rls_tenancy::ScratchDatabase::migrated().await?;
    let options =
        rls_tenancy::TenantPoolOptions::new(rls_tenancy::TenancyDeclaration::reference()?);
    let pool = rls_tenancy::TenantPool::connect(db.runtime_url(), options).await?;
    let options = rls_tenancy::RegistryOptions::default()
        .ttl(std::time::Duration::MAX)
        .negative_ttl(std::time::Duration::MAX);
    let registry = pool.registry(options);
    // Both caches take an entry with the capped TTL, and answer from it.
    let id = add_account(&db.admin_pool().await?, "forever").await?;
    let found = registry.resolve(&slug("forever")).await?;
    assert_eq!(found.id().as_i64(), Some(id));
    assert_eq!(registry.cached_tenants(), 1, "the found tenant is cached");
    let missing = registry.resolve(&slug("nobody")).await;
    assert!(is_not_found(&missing), "{missing:?}");
    registry.invalidate(&slug("forever"));
    let again = registry.resolve(&slug("forever")).await?;
    assert_eq!(again.id().as_i64(), Some(id), "read again after invalidate");
    Ok(())
}

/// Waits (polling, at most `within`) until `done` holds for every registry.
async fn within<F, Fut>(within: Duration, what: &str, registries: &[&TenantRegistry], done: F)
where
    F: Fn(TenantRegistry) -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    for registry in registries {
        while !done((*registry).clone()).await {
            assert!(Instant::now() < deadline, "{what} not within {within:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn resolves_to(registry: TenantRegistry, name: &'static str, id: i64) -> bool {
    registry
        .resolve(&slug(name))
        .await
        .is_ok_and(|scope| scope.id().as_i64() == Some(id))
}

async fn not_found(registry: TenantRegistry, name: &'static str) -> bool {
    is_not_found(&registry.resolve(&slug(name)).await)
}

#[tokio::test]
async fn registry_changes_reach_every_process_within_a_second() -> Result<()> {
    let db = ScratchDatabase::migrated().await?;
    let admin = db.admin_pool().await?;
    let id = add_account(&admin, "moving").await?;
    // Two processes: each its own pool and registry. Caches that would trust an answer for
    // an hour, so only the change notices can make either see a change in time.
    let hour = RegistryOptions::default()
        .ttl(Duration::from_secs(3600))
        .negative_ttl(Duration::from_secs(3600));
    let (one, two) = (runtime_pool(&db).await?, runtime_pool(&db).await?);
    let (one, two) = (one.registry(hour), two.registry(hour));
    let both = [&one, &two];
    within(
        Duration::from_secs(10),
        "listening",
        &both,
        |r| async move { r.is_listening() },
    )
    .await;
    within(Duration::ZERO, "resolving", &both, |r| {
        resolves_to(r, "moving", id)
    })
    .await;
    assert!(
        not_found(one.clone(), "moved").await,
        "nothing is called moved yet"
    );

    set_active(&admin, "moving", false).await?;
    within(Duration::from_secs(1), "suspension seen", &both, |r| {
        not_found(r, "moving")
    })
    .await;

    set_active(&admin, "moving", true).await?;
    within(Duration::from_secs(1), "resumption seen", &both, |r| {
        resolves_to(r, "moving", id)
    })
    .await;

    sqlx::query("UPDATE app.accounts SET slug = 'moved' WHERE id = $1")
        .bind(id)
        .execute(&admin)
        .await?;
    within(Duration::from_secs(1), "rename seen", &both, |r| async move {
        not_found(r.clone(), "moving").await && resolves_to(r, "moved", id).await
    })
    .await;

    // The listeners' connections die: they come back, and notices work again.
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
          WHERE datname = current_database() AND query LIKE 'LISTEN%') AS t",
    )
    .fetch_one(&admin)
    .await?;
    assert_eq!(killed, 2, "one listener per process");
    within(
        Duration::from_secs(10),
        "listening again",
        &both,
        |r| async move { r.is_listening() },
    )
    .await;
    sqlx::query("DELETE FROM app.accounts WHERE id = $1")
        .bind(id)
        .execute(&admin)
        .await?;
    within(Duration::from_secs(1), "deletion seen", &both, |r| {
        not_found(r, "moved")
    })
    .await;
    Ok(())
}

#[tokio::test]
async fn a_lookup_whose_pooled_connections_were_killed_runs_again_on_a_live_one() -> Result<()> {
    let db = ScratchDatabase::migrated().await?;
    let admin = db.admin_pool().await?;
    let first = add_account(&admin, "first").await?;
    let second = add_account(&admin, "second").await?;
    // No listener: its own connection is not the pool's, and its restart would empty the
    // cache and hide what is looked at here.
    let registry = runtime_pool(&db)
        .await?
        .registry(RegistryOptions::default().listen(false));
    assert_eq!(
        registry.resolve(&slug("first")).await?.id().as_i64(),
        Some(first)
    );
    // Every backend of the runtime role ends: the pool's idle connections are dead.
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                                WHERE usename = $1 AND pid <> pg_backend_pid()) k",
    )
    .bind(db.runtime_role().as_str())
    .fetch_one(&admin)
    .await?;
    assert!(killed > 0, "the pool had no connection to kill");
    // A lookup the cache cannot answer: the dead connection is found out and the lookup runs
    // once more, instead of failing the request (a 503) and marking the server down.
    assert_eq!(
        registry.resolve(&slug("second")).await?.id().as_i64(),
        Some(second)
    );
    assert!(is_not_found(&registry.resolve(&slug("third")).await));
    Ok(())
}
