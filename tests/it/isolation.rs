//! The database wall: every tenant table × select / insert / update / delete ×
//! {own tenant, other tenant, no tenant}, on fresh and on reused connections.

use rls_tenancy::TenancyDeclaration;
use rls_tenancy::TenantPool;
use sqlx::{Connection, PgConnection};

use crate::support::{TENANT_TABLES, TenantRows, TwoTenants, sqlstate};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Select,
    Insert,
    Update,
    Delete,
}

pub const OPS: [Op; 4] = [Op::Select, Op::Insert, Op::Update, Op::Delete];

/// Who acts: the tenant whose row is targeted, another tenant, or nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Own,
    Other,
    NoTenant,
}

/// What a statement did: the rows it saw or touched, or the SQLSTATE it failed with.
#[derive(Debug)]
enum Outcome {
    Rows(Vec<(i64, i64)>),
    Affected(u64),
    Refused(Option<String>),
}

/// Runs `op` on `table` aimed at `target`'s row (or inserting a row for `target`).
async fn attempt(conn: &mut PgConnection, table: &str, op: Op, target: &TenantRows) -> Outcome {
    let account = target.scope.id().as_i64().expect("bigint id");
    let id = target.id(table);
    let result: Result<Outcome, sqlx::Error> = match op {
        Op::Select => {
            let sql = match table {
                "users" => "SELECT id, account_id FROM app.users",
                "projects" => "SELECT id, account_id FROM app.projects",
                "tasks" => "SELECT id, account_id FROM app.tasks",
                _ => "SELECT id, account_id FROM app.subtasks",
            };
            sqlx::query_as(sql)
                .fetch_all(&mut *conn)
                .await
                .map(Outcome::Rows)
        }
        Op::Insert => {
            let (sql, parent) = match table {
                "users" => (
                    "INSERT INTO app.users (account_id, email, first_name, last_name, password)
                     VALUES ($1, 'new@example.test', 'New', 'User', 'x') RETURNING $2::bigint",
                    0,
                ),
                "projects" => (
                    "INSERT INTO app.projects (account_id, name) VALUES ($1, 'new') RETURNING $2::bigint",
                    0,
                ),
                "tasks" => (
                    "INSERT INTO app.tasks (account_id, project_id, name) VALUES ($1, $2, 'new') RETURNING $2",
                    target.project,
                ),
                _ => (
                    "INSERT INTO app.subtasks (account_id, task_id, name) VALUES ($1, $2, 'new') RETURNING $2",
                    target.task,
                ),
            };
            sqlx::query(sql)
                .bind(account)
                .bind(parent)
                .execute(&mut *conn)
                .await
                .map(|r| Outcome::Affected(r.rows_affected()))
        }
        Op::Update => {
            let sql = match table {
                "users" => {
                    "UPDATE app.users SET first_name = 'changed' WHERE account_id = $1 AND id = $2"
                }
                "projects" => {
                    "UPDATE app.projects SET name = 'changed' WHERE account_id = $1 AND id = $2"
                }
                "tasks" => {
                    "UPDATE app.tasks SET name = 'changed' WHERE account_id = $1 AND id = $2"
                }
                _ => "UPDATE app.subtasks SET name = 'changed' WHERE account_id = $1 AND id = $2",
            };
            sqlx::query(sql)
                .bind(account)
                .bind(id)
                .execute(&mut *conn)
                .await
                .map(|r| Outcome::Affected(r.rows_affected()))
        }
        Op::Delete => {
            let sql = match table {
                "users" => "DELETE FROM app.users WHERE account_id = $1 AND id = $2",
                "projects" => "DELETE FROM app.projects WHERE account_id = $1 AND id = $2",
                "tasks" => "DELETE FROM app.tasks WHERE account_id = $1 AND id = $2",
                _ => "DELETE FROM app.subtasks WHERE account_id = $1 AND id = $2",
            };
            sqlx::query(sql)
                .bind(account)
                .bind(id)
                .execute(&mut *conn)
                .await
                .map(|r| Outcome::Affected(r.rows_affected()))
        }
    };
    match result {
        Ok(outcome) => outcome,
        Err(e) => Outcome::Refused(sqlstate::<()>(&Err(e))),
    }
}

