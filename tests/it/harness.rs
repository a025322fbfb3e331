//! The test harness itself: scratch databases and the throwaway local cluster.

use rls_tenancy::{AdminServer, ScratchDatabase};
use sqlx::{Connection, PgConnection};

#[tokio::test]
async fn the_runtime_role_the_tests_use_is_not_privileged_and_owns_nothing() {
    let db = ScratchDatabase::migrated().await.expect("scratch database");
    let mut conn =
        PgConnection::connect_with(&db.runtime_url().connect_options().expect("options"))
            .await
            .expect("runtime connection");
    let (user, superuser, bypass, createrole, createdb, inherit): (
        String,
        bool,
        bool,
        bool,
        bool,
        bool,
    ) = sqlx::query_as(
        "SELECT rolname::text, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolinherit
               FROM pg_roles WHERE rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await
    .expect("role");
    assert_eq!(user, db.runtime_role().as_str());
    assert!(!superuser && !bypass && !createrole && !createdb && !inherit);

    let owned: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM pg_class WHERE relowner = r.oid)
              + (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid)
              + (SELECT count(*) FROM pg_database WHERE datdba = r.oid)
              + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid)
              + (SELECT count(*) FROM pg_type WHERE typowner = r.oid)
           FROM pg_roles r WHERE r.rolname = current_user",
    )
    .fetch_one(&mut conn)
    .await
    .expect("ownership");
    assert_eq!(owned, 0, "the runtime role must own nothing");
    let memberships: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = current_user")
            .fetch_one(&mut conn)
            .await
            .expect("memberships");
    assert_eq!(
        memberships, 0,
        "the runtime role must be a member of no role"
    );
}

#[tokio::test]
async fn scratch_databases_are_distinct_and_dropped_with_their_roles() {
    let server = AdminServer::shared().await.expect("server");
    let mut admin =
        PgConnection::connect_with(&server.admin_url().connect_options().expect("options"))
            .await
            .expect("admin");
    let first = ScratchDatabase::create().await.expect("first");
    let second = ScratchDatabase::create().await.expect("second");
    assert_ne!(first.name(), second.name());
    assert_ne!(first.runtime_role(), second.runtime_role());
    let name = first.name().as_str().to_owned();
    let role = first.runtime_role().as_str().to_owned();
    drop(first);
    let left: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM pg_database WHERE datname = $1)
              + (SELECT count(*) FROM pg_roles WHERE rolname = $2)",
    )
    .bind(&name)
    .bind(&role)
    .fetch_one(&mut admin)
    .await
    .expect("count");
    assert_eq!(
        left, 0,
        "the scratch database or its roles survived the drop"
    );
}

#[tokio::test]
async fn a_local_cluster_serves_a_migrated_database_and_is_removed_when_dropped() {
    let server = AdminServer::start_local().await.expect("local cluster");
    assert!(server.is_local_cluster());
    let db = ScratchDatabase::create_on(server.clone())
        .await
        .expect("scratch database");
    let options =
        rls_tenancy::MigrateOptions::new(db.deploy_url().clone(), db.runtime_role().as_str())
            .expect("options")
            .tenant_key(rls_tenancy::TenantKey::generate());
    let declaration = rls_tenancy::TenancyDeclaration::reference().expect("declaration");
    rls_tenancy::migrate_with(&rls_tenancy::REFERENCE_MIGRATIONS, &declaration, &options)
        .await
        .expect("migrate on the local cluster");
    let url = server.admin_url().clone();
    drop(db);
    drop(server);
    let after = PgConnection::connect_with(&url.connect_options().expect("options")).await;
    assert!(
        after.is_err(),
        "the local cluster still accepts connections after drop"
    );
}

#[tokio::test]
async fn a_local_cluster_directory_is_removed_when_the_cluster_is_dropped() {
    let dir = tokio::task::spawn_blocking(|| {
        let cluster = rls_tenancy::LocalCluster::start().expect("local cluster");
        let dir = cluster.dir().to_path_buf();
        assert!(dir.join("data").join("PG_VERSION").exists());
        dir
    })
    .await
    .expect("cluster task");
    assert!(!dir.exists(), "{} survived the drop", dir.display());
}
