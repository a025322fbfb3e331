//! `rls-tenant move` on two real servers: the rows, sequences and walls arrive; reads never
//! fail and writes wait, then fail on the old copy or succeed on the new one; another
//! process's pool follows the registry's notice; a failure or a miscount before the switch
//! leaves everything as it was; bad input is refused in one line with nothing changed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rls_tenancy::{
    LifecycleError, NewTenant, PoolSetOptions, ScratchServers, TenantLifecycle, TenantPool,
    TenantPoolOptions, TenantRecord, TenantScope, TenantSlug, connect,
};
use sqlx::Connection;

use super::{admin, footprint, lifecycle};

fn slug(s: &str) -> TenantSlug {
    s.parse().expect("slug")
}

/// The tenant's rows, written as the superuser in its database: 2 users, 3 projects, 6
/// tasks, `subtasks` subtasks, and one project of a foreign tenant id that no tenant
/// transaction sees (so it is not copied).
async fn seed(bed: &ScratchServers, tenant: &TenantRecord, subtasks: i64) {
    let on = tenant.server.as_deref().expect("server");
    let mut su = admin(bed, on, tenant.database.as_deref().expect("database")).await;
    let id = tenant.id.as_i64().expect("int id");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO app.users (account_id, email, first_name, last_name, password)
              SELECT {id}, 'u' || i || '@example.com', 'U', 'Ser', 'x' FROM generate_series(1, 2) i;
         INSERT INTO app.projects (account_id, name) SELECT {id}, 'project ' || i FROM generate_series(1, 3) i;
         INSERT INTO app.projects (account_id, name) VALUES ({id} + 100000, 'foreign');
         INSERT INTO app.tasks (account_id, project_id, name)
              SELECT {id}, p.id, 'task ' || i FROM app.projects p, generate_series(1, 2) i
               WHERE p.account_id = {id};
         INSERT INTO app.subtasks (account_id, task_id, name)
              SELECT {id}, (SELECT min(id) FROM app.tasks WHERE account_id = {id}), 'subtask ' || i
                FROM generate_series(1, {subtasks}) i;"
    )))
    .execute(&mut su)
    .await
    .expect("seeded");
    su.close().await.expect("close");
}

pub(super) async fn pool(bed: &ScratchServers) -> TenantPool {
    let options = TenantPoolOptions::new(bed.declaration().clone())
        .tenant_key(bed.tenant_key().clone())
        .max_connections(2)
        // Idle connections to a moved tenant's old database close soon, so the move's drop
        // of it (which the deploy role may not force on the runtime role's sessions) waits
        // briefly.
        .pool_set(
            PoolSetOptions::default()
                .max_per_database(8)
                .idle_timeout(Duration::from_secs(1)),
        );
    TenantPool::connect_servers(bed.control().runtime_url(), bed.runtime_servers(), options)
        .await
        .expect("tenant pool over two servers")
}

/// The project names `scope`'s transaction sees.
pub(super) async fn projects(
    pool: &TenantPool,
    scope: &TenantScope,
) -> Result<Vec<String>, String> {
    let mut tx = pool.begin(scope).await.map_err(|e| e.to_string())?;
    let names = sqlx::query_scalar("SELECT name FROM app.projects ORDER BY id")
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(names)
}

/// Adds a project named `name` in `scope`'s transaction; its id.
pub(super) async fn add_project(
    pool: &TenantPool,
    scope: &TenantScope,
    name: &str,
) -> Result<i64, String> {
    let mut tx = pool.begin(scope).await.map_err(|e| e.to_string())?;
    let id = sqlx::query_scalar(
        "INSERT INTO app.projects (account_id, name) VALUES ($1, $2) RETURNING id",
    )
    .bind(scope.id().as_i64().expect("int id"))
    .bind(name)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(id)
}

/// Waits until a session of `role` in database `database` on server `on` waits for a lock.
async fn until_waiting(bed: &ScratchServers, on: &str, database: &str, role: &str) {
    let mut su = admin(bed, on, "postgres").await;
    for _ in 0..600 {
        let waiting: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                             WHERE datname = $1 AND usename = $2 AND wait_event_type = 'Lock')",
        )
        .bind(database)
        .bind(role)
        .fetch_one(&mut su)
        .await
        .expect("pg_stat_activity");
        if waiting {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no session of {role} in {database} on {on} waited for a lock within 30 s");
}