/// Asserts what the wall must allow `actor` (acting as `me`, or as nobody) to do.
fn assert_wall(
    table: &str,
    op: Op,
    actor: Actor,
    me: &TenantRows,
    target: &TenantRows,
    outcome: &Outcome,
) {
    let case = format!("{table} {op:?} by {actor:?}: {outcome:?}");
    let me_id = me.scope.id().as_i64().expect("bigint id");
    match (op, actor, outcome) {
        (Op::Select, Actor::NoTenant, Outcome::Rows(rows)) => assert!(rows.is_empty(), "{case}"),
        (Op::Select, Actor::Own, Outcome::Rows(rows)) => {
            assert!(
                rows.contains(&(target.id(table), me_id)),
                "own row missing: {case}"
            );
            assert!(
                rows.iter().all(|(_, acc)| *acc == me_id),
                "foreign row visible: {case}"
            );
        }
        (Op::Select, Actor::Other, Outcome::Rows(rows)) => {
            assert!(
                rows.iter().all(|(_, acc)| *acc == me_id),
                "foreign row visible: {case}"
            );
            assert!(
                !rows.iter().any(|(id, _)| *id == target.id(table)),
                "{case}"
            );
        }
        (Op::Insert, Actor::Own, Outcome::Affected(1)) => {}
        (Op::Insert, Actor::Other | Actor::NoTenant, Outcome::Refused(code)) => {
            assert_eq!(code.as_deref(), Some("42501"), "{case}");
        }
        (Op::Update | Op::Delete, Actor::Own, Outcome::Affected(1)) => {}
        (Op::Update | Op::Delete, Actor::Other | Actor::NoTenant, Outcome::Affected(0)) => {}
        _ => panic!("the wall let this through or refused it wrongly: {case}"),
    }
}

/// Runs one case inside a transaction that is rolled back, so the fixture never changes.
async fn run_case(
    pool: &TenantPool,
    raw: &sqlx::PgPool,
    fixture: &TwoTenants,
    table: &str,
    op: Op,
    actor: Actor,
    me: &TenantRows,
) -> i32 {
    let other = if me.scope == fixture.a.scope {
        &fixture.b
    } else {
        &fixture.a
    };
    let target = if actor == Actor::Other { other } else { me };
    if actor == Actor::NoTenant {
        let mut conn = raw.acquire().await.expect("connection");
        let mut tx = conn.begin().await.expect("begin");
        let outcome = attempt(&mut tx, table, op, target).await;
        let pid = backend_pid(&mut tx).await;
        tx.rollback().await.expect("rollback");
        assert_wall(table, op, actor, me, target, &outcome);
        pid
    } else {
        let mut tx = pool.begin(&me.scope).await.expect("tenant transaction");
        let outcome = attempt(&mut tx, table, op, target).await;
        let pid = backend_pid(&mut tx).await;
        tx.rollback().await.expect("rollback");
        assert_wall(table, op, actor, me, target, &outcome);
        pid
    }
}

async fn backend_pid(conn: &mut PgConnection) -> i32 {
    // An aborted transaction refuses further statements; the pid is then not needed.
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *conn)
        .await
        .unwrap_or(-1)
}

/// After every case, the fixture rows are all still there, unchanged.
async fn assert_fixture_intact(fixture: &TwoTenants) {
    for rows in [&fixture.a, &fixture.b] {
        for table in TENANT_TABLES {
            let sql = match table {
                "users" => "SELECT first_name FROM app.users WHERE id = $1",
                "projects" => "SELECT name FROM app.projects WHERE id = $1",
                "tasks" => "SELECT name FROM app.tasks WHERE id = $1",
                _ => "SELECT name FROM app.subtasks WHERE id = $1",
            };
            let value: Option<String> = sqlx::query_scalar(sql)
                .bind(rows.id(table))
                .fetch_optional(&fixture.admin)
                .await
                .expect("admin read");
            assert!(
                value.is_some_and(|v| v != "changed"),
                "{table} row of {} was touched",
                rows.scope.slug()
            );
        }
    }
}

