//! `provision_database`: a tenant database cloned from the server's template holds the
//! schema, the forced policies and the grants, and only the runtime role may connect.

use rls_tenancy::{
    DatabaseName, DatabasePattern, LifecycleError, REFERENCE_TENANT_MIGRATIONS, ScratchServers,
    Server, connect, drop_tenant_database, provision_database,
};
use sqlx::{Connection, PgConnection};

/// Server `name` of the bed, as the deploy role reaches it.
fn server<'a>(bed: &'a ScratchServers, name: &str) -> &'a Server {
    bed.deploy_servers()
        .server(&name.parse().expect("server name"))
        .expect("configured server")
}

fn names(bed: &ScratchServers, slug: &str) -> (DatabaseName, DatabaseName) {
    let base = bed.control().name().as_str();
    let pattern = DatabasePattern::default();
    (
        pattern
            .database(base, &slug.parse().expect("slug"))
            .expect("database name"),
        pattern.template(base).expect("template name"),
    )
}

async fn provision(
    bed: &ScratchServers,
    on: &str,
    slug: &str,
) -> Result<DatabaseName, LifecycleError> {
    let (database, template) = names(bed, slug);
    provision_database(
        server(bed, on),
        &database,
        &template,
        &REFERENCE_TENANT_MIGRATIONS,
        bed.declaration(),
        &bed.migrate_options().expect("options"),
    )
    .await?;
    Ok(database)
}

/// A superuser connection to `database` on server `on`.
async fn admin(bed: &ScratchServers, on: &str, database: &str) -> PgConnection {
    let url = bed.admin_url(on).expect("server").with_database(database);
    connect(&url).await.expect("superuser connection")
}

/// A runtime-role connection attempt to `database` on server `on`.
async fn as_runtime(
    bed: &ScratchServers,
    on: &str,
    database: &str,
) -> Result<PgConnection, rls_tenancy::ConnectError> {
    let url = bed
        .runtime_servers()
        .server(&on.parse().expect("server name"))
        .expect("server")
        .url()
        .with_database(database);
    connect(&url).await
}

#[tokio::test]
async fn a_provisioned_database_shows_the_runtime_role_nothing_without_the_tenant_context() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let database = provision(&bed, "two", "acme").await.expect("provisioned");
    // Rows for two tenant ids, written as the superuser (which bypasses row-level security).
    let mut su = admin(&bed, "two", database.as_str()).await;
    sqlx::raw_sql(
        "INSERT INTO app.projects (account_id, name) VALUES (1, 'mine'), (2, 'foreign');
         INSERT INTO app.users (account_id, email, first_name, last_name, password)
              VALUES (1, 'a@x', 'A', 'A', 'x'), (2, 'b@x', 'B', 'B', 'x')",
    )
    .execute(&mut su)
    .await
    .expect("fixture rows");
    let forced: Vec<(String, bool, bool)> = sqlx::query_as(
        "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity FROM pg_class c
          WHERE c.relnamespace = 'app'::regnamespace AND c.relkind = 'r' AND c.relname <> '_rls_migrations'
          ORDER BY 1",
    )
    .fetch_all(&mut su)
    .await
    .expect("tables");
    assert_eq!(forced.len(), 4, "{forced:?}");
    assert!(
        forced.iter().all(|(_, on, forced)| *on && *forced),
        "{forced:?}"
    );

    let mut rt = as_runtime(&bed, "two", database.as_str())
        .await
        .expect("runtime connects");
    for table in ["users", "projects", "tasks", "subtasks"] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM app.{table}"
        )))
        .fetch_one(&mut rt)
        .await
        .expect("runtime may read, and sees nothing");
        assert_eq!(n, 0, "{table}");
    }
    // The plain setting is not the signed context: still nothing, and no write.
    let mut tx = rt.begin().await.expect("begin");
    sqlx::query("SELECT set_config('app.tenant_id', '1', true)")
        .execute(&mut *tx)
        .await
        .expect("set");
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM app.projects")
        .fetch_one(&mut *tx)
        .await
        .expect("count");
    assert_eq!(n, 0);
    let write = sqlx::query("INSERT INTO app.projects (account_id, name) VALUES (1, 'x')")
        .execute(&mut *tx)
        .await;
    assert!(
        write.is_err(),
        "a write without the signed context is refused"
    );
    drop(tx);
    // The runtime role may not create anything, nor truncate.
    for forbidden in [
        "CREATE TABLE app.x (i int)",
        "CREATE TABLE public.x (i int)",
        "TRUNCATE app.projects",
        "CREATE TEMP TABLE x (i int)",
    ] {
        let refused = sqlx::raw_sql(sqlx::AssertSqlSafe(forbidden))
            .execute(&mut rt)
            .await;
        assert!(refused.is_err(), "{forbidden} must be refused");
    }
    // The application's key is there, for the signed context the tenant pool enters.
    let signed: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM rls_tenancy_secret.tenant_keys WHERE key_id = $1)",
    )
    .bind(bed.tenant_key().id())
    .fetch_one(&mut su)
    .await
    .expect("key");
    assert!(
        signed,
        "the application's key is installed in the tenant database"
    );
}