/// The registry's (server, database) of `slug`.
pub(super) async fn place(bed: &ScratchServers, slug: &str) -> (String, String) {
    let mut control = admin(bed, "one", bed.control().name().as_str()).await;
    sqlx::query_as("SELECT server_name, database_name FROM app.accounts WHERE slug = $1")
        .bind(slug)
        .fetch_one(&mut control)
        .await
        .expect("registry row")
}

/// Two tenants, `acme` on server one (seeded) and `globex` on server two (one project).
pub(super) async fn two_tenants(
    bed: &ScratchServers,
) -> (TenantLifecycle, TenantRecord, TenantRecord) {
    let tenants = lifecycle(bed, bed.deploy_servers().clone()).await;
    let acme = tenants
        .create(&NewTenant::new(slug("acme")).server("one".parse().expect("name")))
        .await
        .expect("acme");
    let globex = tenants
        .create(&NewTenant::new(slug("globex")).server("two".parse().expect("name")))
        .await
        .expect("globex");
    seed(bed, &acme, 20).await;
    let mut su = admin(bed, "two", globex.database.as_deref().expect("database")).await;
    sqlx::query("INSERT INTO app.projects (account_id, name) VALUES ($1, 'globex project')")
        .bind(globex.id.as_i64().expect("int id"))
        .execute(&mut su)
        .await
        .expect("globex row");
    (tenants, acme, globex)
}

#[tokio::test]
async fn a_moved_tenant_keeps_its_rows_sequences_and_walls_and_its_old_database_goes() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let (tenants, acme, globex) = two_tenants(&bed).await;
    let base = bed.control().name().as_str().to_owned();
    let database = format!("{base}_tenant_acme");

    let report = tenants
        .move_tenant(&acme.slug, &"two".parse().expect("name"), &())
        .await
        .expect("moved");
    assert_eq!((report.from.as_str(), report.to.as_str()), ("one", "two"));
    assert_eq!(
        report.tables,
        [
            ("\"app\".\"users\"".to_owned(), 2),
            ("\"app\".\"projects\"".to_owned(), 3),
            ("\"app\".\"tasks\"".to_owned(), 6),
            ("\"app\".\"subtasks\"".to_owned(), 20),
        ],
        "the tenant's rows, not the foreign one"
    );
    assert!(report.write_pause <= report.total);
    assert_eq!(
        place(&bed, "acme").await,
        ("two".to_owned(), database.clone())
    );
    let (databases, _) = footprint(&bed).await;
    assert!(
        databases.contains(&format!("two/{database}")),
        "{databases:?}"
    );
    assert!(
        !databases.contains(&format!("one/{database}")),
        "the old copy is dropped: {databases:?}"
    );

    let pool = pool(&bed).await;
    assert_eq!(
        projects(&pool, &acme.scope()).await.expect("acme reads"),
        ["project 1", "project 2", "project 3"]
    );
    // The sequences came along: a new row does not collide with a copied one.
    let id = add_project(&pool, &acme.scope(), "after the move")
        .await
        .expect("a new row on the new copy");
    assert!(id > 4, "the identity continues after the copied ids: {id}");
    assert_eq!(
        projects(&pool, &globex.scope())
            .await
            .expect("globex reads"),
        ["globex project"],
        "the other tenant on the same server sees only its own rows"
    );

    // The walls of the new copy: nothing without the tenant context; CONNECT for the runtime
    // role there, the database gone from server one.
    let runtime = |on: &str| {
        bed.runtime_servers()
            .server(&on.parse().expect("name"))
            .expect("server")
            .url()
            .with_database(&database)
    };
    let mut bare = connect(&runtime("two")).await.expect("runtime connects");
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM app.projects")
        .fetch_one(&mut bare)
        .await
        .expect("count");
    assert_eq!(seen, 0, "four rows there, none visible without the context");
    bare.close().await.expect("close");
    assert!(
        connect(&runtime("one")).await.is_err(),
        "no database on one"
    );
    let mut su = admin(&bed, "two", "postgres").await;
    let (runtime_connect, public_connect): (bool, bool) = sqlx::query_as(
        "SELECT has_database_privilege($1, $2, 'CONNECT'),
                EXISTS (SELECT 1 FROM pg_database d, aclexplode(d.datacl) a
                         WHERE d.datname = $2 AND a.grantee = 0)",
    )
    .bind(bed.control().runtime_role().as_str())
    .bind(&database)
    .fetch_one(&mut su)
    .await
    .expect("privileges");
    assert!(runtime_connect && !public_connect);

    // rls-check over every database passes after the move.
    let mut check = std::process::Command::new(env!("CARGO_BIN_EXE_rls-check"));
    check.args([
        "--strategy",
        "database",
        "--database-url",
        bed.control().runtime_url().expose_secret(),
    ]);
    for server in bed.runtime_servers().iter() {
        check.args([
            "--server",
            &format!("{}={}", server.name(), server.url().expose_secret()),
        ]);
    }
    let output = check
        .env_remove("RLS_SERVERS")
        .env_remove("RLS_CONFIG")
        .output()
        .expect("rls-check runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("== tenant acme (two/{database}) ==")),
        "{stdout}"
    );
    pool.close().await;
    tenants.close().await;
}

