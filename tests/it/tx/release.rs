//! Nothing outlives a tenant transaction on a pooled connection: tenant A leaves session state
//! behind (a held cursor, LISTEN, a session SET, a hand-made prepared statement, a temporary
//! table, the tenant variable); the release check closes the connection with a warning naming
//! it, and tenant B's next transaction on the same one-connection pool gets a new connection
//! where none of it exists. A session advisory lock is released by the check instead: the
//! connection comes back without it.

use std::future::Future;
use std::task::Poll;
use std::time::{Duration, Instant};

use rls_tenancy::{
    DatabaseUrl, DbError, MigrateOptions, REFERENCE_MIGRATIONS, TenancyDeclaration, TenantPool,
    TenantPoolOptions, TenantTx, migrate_with,
};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};

use crate::logs::Warnings;
use crate::support::{TwoTenants, sqlstate};

/// A tenant pool of one connection over a plain pool (`from_pool`, which the application may
/// use itself), and that plain pool.
async fn one_connection(fixture: &TwoTenants) -> (TenantPool, PgPool) {
    let options = TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"));
    one_connection_with(fixture, options).await
}

async fn one_connection_with(
    fixture: &TwoTenants,
    options: TenantPoolOptions,
) -> (TenantPool, PgPool) {
    let raw = fixture.raw_runtime_pool(1).await;
    let pool = TenantPool::from_pool(raw.clone(), options)
        .await
        .expect("tenant pool");
    (pool, raw)
}

/// A one-connection pool whose role may create temporary tables: rls-migrate revokes TEMP
/// and the guard refuses it, so the guard is skipped; the release check must still hold.
async fn one_connection_with_temp(fixture: &TwoTenants) -> (TenantPool, PgPool) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "GRANT TEMP ON DATABASE \"{}\" TO \"{}\"",
        fixture.db.name().as_str(),
        fixture.db.runtime_role().as_str()
    )))
    .execute(&fixture.admin)
    .await
    .expect("grant temp");
    let options =
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration")).skip_guard();
    one_connection_with(fixture, options).await
}

async fn backend_pid(conn: &mut PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(conn)
        .await
        .expect("backend pid")
}

/// Tenant A runs `leave` (each a statement that succeeds) in its transaction and commits;
/// the release check must warn about `kind`. Returns tenant B's transaction on the same
/// one-connection pool, asserted to be on another backend.
async fn after_a_leaves(
    fixture: &TwoTenants,
    pool: &TenantPool,
    leave: &[&str],
    kind: &str,
) -> TenantTx {
    let warnings = Warnings::capture();
    let mut tx = pool.begin(&fixture.a.scope).await.expect("tenant A");
    let a_pid = backend_pid(&mut tx).await;
    for statement in leave {
        sqlx::raw_sql(sqlx::AssertSqlSafe(*statement))
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("tenant A's {statement:?} failed: {e}"));
    }
    tx.commit().await.expect("commit of tenant A");
    assert_eq!(
        warnings.count(kind),
        1,
        "the release check did not name {kind:?}: {}",
        warnings.text()
    );
    let mut tx = pool.begin(&fixture.b.scope).await.expect("tenant B");
    assert_ne!(
        backend_pid(&mut tx).await,
        a_pid,
        "the connection tenant A left {kind} on came back to the pool"
    );
    tx
}

/// How tenant B's transaction looks for what tenant A left: a statement refused with a
/// SQLSTATE (the object is gone), or a query answering whether any of it is still there.
enum Probe {
    Refused(&'static str, &'static str),
    Remains(&'static str),
}

/// One kind of session state: what tenant A runs, what the release check must name, how
/// tenant B looks for it, and whether A's role needs TEMP (a pool with the guard skipped).
struct Leak {
    leave: &'static [&'static str],
    kind: &'static str,
    probe: Probe,
    temp: bool,
}