#[tokio::test]
async fn only_the_runtime_role_may_connect_and_never_to_the_template() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let database = provision(&bed, "one", "acme").await.expect("provisioned");
    let (_, template) = names(&bed, "acme");
    assert!(as_runtime(&bed, "one", database.as_str()).await.is_ok());
    let refused = as_runtime(&bed, "one", template.as_str()).await;
    assert!(
        refused.is_err(),
        "the runtime role may not connect to the template"
    );
    // A role with no grant at all (PUBLIC has none on either database).
    let mut su = admin(&bed, "one", "postgres").await;
    let stranger = format!("{}_stranger", bed.control().name().as_str());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE ROLE {stranger} LOGIN PASSWORD 'pw'"
    )))
    .execute(&mut su)
    .await
    .expect("stranger");
    let url = bed
        .admin_url("one")
        .expect("one")
        .with_database(database.as_str())
        .with_credentials(&stranger, "pw")
        .expect("url");
    let stranger_in = connect(&url).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE {stranger}")))
        .execute(&mut su)
        .await
        .expect("drop stranger");
    assert!(
        stranger_in.is_err(),
        "PUBLIC may not connect to a tenant database"
    );
    let acl: String =
        sqlx::query_scalar("SELECT coalesce(datacl::text, '') FROM pg_database WHERE datname = $1")
            .bind(database.as_str())
            .fetch_one(&mut su)
            .await
            .expect("acl");
    let runtime = bed.control().runtime_role().as_str();
    assert!(acl.contains(&format!("{runtime}=c/")), "{acl}");
    assert!(
        !acl.contains("=Tc/") && !acl.starts_with("{=") && !acl.contains(",="),
        "PUBLIC holds nothing: {acl}"
    );
}

/// The template's catalog row versions, read over a connection closed before returning (no
/// session may stay on a template while it is cloned).
async fn template_rows(bed: &ScratchServers) -> Vec<String> {
    let (_, template) = names(bed, "unused");
    let mut su = admin(bed, "two", template.as_str()).await;
    let rows = crate::support::catalog_row_versions(&mut su).await;
    su.close().await.expect("close");
    rows
}

#[tokio::test]
async fn cloning_the_template_again_leaves_it_as_it_was() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    provision(&bed, "two", "a").await.expect("a");
    let before = template_rows(&bed).await;
    assert!(
        before
            .iter()
            .any(|row| row.starts_with("function rls_tenancy.enter(")),
        "{before:?}"
    );
    provision(&bed, "two", "b").await.expect("b");
    // Re-installing what the template holds would leave dead catalog rows that every later
    // tenant database copies.
    assert_eq!(template_rows(&bed).await, before);
}

#[tokio::test]
async fn each_clone_gets_its_own_token_key_and_a_taken_name_changes_nothing() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let a = provision(&bed, "two", "a").await.expect("a");
    let b = provision(&bed, "two", "b").await.expect("b");
    let token = |db: DatabaseName| {
        let bed = &bed;
        async move {
            let mut su = admin(bed, "two", db.as_str()).await;
            sqlx::query_scalar::<_, Vec<u8>>("SELECT inner_block FROM rls_tenancy_secret.token_key")
                .fetch_one(&mut su)
                .await
                .expect("token key")
        }
    };
    assert_ne!(token(a.clone()).await, token(b).await);

    let mut su = admin(&bed, "two", a.as_str()).await;
    sqlx::raw_sql("INSERT INTO app.projects (account_id, name) VALUES (1, 'kept')")
        .execute(&mut su)
        .await
        .expect("row");
    let err = provision(&bed, "two", "a").await.expect_err("a exists");
    assert!(matches!(err, LifecycleError::DatabaseTaken { .. }), "{err}");
    assert!(err.is_usage());
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM app.projects")
        .fetch_one(&mut su)
        .await
        .expect("count");
    assert_eq!(kept, 1, "the existing database was left alone");
    drop(su);
    drop_tenant_database(server(&bed, "two"), &a)
        .await
        .expect("drop");
    let mut postgres = admin(&bed, "two", "postgres").await;
    let left: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(a.as_str())
            .fetch_one(&mut postgres)
            .await
            .expect("exists");
    assert!(!left);
}