#[tokio::test]
async fn every_table_and_command_is_walled_on_fresh_connections() {
    walled_on_fresh_connections(TwoTenants::new().await).await;
}

#[tokio::test]
async fn every_table_and_command_is_walled_on_fresh_connections_with_the_signed_context() {
    walled_on_fresh_connections(TwoTenants::signed().await).await;
}

async fn walled_on_fresh_connections(fixture: TwoTenants) {
    for table in TENANT_TABLES {
        for op in OPS {
            for actor in [Actor::Own, Actor::Other, Actor::NoTenant] {
                // A new pool per case: the connection has never had the variable set (NULL).
                let raw = fixture.raw_runtime_pool(1).await;
                let pool = fixture.runtime_pool(1).await;
                run_case(&pool, &raw, &fixture, table, op, actor, &fixture.a).await;
                raw.close().await;
                pool.close().await;
            }
        }
    }
    assert_fixture_intact(&fixture).await;
}

#[tokio::test]
async fn every_table_and_command_is_walled_on_one_reused_connection() {
    walled_on_one_reused_connection(TwoTenants::new().await).await;
}

#[tokio::test]
async fn every_table_and_command_is_walled_on_one_reused_connection_with_the_signed_context() {
    walled_on_one_reused_connection(TwoTenants::signed().await).await;
}

async fn walled_on_one_reused_connection(fixture: TwoTenants) {
    // One connection shared by the tenant pool and the plain pool: A, B, no tenant, A.
    let raw = fixture.raw_runtime_pool(1).await;
    let pool = rls_tenancy::TenantPool::from_pool(raw.clone(), fixture.pool_options())
        .await
        .expect("tenant pool");
    let mut pids = Vec::new();
    for table in TENANT_TABLES {
        for op in OPS {
            for (actor, me) in [
                (Actor::Own, &fixture.a),
                (Actor::Other, &fixture.b),
                (Actor::NoTenant, &fixture.a),
                (Actor::Own, &fixture.a),
                (Actor::Other, &fixture.a),
                (Actor::NoTenant, &fixture.b),
            ] {
                pids.push(run_case(&pool, &raw, &fixture, table, op, actor, me).await);
            }
        }
    }
    let live: Vec<i32> = pids.iter().copied().filter(|p| *p > 0).collect();
    assert!(
        live.windows(2).all(|w| w[0] == w[1]),
        "cases did not share one connection: {live:?}"
    );
    assert_fixture_intact(&fixture).await;
}

#[tokio::test]
async fn a_connection_back_in_the_pool_carries_no_tenant() {
    let fixture = TwoTenants::new().await;
    let raw = fixture.raw_runtime_pool(1).await;
    let pool = rls_tenancy::TenantPool::from_pool(
        raw.clone(),
        rls_tenancy::TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration")),
    )
    .await
    .expect("tenant pool");

    let mut fresh = raw.acquire().await.expect("connection");
    let before: Option<String> =
        sqlx::query_scalar("SELECT current_setting('app.tenant_id', true)")
            .fetch_one(&mut *fresh)
            .await
            .expect("setting");
    assert_eq!(
        before, None,
        "a fresh connection must have no tenant variable at all"
    );
    drop(fresh);

    let mut tx = pool
        .begin(&fixture.a.scope)
        .await
        .expect("tenant transaction");
    let inside: Option<String> =
        sqlx::query_scalar("SELECT current_setting('app.tenant_id', true)")
            .fetch_one(&mut *tx)
            .await
            .expect("setting");
    assert_eq!(inside, Some(fixture.a.scope.id().to_string()));
    tx.commit().await.expect("commit");

    let mut reused = raw.acquire().await.expect("connection");
    let after: Option<String> = sqlx::query_scalar("SELECT current_setting('app.tenant_id', true)")
        .fetch_one(&mut *reused)
        .await
        .expect("setting");
    assert_eq!(
        after.as_deref(),
        Some(""),
        "the variable must revert when the transaction ends"
    );
    let visible: i64 = sqlx::query_scalar("SELECT count(*) FROM app.projects")
        .fetch_one(&mut *reused)
        .await
        .expect("count");
    assert_eq!(
        visible, 0,
        "a reused connection outside a tenant transaction sees nothing"
    );
}