const LEAKS: [Leak; 7] = [
    Leak {
        leave: &["DECLARE leak CURSOR WITH HOLD FOR SELECT email FROM app.users"],
        kind: "held cursors: leak",
        probe: Probe::Refused("FETCH ALL FROM leak", "34000"),
        temp: false,
    },
    Leak {
        leave: &["LISTEN tenant_a_events"],
        kind: "LISTEN channels: tenant_a_events",
        probe: Probe::Remains("SELECT count(*) > 0 FROM pg_listening_channels()"),
        temp: false,
    },
    Leak {
        leave: &[
            "SET search_path = pg_catalog",
            "SET statement_timeout = '1h'",
            "SET work_mem = '1GB'",
        ],
        kind: "session settings: search_path, statement_timeout, work_mem",
        probe: Probe::Remains(
            "SELECT current_setting('search_path') = 'pg_catalog' OR current_setting('work_mem') = '1GB'",
        ),
        temp: false,
    },
    Leak {
        leave: &[
            "SELECT set_config('lock_timeout', '1min', false)",
            "SET default_transaction_read_only = on",
        ],
        kind: "session settings: lock_timeout, default_transaction_read_only",
        probe: Probe::Remains("SELECT current_setting('default_transaction_read_only') = 'on'"),
        temp: false,
    },
    Leak {
        leave: &[
            "SET ROLE NONE",
            "SELECT set_config('role', current_user, false)",
        ],
        kind: "session settings: role",
        probe: Probe::Remains("SELECT current_setting('role') <> 'none'"),
        temp: false,
    },
    Leak {
        leave: &["PREPARE leak AS SELECT email FROM app.users"],
        kind: "prepared statements: leak",
        probe: Probe::Refused("EXECUTE leak", "26000"),
        temp: false,
    },
    Leak {
        leave: &["CREATE TEMP TABLE stash AS SELECT email FROM app.users"],
        kind: "temporary tables: stash",
        probe: Probe::Refused("SELECT email FROM pg_temp.stash", "42P01"),
        temp: true,
    },
];

/// Every kind of session state tenant A can leave closes its connection, and tenant B, on a
/// new connection of the same one-connection pool, finds none of it.
#[tokio::test]
async fn no_session_state_of_tenant_a_reaches_tenant_b() {
    let fixture = TwoTenants::new().await;
    let (pool, _raw) = one_connection(&fixture).await;
    // The cursor holds tenant A's email: the rows to leak are really there.
    let mut tx = pool.begin(&fixture.a.scope).await.expect("tenant A");
    sqlx::raw_sql("DECLARE peek CURSOR FOR SELECT email FROM app.users")
        .execute(&mut *tx)
        .await
        .expect("declare");
    let held: Vec<String> = sqlx::query_scalar("FETCH ALL FROM peek")
        .fetch_all(&mut *tx)
        .await
        .expect("fetch");
    assert_eq!(held, ["owner@tenant-a.test"]);
    tx.rollback().await.expect("rollback");
    // Opened after the guarded pool: the grant of TEMP would make the guard refuse.
    let (temp_pool, _temp_raw) = one_connection_with_temp(&fixture).await;

    for leak in &LEAKS {
        let pool = if leak.temp { &temp_pool } else { &pool };
        let mut tx = after_a_leaves(&fixture, pool, leak.leave, leak.kind).await;
        match leak.probe {
            Probe::Refused(sql, code) => {
                let found = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *tx)
                    .await;
                assert_eq!(
                    sqlstate(&found).as_deref(),
                    Some(code),
                    "tenant B found {}: {found:?}",
                    leak.kind
                );
            }
            Probe::Remains(sql) => {
                let remains: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(&mut *tx)
                    .await
                    .expect("probe");
                assert!(!remains, "tenant B inherited {}", leak.kind);
            }
        }
        tx.rollback().await.expect("rollback of tenant B");
    }
}

/// A session advisory lock tenant A takes (exclusive, shared, tried) is released with its
/// transaction: the release check releases the session's advisory locks instead of looking
/// for them. The connection comes back clean and is reused without a warning, tenant B on it
/// holds no advisory lock, and another session takes the lock A took.
#[tokio::test]
async fn a_session_advisory_lock_is_released_with_the_transaction_that_took_it() {
    let fixture = TwoTenants::new().await;
    let (pool, _raw) = one_connection(&fixture).await;
    let warnings = Warnings::capture();
    let mut tx = pool.begin(&fixture.a.scope).await.expect("tenant A");
    let a_pid = backend_pid(&mut tx).await;
    let taken: bool = sqlx::query_scalar(
        "SELECT pg_advisory_lock(4242) IS NOT NULL AND pg_try_advisory_lock(4243)
                AND pg_try_advisory_lock_shared(4244)",
    )
    .fetch_one(&mut *tx)
    .await
    .expect("tenant A's session advisory locks");
    assert!(taken, "tenant A could not take its advisory locks");
    tx.commit().await.expect("commit of tenant A");

    let other: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(4242)")
        .fetch_one(&fixture.admin)
        .await
        .expect("another session's try");
    assert!(
        other,
        "tenant A's session advisory lock outlived its transaction"
    );
    let mut tx = pool.begin(&fixture.b.scope).await.expect("tenant B");
    assert_eq!(
        backend_pid(&mut tx).await,
        a_pid,
        "a connection whose only state was released came back closed: {}",
        warnings.text()
    );
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'",
    )
    .fetch_one(&mut *tx)
    .await
    .expect("tenant B's advisory locks");
    assert_eq!(
        held, 0,
        "tenant B's connection still holds tenant A's advisory locks"
    );
    tx.rollback().await.expect("rollback of tenant B");
    assert_eq!(warnings.text(), "", "a released lock was warned about");
}