#[tokio::test]
async fn a_deploy_role_without_createdb_is_told_so_and_nothing_is_made() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let mut su = admin(&bed, "two", "postgres").await;
    let deploy = bed.control().deploy_role();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER ROLE {deploy} NOCREATEDB"
    )))
    .execute(&mut su)
    .await
    .expect("revoke createdb");
    let err = provision(&bed, "two", "acme").await.expect_err("refused");
    assert!(
        matches!(err, LifecycleError::CannotCreateDatabase { ref server } if server == "two"),
        "{err}"
    );
    let made: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname = $1",
    )
    .bind(deploy.as_str())
    .fetch_one(&mut su)
    .await
    .expect("count");
    assert_eq!(made, 0);
}

#[tokio::test]
async fn the_runtime_role_reads_the_placement_columns_under_the_database_strategy_only() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let mut rt = connect(bed.control().runtime_url()).await.expect("runtime");
    let read = sqlx::query("SELECT server_name, database_name FROM app.accounts")
        .execute(&mut rt)
        .await;
    assert!(read.is_ok(), "{read:?}");
    // Migrated for the RLS mode, the same columns are closed again.
    let options = rls_tenancy::MigrateOptions::new(
        bed.control().deploy_url().clone(),
        bed.control().runtime_role().as_str(),
    )
    .expect("options")
    .tenant_key(bed.tenant_key().clone());
    rls_tenancy::install_policies(
        &bed.declaration()
            .clone()
            .with_strategy(rls_tenancy::Strategy::Rls),
        &options,
    )
    .await
    .expect("rls grants");
    let read = sqlx::query("SELECT database_name FROM app.accounts")
        .execute(&mut rt)
        .await;
    assert!(
        read.is_err(),
        "the database column is closed outside the database strategy"
    );
}

#[tokio::test]
async fn a_clone_whose_create_was_cut_off_midway_is_open_to_no_role() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    // The template first (the first provisioning makes it), then ballast in it, so that the
    // next clone's CREATE DATABASE takes long enough to be cut off while the server runs it.
    provision(&bed, "two", "first").await.expect("provisioned");
    let (database, template) = names(&bed, "cut");
    let mut su = admin(&bed, "two", template.as_str()).await;
    sqlx::raw_sql(
        "CREATE TABLE public.ballast AS SELECT g, repeat('x', 500) AS pad FROM generate_series(1, 200000) g",
    )
    .execute(&mut su)
    .await
    .expect("ballast");
    su.close().await.expect("close");

    // The caller goes away (Ctrl-C on rls-tenant create, a request cut) while the server
    // copies the template: the server finishes the CREATE DATABASE on its own.
    let mut watch = admin(&bed, "two", "postgres").await;
    let provisioning = provision(&bed, "two", "cut");
    let cloning = async {
        loop {
            let running: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE 'CREATE DATABASE %' || $1 || '% TEMPLATE %')",
            )
            .bind(database.as_str())
            .fetch_one(&mut watch)
            .await
            .expect("pg_stat_activity");
            if running {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        done = provisioning => panic!("the clone finished before it could be cut off: {done:?}"),
        () = cloning => {}
    }
    let mut made = false;
    for _ in 0..200 {
        made = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)
                AND NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE query LIKE 'CREATE DATABASE %' || $1 || '%')",
        )
        .bind(database.as_str())
        .fetch_one(&mut watch)
        .await
        .expect("pg_database");
        if made {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(made, "the server finished the clone the caller left");

    // Left behind, never registered, never finished: the runtime role may not get in (nor
    // any role through PUBLIC), although the application's keys and grants are inside.
    let refused = as_runtime(&bed, "two", database.as_str()).await;
    assert!(
        refused.is_err(),
        "the runtime role connected to a clone nobody finished"
    );
    drop_tenant_database(server(&bed, "two"), &database)
        .await
        .expect("the leftover can be dropped");
}