#[tokio::test]
async fn a_dropped_tenant_transaction_rolls_back_and_forgets_the_tenant() {
    let fixture = TwoTenants::new().await;
    let raw = fixture.raw_runtime_pool(1).await;
    let pool = rls_tenancy::TenantPool::from_pool(
        raw.clone(),
        rls_tenancy::TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration")),
    )
    .await
    .expect("tenant pool");
    {
        let mut tx = pool
            .begin(&fixture.a.scope)
            .await
            .expect("tenant transaction");
        sqlx::query("INSERT INTO app.projects (account_id, name) VALUES ($1, 'dropped')")
            .bind(fixture.a.scope.id().as_i64().expect("bigint id"))
            .execute(&mut *tx)
            .await
            .expect("insert");
    }
    let mut conn = raw.acquire().await.expect("connection");
    let setting: Option<String> =
        sqlx::query_scalar("SELECT current_setting('app.tenant_id', true)")
            .fetch_one(&mut *conn)
            .await
            .expect("setting");
    // The dropped transaction's connection was closed: this is a new one, which has never
    // had the variable (NULL), so no tenant at all, tenant a's or any other.
    assert_eq!(
        setting, None,
        "the connection after a dropped transaction has a tenant"
    );
    let kept: i64 = sqlx::query_scalar("SELECT count(*) FROM app.projects WHERE name = 'dropped'")
        .fetch_one(&fixture.admin)
        .await
        .expect("count");
    assert_eq!(kept, 0, "dropping a tenant transaction must roll it back");
}

#[tokio::test]
async fn junk_tenant_values_never_show_another_tenants_rows() {
    let fixture = TwoTenants::new().await;
    let raw = fixture.raw_runtime_pool(1).await;
    let huge = "9".repeat(40);
    let a_and_b = format!("{},{}", fixture.a.scope.id(), fixture.b.scope.id());
    let own = fixture.a.scope.id().to_string();
    // Each value and what the policy must make of it: no rows, or refused with the SQLSTATE
    // of a value that is not a bigint. Non-decimal spellings (`0x1`, `0o1`, `1_0`) are not
    // here: PostgreSQL 16+ reads them as integers, so they name a tenant like its decimal id
    // would; the library only ever writes a `TenantId` in canonical decimal.
    let cases: [(&str, Result<i64, &str>); 12] = [
        ("", Ok(0)),
        ("0", Ok(0)),
        ("-1", Ok(0)),
        (" ", Err("22P02")),
        ("1 OR 1=1", Err("22P02")),
        ("NULL", Err("22P02")),
        ("abc", Err("22P02")),
        (&a_and_b, Err("22P02")),
        ("1e3", Err("22P02")),
        ("0x", Err("22P02")),
        (&huge, Err("22003")),
        // The control: the same query with a real tenant id sees that tenant's row, so the
        // cases above are not passing because every query fails or sees nothing.
        (&own, Ok(1)),
    ];
    for (value, expected) in cases {
        for table in TENANT_TABLES {
            let mut conn = raw.acquire().await.expect("connection");
            let mut tx = conn.begin().await.expect("begin");
            sqlx::query("SELECT set_config('app.tenant_id', $1, true)")
                .bind(value)
                .execute(&mut *tx)
                .await
                .expect("set_config");
            let sql = match table {
                "users" => "SELECT count(*) FROM app.users",
                "projects" => "SELECT count(*) FROM app.projects",
                "tasks" => "SELECT count(*) FROM app.tasks",
                _ => "SELECT count(*) FROM app.subtasks",
            };
            let seen: Result<i64, sqlx::Error> = sqlx::query_scalar(sql).fetch_one(&mut *tx).await;
            match expected {
                Ok(n) => assert_eq!(
                    seen.as_ref().ok(),
                    Some(&n),
                    "{table} with tenant value {value:?}: {seen:?}"
                ),
                Err(code) => assert_eq!(
                    sqlstate(&seen).as_deref(),
                    Some(code),
                    "{table} with tenant value {value:?}: {seen:?}"
                ),
            }
        }
    }
}