/// Behind a transaction-mode pooler (`?pgbouncer=true`) the settings the pooler itself sets
/// on its server connections (`application_name`, `TimeZone`, ...) are the pooler's: a
/// transaction changing them at session level leaves the connection in the pool, while the
/// other watched settings are still checked.
#[tokio::test]
async fn behind_a_pooler_its_own_settings_are_left_alone_and_the_others_still_checked() {
    let fixture = TwoTenants::new().await;
    let raw = fixture.db.runtime_url().expose_secret();
    let separator = if raw.contains('?') { '&' } else { '?' };
    let url: DatabaseUrl = format!("{raw}{separator}pgbouncer=true")
        .parse()
        .expect("pooler url");
    let pool = TenantPool::connect(
        &url,
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"))
            .max_connections(1),
    )
    .await
    .expect("tenant pool behind a pooler");
    let warnings = Warnings::capture();
    let mut tx = pool.begin(&fixture.a.scope).await.expect("tenant A");
    let a_pid = backend_pid(&mut tx).await;
    sqlx::raw_sql("SET application_name = 'set by the pooler'; SET TimeZone = 'Asia/Tokyo'")
        .execute(&mut *tx)
        .await
        .expect("the pooler's settings");
    tx.commit().await.expect("commit of tenant A");
    let mut tx = pool.begin(&fixture.b.scope).await.expect("tenant B");
    assert_eq!(
        backend_pid(&mut tx).await,
        a_pid,
        "the pooler's own settings closed the connection: {}",
        warnings.text()
    );
    tx.rollback().await.expect("rollback of tenant B");
    assert_eq!(
        warnings.text(),
        "",
        "the pooler's own settings were warned about"
    );
    after_a_leaves(
        &fixture,
        &pool,
        &["SET work_mem = '1GB'"],
        "session settings: work_mem",
    )
    .await
    .rollback()
    .await
    .expect("rollback of tenant B");
}

/// A database without the release check of this version (migrated before it existed, by an
/// older rls-migrate, or with the runtime role's grant taken back) is refused when the pool
/// opens, with a message telling to run rls-migrate; after rls-migrate runs again the pool
/// opens and its check closes a connection that carries state, as before.
#[tokio::test]
async fn a_pool_refuses_a_database_without_the_release_check_until_rls_migrate_runs() {
    let fixture = TwoTenants::signed().await;
    let function = "rls_tenancy.release_check(text, text, boolean, text)";
    let runtime = fixture.db.runtime_role().as_str().to_owned();
    let damages = [
        (
            format!("DROP FUNCTION {function}"),
            "the database has no release check",
        ),
        (
            format!("COMMENT ON FUNCTION {function} IS 'rls-tenancy release check 0'"),
            "the database's release check is \"rls-tenancy release check 0\"",
        ),
        (
            format!("REVOKE EXECUTE ON FUNCTION {function} FROM \"{runtime}\""),
            "the pool's role may not call rls_tenancy.release_check",
        ),
        (
            format!(
                "REVOKE EXECUTE ON FUNCTION rls_tenancy.release_settings(text, boolean) FROM \"{runtime}\""
            ),
            "the pool's role may not call rls_tenancy.release_check or the settings functions",
        ),
    ];
    let options = MigrateOptions::new(fixture.db.deploy_url().clone(), &runtime)
        .expect("migrate options")
        .tenant_key(fixture.db.tenant_key().expect("signed").clone());
    let declaration = TenancyDeclaration::reference().expect("declaration");
    for (damage, said) in damages {
        sqlx::raw_sql(sqlx::AssertSqlSafe(damage.clone()))
            .execute(&fixture.admin)
            .await
            .expect("damage");
        let opened =
            TenantPool::from_pool(fixture.raw_runtime_pool(1).await, fixture.pool_options()).await;
        match opened {
            Err(DbError::ReleaseCheck { reason }) => {
                assert!(reason.contains(said), "after {damage}: {reason}");
                assert!(
                    reason.contains("run rls-migrate"),
                    "after {damage}: {reason}"
                );
            }
            other => panic!("after {damage} the pool was not refused: {other:?}"),
        }
        migrate_with(&REFERENCE_MIGRATIONS, &declaration, &options)
            .await
            .expect("rls-migrate");
        let pool = TenantPool::from_pool(fixture.raw_runtime_pool(1).await, fixture.pool_options())
            .await
            .expect("the pool opens after rls-migrate");
        after_a_leaves(
            &fixture,
            &pool,
            &["DECLARE leak CURSOR WITH HOLD FOR SELECT email FROM app.users"],
            "held cursors: leak",
        )
        .await
        .rollback()
        .await
        .expect("rollback of tenant B");
    }
}

