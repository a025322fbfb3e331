//! `rls-tenant move` copies from a snapshot while the tenant keeps writing: nothing waits
//! during the copy, the writes made meanwhile (inserts, updates, deletes, a cascade, a parent
//! and its child) are all in the new copy after the move, and the runtime role can neither
//! read, write nor call the change log that carries them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rls_tenancy::{LifecycleError, MoveProgress, ScratchServers, TenantPool, TenantScope, connect};
use sqlx::{Connection, PgConnection};
use tokio::sync::oneshot;

use super::moving::{add_project, pool, projects, two_tenants};
use super::{admin, footprint};

/// Holds the move right after its first table is copied (the snapshot taken, nothing
/// locked) until the test has written.
struct Gate {
    reached: Mutex<Option<oneshot::Sender<()>>>,
    go: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl MoveProgress for Gate {
    fn copied(&self, _table: &str, _rows: u64) {
        let reached = self.reached.lock().expect("gate").take();
        if let Some(reached) = reached {
            let _ = reached.send(());
            // Waits for the test's writes without holding up the runtime: block_in_place
            // hands this worker's other tasks to another thread.
            tokio::task::block_in_place(|| {
                let _ = self.go.lock().expect("gate").recv();
            });
        }
    }
}

/// `sql` (the tenant id as `$1`) in `scope`'s transaction; the rows it changed.
async fn write(pool: &TenantPool, scope: &TenantScope, sql: &'static str) -> Result<u64, String> {
    let mut tx = pool.begin(scope).await.map_err(|e| e.to_string())?;
    let done = sqlx::query(sql)
        .bind(scope.id().as_i64().expect("int id"))
        .execute(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    Ok(done.rows_affected())
}

/// Every row of tenant `id` in each tenant table, as text, in one digest per table.
async fn contents(conn: &mut PgConnection, id: i64) -> Vec<(i64, String)> {
    let mut tables = Vec::new();
    for table in ["users", "projects", "tasks", "subtasks"] {
        let row: (i64, String) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), ''))
               FROM app.{table} t WHERE account_id = $1"
        )))
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .expect("contents");
        tables.push(row);
    }
    tables
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_made_during_the_copy_land_in_the_new_copy_and_the_runtime_role_cannot_reach_the_log()
 {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let (tenants, acme, _) = two_tenants(&bed).await;
    let database = acme.database.clone().expect("database");
    let id = acme.id.as_i64().expect("int id");
    let pool = pool(&bed).await;
    let scope = acme.scope();

    let (reached, copying) = oneshot::channel();
    let (go, wait) = std::sync::mpsc::channel();
    let gate = Arc::new(Gate {
        reached: Mutex::new(Some(reached)),
        go: Mutex::new(wait),
    });
    let tenants = Arc::new(tenants);
    let moving = {
        let (tenants, gate, slug) = (Arc::clone(&tenants), Arc::clone(&gate), acme.slug.clone());
        tokio::spawn(async move {
            tenants
                .move_tenant(&slug, &"two".parse().expect("name"), &*gate)
                .await
        })
    };
    copying.await.expect("the copy began");

    // Nothing is locked during the copy: each write commits at once. (Tables locked for the
    // whole copy would make them wait for the move, which waits for them: the timeout turns
    // that into a failure instead of a hang.)
    let during = tokio::time::timeout(Duration::from_secs(60), async {
        add_project(&pool, &scope, "written during the copy").await?;
        let changed = [
            write(&pool, &scope, "UPDATE app.projects SET name = 'project 1, renamed' WHERE account_id = $1 AND name = 'project 1'").await?,
            write(&pool, &scope, "UPDATE app.users SET first_name = 'Renamed' WHERE account_id = $1 AND email = 'u1@example.com'").await?,
            write(&pool, &scope, "DELETE FROM app.subtasks WHERE account_id = $1 AND name = 'subtask 1'").await?,
            write(&pool, &scope, "DELETE FROM app.projects WHERE account_id = $1 AND name = 'project 3'").await?,
            write(&pool, &scope, "INSERT INTO app.tasks (account_id, project_id, name)
                SELECT $1, id, 'task during the copy' FROM app.projects WHERE account_id = $1 AND name = 'written during the copy'").await?,
            write(&pool, &scope, "INSERT INTO app.subtasks (account_id, task_id, name)
                SELECT $1, id, 'subtask during the copy' FROM app.tasks WHERE account_id = $1 AND name = 'task during the copy'").await?,
        ];
        Ok::<_, String>(changed)
    })
    .await;

    // The log holds the writes' keys; the runtime role cannot see, change or call it, nor
    // add to it outside the trigger.
    let mut su = admin(&bed, "one", &database).await;
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM rls_tenancy_move.changes")
        .fetch_one(&mut su)
        .await
        .expect("the change log");
    let runtime_url = bed
        .runtime_servers()
        .server(&"one".parse().expect("name"))
        .expect("server")
        .url()
        .with_database(&database);
    let mut runtime = connect(&runtime_url).await.expect("runtime connects");
    let mut refusals = Vec::new();
    for sql in [
        "SELECT count(*) FROM rls_tenancy_move.changes",
        "INSERT INTO rls_tenancy_move.changes VALUES (1, '{}')",
        "DELETE FROM rls_tenancy_move.changes",
        "SELECT rls_tenancy_move.note()",
        "DROP TRIGGER rls_tenancy_move ON app.projects",
        "ALTER TABLE app.projects DISABLE TRIGGER rls_tenancy_move",
        "SET session_replication_role = replica",
    ] {
        let err = sqlx::raw_sql(sql)
            .execute(&mut runtime)
            .await
            .expect_err(sql)
            .to_string();
        refusals.push((sql, err));
    }
    runtime.close().await.expect("close");
    // The source as the move must reproduce it, before the switch.
    let expected = contents(&mut su, id).await;
    su.close().await.expect("close");
    go.send(()).expect("the move waits at the gate");

    let changed = during
        .expect("writes during the copy do not wait for the move")
        .expect("writes during the copy");
    assert_eq!(changed, [1, 1, 1, 1, 1, 1], "each write found its row");
    assert!(logged >= 7, "every write logged: {logged}");
    for (sql, err) in &refusals {
        assert!(
            [
                "permission denied",
                "must be owner",
                "violates row-level security"
            ]
            .iter()
            .any(|refusal| err.contains(refusal)),
            "{sql}: {err}"
        );
    }
    let report = moving.await.expect("task").expect("moved");
    assert!(report.replayed >= 7, "{report}");
    assert!(
        report.to_string().contains("written during the copy"),
        "{report}"
    );

    let mut su = admin(&bed, "two", &database).await;
    assert_eq!(
        contents(&mut su, id).await,
        expected,
        "the new copy holds exactly the tenant's rows as the writes left them"
    );
    su.close().await.expect("close");
    assert_eq!(
        projects(&pool, &scope).await.expect("read on the new copy"),
        ["project 1, renamed", "project 2", "written during the copy"]
    );
    let after = add_project(&pool, &scope, "after the move")
        .await
        .expect("a write on the new copy");
    assert!(
        after > 5,
        "the identity continues after the copy's writes: {after}"
    );
    pool.close().await;
}

/// The session advisory lock a move holds in the tenant's database while its change log is
/// there (`MOVE_LOCK` in `src/lifecycle/changes.rs`).
const MOVE_LOCK: i64 = 0x726c_736d_6f76;

#[tokio::test]
async fn a_second_move_of_the_tenant_is_refused_and_leaves_the_first_ones_log_alone() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let (tenants, acme, _) = two_tenants(&bed).await;
    let database = acme.database.clone().expect("database");
    let before = footprint(&bed).await;

    // A first move, to a third server, in the middle of its copy: it holds the lock and its
    // log (the deploy role's, as a move's is) notes a write.
    let mut first = admin(&bed, "one", &database).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SELECT pg_advisory_lock({MOVE_LOCK});
         SET ROLE {};
         CREATE SCHEMA rls_tenancy_move;
         CREATE TABLE rls_tenancy_move.changes (relid oid NOT NULL, key jsonb NOT NULL);
         INSERT INTO rls_tenancy_move.changes VALUES ('app.projects'::regclass, '{{\"id\": 1}}');",
        bed.control().deploy_role()
    )))
    .execute(&mut first)
    .await
    .expect("the first move's lock and log");

    let err = tenants
        .move_tenant(&acme.slug, &"two".parse().expect("name"), &())
        .await
        .expect_err("refused while the first move runs");
    assert!(
        matches!(&err, LifecycleError::MoveUnderWay { slug } if slug == "acme"),
        "{err}"
    );
    assert!(!err.is_usage(), "exit 1: {err}");
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM rls_tenancy_move.changes")
        .fetch_one(&mut first)
        .await
        .expect("the first move's log is still there");
    assert_eq!(logged, 1, "the first move's log is untouched");
    assert_eq!(
        footprint(&bed).await,
        before,
        "the second move's clone is dropped"
    );

    // The first move ends (cut off: its log is left behind); the next move goes through.
    first.close().await.expect("close");
    tenants
        .move_tenant(&acme.slug, &"two".parse().expect("name"), &())
        .await
        .expect("moved once no other move runs");
}