#[tokio::test]
async fn a_child_cannot_reference_another_tenants_parent_and_the_error_reveals_nothing() {
    let fixture = TwoTenants::new().await;
    let pool = fixture.runtime_pool(1).await;
    let missing_parent = fixture.a.project.max(fixture.b.project) + 1000;
    let mut errors = Vec::new();
    for project in [fixture.b.project, missing_parent] {
        let mut tx = pool
            .begin(&fixture.a.scope)
            .await
            .expect("tenant transaction");
        let result = sqlx::query(
            "INSERT INTO app.tasks (account_id, project_id, name) VALUES ($1, $2, 'x')",
        )
        .bind(fixture.a.scope.id().as_i64().expect("bigint id"))
        .bind(project)
        .execute(&mut *tx)
        .await;
        let Err(sqlx::Error::Database(e)) = result else {
            panic!("a task pointing at project {project} of another tenant was accepted");
        };
        errors.push((e.code().map(|c| c.into_owned()), e.message().to_owned()));
    }
    assert_eq!(errors[0].0.as_deref(), Some("23503"), "{errors:?}");
    assert_eq!(
        errors[0], errors[1],
        "another tenant's parent must look exactly like a missing one"
    );

    let mut tx = pool
        .begin(&fixture.a.scope)
        .await
        .expect("tenant transaction");
    let result =
        sqlx::query("INSERT INTO app.subtasks (account_id, task_id, name) VALUES ($1, $2, 'x')")
            .bind(fixture.a.scope.id().as_i64().expect("bigint id"))
            .bind(fixture.b.task)
            .execute(&mut *tx)
            .await;
    assert_eq!(
        sqlstate(&result).as_deref(),
        Some("23503"),
        "subtask into another tenant's task"
    );
}

#[tokio::test]
async fn the_same_email_may_exist_in_two_tenants() {
    let fixture = TwoTenants::new().await;
    let pool = fixture.runtime_pool(1).await;
    for rows in [&fixture.a, &fixture.b] {
        let mut tx = pool.begin(&rows.scope).await.expect("tenant transaction");
        sqlx::query(
            "INSERT INTO app.users (account_id, email, first_name, last_name, password)
             VALUES ($1, 'same@example.test', 'A', 'B', 'x')",
        )
        .bind(rows.scope.id().as_i64().expect("bigint id"))
        .execute(&mut *tx)
        .await
        .expect("uniqueness is per tenant: another tenant's email must not collide");
        tx.commit().await.expect("commit");
    }
}

#[tokio::test]
async fn a_tenant_set_at_session_level_never_returns_to_the_pool() {
    let fixture = TwoTenants::new().await;
    let pool = rls_tenancy::TenantPool::connect(
        fixture.db.runtime_url(),
        rls_tenancy::TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"))
            .max_connections(1),
    )
    .await
    .expect("tenant pool");
    // A well-behaved transaction: the connection is reused.
    let mut tx = pool
        .begin(&fixture.a.scope)
        .await
        .expect("tenant transaction");
    let first = backend_pid(&mut tx).await;
    tx.commit().await.expect("commit");
    let mut tx = pool
        .begin(&fixture.a.scope)
        .await
        .expect("tenant transaction");
    let second = backend_pid(&mut tx).await;
    assert_eq!(first, second, "a clean connection should be reused");

    // Handler code that sets the tenant at session level: the connection must not come back.
    sqlx::query("SELECT set_config('app.tenant_id', $1, false)")
        .bind(fixture.a.scope.id().to_string())
        .execute(&mut *tx)
        .await
        .expect("session-level set");
    tx.commit().await.expect("commit");
    let mut tx = pool
        .begin(&fixture.b.scope)
        .await
        .expect("tenant transaction");
    let third = backend_pid(&mut tx).await;
    tx.rollback().await.expect("rollback");
    assert_ne!(
        second, third,
        "a connection carrying a session-level tenant was reused"
    );
}