#[tokio::test]
async fn a_tenant_variable_set_for_the_session_never_reaches_tenant_b_or_the_plain_pool() {
    let fixture = TwoTenants::new().await;
    let (pool, raw) = one_connection(&fixture).await;
    let set = format!(
        "SELECT set_config('app.tenant_id', '{}', false)",
        fixture.a.scope.id()
    );
    let tx = after_a_leaves(&fixture, &pool, &[&set], "the tenant variable").await;
    tx.rollback().await.expect("rollback");
    // The application's own use of the plain pool sees no tenant, so none of A's rows.
    let mut conn = raw.acquire().await.expect("plain connection");
    let emails: Vec<String> = sqlx::query_scalar("SELECT email FROM app.users")
        .fetch_all(&mut *conn)
        .await
        .expect("plain read");
    assert!(emails.is_empty(), "the plain pool saw {emails:?}");
}

#[tokio::test]
async fn a_clean_connection_is_reused_after_state_that_ends_with_the_transaction() {
    let fixture = TwoTenants::new().await;
    let (pool, _raw) = one_connection_with_temp(&fixture).await;
    let warnings = Warnings::capture();
    let mut tx = pool.begin(&fixture.a.scope).await.expect("tenant A");
    let a_pid = backend_pid(&mut tx).await;
    // Transaction-scoped state of every kind: none of it outlives COMMIT.
    sqlx::raw_sql(
        "DECLARE c CURSOR FOR SELECT email FROM app.users;
         SELECT pg_advisory_xact_lock(4242);
         SET LOCAL search_path = pg_catalog;
         SET LOCAL work_mem = '1GB';
         CREATE TEMP TABLE scratch (v int) ON COMMIT DROP;",
    )
    .execute(&mut *tx)
    .await
    .expect("transaction-scoped state");
    tx.commit().await.expect("commit");
    let mut tx = pool.begin(&fixture.b.scope).await.expect("tenant B");
    assert_eq!(
        backend_pid(&mut tx).await,
        a_pid,
        "a clean connection was closed: {}",
        warnings.text()
    );
    tx.rollback().await.expect("rollback");
    assert_eq!(warnings.text(), "", "a clean transaction was warned about");
}

#[tokio::test]
async fn a_connection_from_connect_is_checked_too() {
    let fixture = TwoTenants::new().await;
    let pool = TenantPool::connect(
        fixture.db.runtime_url(),
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"))
            .max_connections(1),
    )
    .await
    .expect("tenant pool");
    let mut tx = after_a_leaves(
        &fixture,
        &pool,
        &["DECLARE leak CURSOR WITH HOLD FOR SELECT email FROM app.users"],
        "held cursors: leak",
    )
    .await;
    let fetched = sqlx::query_scalar::<_, String>("FETCH ALL FROM leak")
        .fetch_all(&mut *tx)
        .await;
    assert_eq!(sqlstate(&fetched).as_deref(), Some("34000"), "{fetched:?}");
}