#[tokio::test]
async fn reads_never_fail_during_a_move_and_a_waiting_write_fails_on_the_old_copy_never_landing_there()
 {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let (tenants, acme, _) = two_tenants(&bed).await;
    let database = acme.database.clone().expect("database");
    let pool = pool(&bed).await;
    // Another process's pool, which has the old place cached when the move starts.
    let other = pool_elsewhere(&bed).await;
    assert_eq!(
        projects(&other, &acme.scope()).await.expect("read").len(),
        3
    );

    let stop = Arc::new(AtomicBool::new(false));
    let (reads, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (pool, scope) = (pool.clone(), acme.scope());
            let (stop, reads, failed) = (stop.clone(), reads.clone(), failed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    match projects(&pool, &scope).await {
                        Ok(names) if names.len() >= 3 => reads.fetch_add(1, Ordering::Relaxed),
                        Ok(names) => panic!("a read saw {names:?}"),
                        Err(err) => {
                            eprintln!("failed read: {err}");
                            failed.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect();

    // Hold the tenant's registry row, so the move waits at its switch with the tables locked.
    let mut control = admin(&bed, "one", bed.control().name().as_str()).await;
    let mut held = control.begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM app.accounts WHERE slug = 'acme' FOR UPDATE")
        .execute(&mut *held)
        .await
        .expect("row held");
    let tenants = Arc::new(tenants);
    let moving = {
        let tenants = Arc::clone(&tenants);
        let slug = acme.slug.clone();
        tokio::spawn(async move {
            tenants
                .move_tenant(&slug, &"two".parse().expect("name"), &())
                .await
        })
    };
    let deploy = bed.control().deploy_role().as_str().to_owned();
    until_waiting(&bed, "one", bed.control().name().as_str(), &deploy).await;

    // The tables are locked: a read passes, a write waits.
    assert_eq!(projects(&pool, &acme.scope()).await.expect("read").len(), 3);
    let writer = {
        let (pool, scope) = (pool.clone(), acme.scope());
        tokio::spawn(async move { add_project(&pool, &scope, "written during the move").await })
    };
    let runtime = bed.control().runtime_role().as_str().to_owned();
    until_waiting(&bed, "one", &database, &runtime).await;
    held.commit().await.expect("row released");

    let report = moving.await.expect("task").expect("moved");
    let write = writer.await.expect("task");
    let err = write.expect_err("the waiting write is refused on the fenced old copy");
    assert!(err.contains("permission denied"), "{err}");
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.expect("reader");
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no read failed");
    assert!(reads.load(Ordering::Relaxed) > 0);
    assert!(report.write_pause > Duration::ZERO, "{report}");
    assert!(
        report.to_string().contains("writes blocked for"),
        "{report}"
    );

    // Nothing of the refused write anywhere; a write now lands on the new copy, and the
    // other process's pool, told by the notice, reads it there.
    assert_eq!(
        projects(&pool, &acme.scope()).await.expect("read"),
        ["project 1", "project 2", "project 3"]
    );
    add_project(&pool, &acme.scope(), "after the move")
        .await
        .expect("write on the new copy");
    assert_eq!(
        projects(&other, &acme.scope())
            .await
            .expect("the other pool follows"),
        ["project 1", "project 2", "project 3", "after the move"]
    );
    let mut su = admin(&bed, "two", &database).await;
    let on_new: i64 =
        sqlx::query_scalar("SELECT count(*) FROM app.projects WHERE name = 'after the move'")
            .fetch_one(&mut su)
            .await
            .expect("count");
    assert_eq!(on_new, 1);
    pool.close().await;
    other.close().await;
}

/// A pool of its own, as another process would have.
async fn pool_elsewhere(bed: &ScratchServers) -> TenantPool {
    pool(bed).await
}

#[tokio::test]
async fn a_failure_or_a_miscount_before_the_switch_leaves_everything_as_it_was() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let (tenants, acme, _) = two_tenants(&bed).await;
    let template = format!("{}_tenant_template", bed.control().name().as_str());
    let before = footprint(&bed).await;
    let place_before = place(&bed, "acme").await;
    let pool = pool(&bed).await;

    // A trigger on server two's template that fails the copy midway, then one that drops
    // every other subtask (the copy then counts fewer rows).
    let triggers = [
        "CREATE FUNCTION app.refuse() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'the target refuses'; END $$;
         CREATE TRIGGER refuse BEFORE INSERT ON app.subtasks FOR EACH ROW EXECUTE FUNCTION app.refuse();",
        "DROP TRIGGER refuse ON app.subtasks;
         CREATE FUNCTION app.lose() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN IF NEW.id % 2 = 0 THEN RETURN NULL; END IF; RETURN NEW; END $$;
         CREATE TRIGGER lose BEFORE INSERT ON app.subtasks FOR EACH ROW EXECUTE FUNCTION app.lose();",
    ];
    for (n, trigger) in triggers.into_iter().enumerate() {
        let mut su = admin(&bed, "two", &template).await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(trigger))
            .execute(&mut su)
            .await
            .expect("trigger");
        su.close().await.expect("close");

        let err = tenants
            .move_tenant(&acme.slug, &"two".parse().expect("name"), &())
            .await
            .expect_err("abandoned");
        match n {
            0 => assert!(
                matches!(err, LifecycleError::Database(_))
                    && err.to_string().contains("the target refuses"),
                "{err}"
            ),
            _ => {
                assert!(
                    matches!(&err, LifecycleError::CountsDiffer { tables } if tables.contains("\"app\".\"subtasks\" (20 rows, the copy 10)") && !tables.contains("users")),
                    "{err}"
                );
                assert!(!err.to_string().contains('\n'));
            }
        }
        assert!(!err.is_usage(), "exit 1: {err}");
        assert_eq!(footprint(&bed).await, before, "the copy is dropped: {err}");
        assert_eq!(
            place(&bed, "acme").await,
            place_before,
            "registry unchanged"
        );
        // The change log is gone from the old copy, which is whole and writable (no fence
        // left behind).
        let mut su = admin(&bed, "one", acme.database.as_deref().expect("database")).await;
        let log: Option<String> =
            sqlx::query_scalar("SELECT to_regnamespace('rls_tenancy_move')::text")
                .fetch_one(&mut su)
                .await
                .expect("schema");
        assert_eq!(log, None, "the change log is removed: {err}");
        su.close().await.expect("close");
        assert_eq!(
            projects(&pool, &acme.scope()).await.expect("read").len(),
            3 + n
        );
        add_project(&pool, &acme.scope(), &format!("after failure {n}"))
            .await
            .expect("still writable where it was");
    }
    pool.close().await;
}

/// One refused run: strategy, servers, config file, arguments, what stderr says.
type Case<'a> = (
    &'a str,
    &'a [String],
    Option<&'a std::path::Path>,
    &'a [&'a str],
    &'a str,
);

#[tokio::test]
async fn bad_input_to_move_is_refused_by_the_binary_in_one_line_with_nothing_changed() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let (tenants, _, _) = two_tenants(&bed).await;
    tenants.close().await;
    let key = tempfile::NamedTempFile::new().expect("key file");
    std::fs::write(key.path(), bed.tenant_key().to_hex()).expect("key");
    let servers: Vec<String> = bed
        .deploy_servers()
        .iter()
        .map(|s| format!("{}={}", s.name(), s.url().expose_secret()))
        .collect();
    let down = format!(
        "down={}",
        bed.deploy_servers()
            .server(&"two".parse().expect("name"))
            .expect("two")
            .url()
            .with_port(1)
            .expect("port")
            .expose_secret()
    );
    let config = tempfile::NamedTempFile::new().expect("config");
    let two = &servers[1]["two=".len()..];
    std::fs::write(
        config.path(),
        format!("[[server]]\nname = \"two\"\nurl = \"{two}\"\nmax_tenants = 1\n"),
    )
    .expect("config");
    let run =
        |strategy: &str, servers: &[String], config: Option<&std::path::Path>, args: &[&str]| {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rls-tenant"));
            command
                .args(["--database-url", bed.control().deploy_url().expose_secret()])
                .args(["--strategy", strategy])
                .args(["--runtime-role", bed.control().runtime_role().as_str()])
                .arg("--tenant-key-file")
                .arg(key.path())
                .env_remove("DEPLOY_DATABASE_URL")
                .env_remove("RLS_SERVERS")
                .env_remove("RLS_CONFIG")
                .env_remove("RUST_LOG");
            for server in servers {
                command.args(["--server", server]);
            }
            if let Some(path) = config {
                command.arg("--config").arg(path);
            }
            command.args(args).output().expect("rls-tenant runs")
        };
    let password = url::Url::parse(bed.control().deploy_url().expose_secret())
        .expect("url")
        .password()
        .expect("password")
        .to_owned();
    let before = footprint(&bed).await;
    let one_only = [servers[0].clone()];
    let with_down = [servers[0].clone(), servers[1].clone(), down];
    let cases: [Case<'_>; 6] = [
        (
            "database",
            &servers,
            None,
            &["move", "nobody", "--to", "two"],
            "no tenant nobody",
        ),
        (
            "database",
            &servers,
            None,
            &["move", "acme", "--to", "three"],
            "three",
        ),
        (
            "database",
            &with_down,
            None,
            &["move", "acme", "--to", "down"],
            "cannot connect to",
        ),
        (
            "database",
            &servers,
            None,
            &["move", "acme", "--to", "one"],
            "is on server one already",
        ),
        (
            "database",
            &one_only,
            Some(config.path()),
            &["move", "acme", "--to", "two"],
            "server two is full",
        ),
        (
            "rls",
            &[],
            None,
            &["move", "acme", "--to", "two"],
            "--strategy database",
        ),
    ];
    for (strategy, servers, config, args, says) in cases {
        let output = run(strategy, servers, config, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(!stderr.contains(password.as_str()), "{stderr}");
        assert_eq!(footprint(&bed).await, before, "{args:?}: nothing changed");
        assert_eq!(place(&bed, "acme").await.0, "one");
    }

    // A suspended tenant moves (and stays suspended): the binary reports the write pause.
    let suspended = run("database", &servers, None, &["suspend", "acme"]);
    assert_eq!(suspended.status.code(), Some(0));
    let output = run("database", &servers, None, &["move", "acme", "--to", "two"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("moved tenant acme from server one to server two")
            && stdout.contains("writes blocked for"),
        "{stdout}"
    );
    assert_eq!(place(&bed, "acme").await.0, "two");
    let mut control = admin(&bed, "one", bed.control().name().as_str()).await;
    let active: bool = sqlx::query_scalar("SELECT is_active FROM app.accounts WHERE slug = 'acme'")
        .fetch_one(&mut control)
        .await
        .expect("row");
    assert!(!active, "still suspended");
}