#[tokio::test]
async fn a_nested_begin_is_a_savepoint() {
    let fixture = TwoTenants::new().await;
    let (pool, _raw) = one_connection(&fixture).await;
    let account = fixture.a.scope.id().as_i64().expect("bigint id");
    let insert = "INSERT INTO app.projects (account_id, name) VALUES ($1, $2)";
    let mut tx = pool.begin(&fixture.a.scope).await.expect("tenant A");
    {
        let mut savepoint = Connection::begin(&mut *tx).await.expect("savepoint");
        sqlx::query(insert)
            .bind(account)
            .bind("rolled back")
            .execute(&mut *savepoint)
            .await
            .expect("insert in savepoint");
        savepoint.rollback().await.expect("rollback to savepoint");
    }
    {
        let mut savepoint = Connection::begin(&mut *tx).await.expect("savepoint");
        sqlx::query(insert)
            .bind(account)
            .bind("released")
            .execute(&mut *savepoint)
            .await
            .expect("insert in savepoint");
        savepoint.commit().await.expect("release savepoint");
    }
    // Still tenant A's transaction: the savepoint did not end it.
    let tenant: String = sqlx::query_scalar("SELECT current_setting('app.tenant_id')")
        .fetch_one(&mut *tx)
        .await
        .expect("tenant");
    assert_eq!(tenant, fixture.a.scope.id().to_string());
    let names = |pool: &PgPool| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT name FROM app.projects WHERE name IN ('rolled back', 'released') ORDER BY name",
            )
            .fetch_all(&pool)
            .await
            .expect("names")
        }
    };
    assert!(
        names(&fixture.admin).await.is_empty(),
        "releasing the savepoint committed the tenant transaction"
    );
    tx.commit().await.expect("commit");
    assert_eq!(names(&fixture.admin).await, ["released"]);
    // And the connection is clean and reused: the transaction depth came back to zero.
    let mut tx = pool.begin(&fixture.b.scope).await.expect("tenant B");
    let plain = Connection::begin(&mut *tx).await.expect("savepoint in B");
    plain.rollback().await.expect("rollback to savepoint");
    tx.commit().await.expect("commit of tenant B");
}

#[tokio::test]
async fn a_begin_dropped_before_its_answer_is_closed_quietly() {
    let fixture = TwoTenants::new().await;
    // One connection, handed out without a ping: the first poll of `begin` sends the BEGIN.
    let raw = PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect_with(fixture.db.runtime_url().connect_options().expect("options"))
        .await
        .expect("runtime pool");
    let pool = TenantPool::from_pool(
        raw.clone(),
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration")),
    )
    .await
    .expect("tenant pool");
    let warnings = Warnings::capture();
    let mut tx = pool.begin(&fixture.a.scope).await.expect("tenant A");
    let first = backend_pid(&mut tx).await;
    tx.commit().await.expect("commit");
    // A client gone mid-BEGIN: `begin` is polled once (it sends the BEGIN) and is dropped
    // once the server ran it (its backend idle in the transaction, the answer unread). On a
    // busy machine the answer may already be there within that one poll: then this attempt
    // proves nothing, is rolled back, and another is made.
    let deadline = Instant::now() + Duration::from_secs(60);
    let begin = loop {
        while raw.num_idle() != 1 {
            assert!(Instant::now() < deadline, "the connection never came back");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut begin = Box::pin(pool.begin(&fixture.a.scope));
        match std::future::poll_fn(|cx| Poll::Ready(begin.as_mut().poll(cx))).await {
            Poll::Pending => break begin,
            Poll::Ready(answered) => answered
                .expect("tenant A")
                .rollback()
                .await
                .expect("rollback"),
        }
        assert!(
            Instant::now() < deadline,
            "BEGIN was never caught in flight"
        );
    };
    loop {
        let begun: bool = sqlx::query_scalar(
            "SELECT count(*) = 1 FROM pg_stat_activity
             WHERE pid = $1 AND state = 'idle in transaction' AND query LIKE 'BEGIN%set_config%'",
        )
        .bind(first)
        .fetch_one(&fixture.admin)
        .await
        .expect("backend state");
        if begun {
            break;
        }
        assert!(Instant::now() < deadline, "BEGIN never reached the server");
    }
    drop(begin);
    // The one connection was closed, not handed back inside tenant A's transaction.
    let mut conn = raw.acquire().await.expect("plain connection");
    let (pid, tenant): (i32, Option<String>) =
        sqlx::query_as("SELECT pg_backend_pid(), current_setting('app.tenant_id', true)")
            .fetch_one(&mut *conn)
            .await
            .expect("plain read");
    assert_ne!(pid, first, "the connection of a cancelled BEGIN was reused");
    assert_eq!(tenant, None, "a fresh connection has no tenant variable");
    assert_eq!(
        warnings.text(),
        "",
        "a cancelled BEGIN was logged as a fault"
    );
}
