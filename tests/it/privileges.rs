//! The runtime role cannot get around the wall: each forbidden statement is refused.

use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::support::{TwoTenants, sqlstate};

async fn runtime_connection(fixture: &TwoTenants) -> PgConnection {
    PgConnection::connect_with(&fixture.db.runtime_url().connect_options().expect("options"))
        .await
        .expect("runtime connection")
}

#[tokio::test]
async fn the_runtime_role_is_refused_every_way_around_rls() {
    let fixture = TwoTenants::new().await;
    let deploy = fixture.db.deploy_role();
    let forbidden = [
        "TRUNCATE app.projects".to_owned(),
        "TRUNCATE app.subtasks, app.tasks, app.projects, app.users".to_owned(),
        "ALTER TABLE app.projects DISABLE ROW LEVEL SECURITY".to_owned(),
        "ALTER TABLE app.projects NO FORCE ROW LEVEL SECURITY".to_owned(),
        "CREATE POLICY open_up ON app.projects USING (true)".to_owned(),
        "ALTER POLICY tenant_isolation ON app.projects USING (true)".to_owned(),
        "DROP POLICY tenant_isolation ON app.projects".to_owned(),
        "CREATE TABLE app.sneaky (id int)".to_owned(),
        "CREATE TABLE public.sneaky (id int)".to_owned(),
        "CREATE TEMP TABLE sneaky (id int)".to_owned(),
        "CREATE SCHEMA sneaky".to_owned(),
        format!("SET ROLE {deploy}"),
        format!("SET SESSION AUTHORIZATION {deploy}"),
        "SELECT setval(pg_get_serial_sequence('app.projects', 'id'), 1)".to_owned(),
        "UPDATE app.projects SET account_id = 1".to_owned(),
        "UPDATE app.projects SET id = 1".to_owned(),
        "INSERT INTO app.projects (id, account_id, name) OVERRIDING SYSTEM VALUE VALUES (999, 1, 'x')".to_owned(),
        "INSERT INTO app.accounts (slug, name) VALUES ('evil', 'evil')".to_owned(),
        "SELECT name FROM app.accounts".to_owned(),
        "ALTER TABLE app.projects ADD COLUMN x int".to_owned(),
        "DROP TABLE app.projects".to_owned(),
        "COPY app.projects FROM '/etc/passwd'".to_owned(),
        "COPY (SELECT 1) TO PROGRAM 'true'".to_owned(),
        "ALTER ROLE CURRENT_USER BYPASSRLS".to_owned(),
    ];
    for statement in forbidden {
        let mut conn = runtime_connection(&fixture).await;
        let mut tx = conn.begin().await.expect("begin");
        let result = sqlx::raw_sql(AssertSqlSafe(statement.clone()))
            .execute(&mut *tx)
            .await;
        let code = sqlstate(&result);
        assert!(
            matches!(code.as_deref(), Some("42501" | "0A000" | "428C9")),
            "the runtime role was not refused `{statement}`: {result:?}"
        );
    }
}

#[tokio::test]
async fn set_row_security_off_makes_queries_fail_rather_than_see_everything() {
    let fixture = TwoTenants::new().await;
    let mut conn = runtime_connection(&fixture).await;
    // row_security = off is allowed as a setting, but then any query that RLS would filter
    // raises an error instead of silently returning rows.
    let result = sqlx::raw_sql("SET row_security = off; SELECT count(*) FROM app.projects")
        .execute(&mut conn)
        .await;
    assert_eq!(sqlstate(&result).as_deref(), Some("42501"), "{result:?}");
}

#[tokio::test]
async fn copy_from_stdin_into_a_tenant_table_is_refused() {
    let fixture = TwoTenants::new().await;
    let mut conn = runtime_connection(&fixture).await;
    let copy = conn
        .copy_in_raw("COPY app.projects (account_id, name) FROM STDIN")
        .await;
    let refused = match copy {
        Err(_) => true,
        Ok(mut sink) => {
            let sent = sink
                .send(format!("{}\tstolen\n", fixture.b.scope.id()).into_bytes())
                .await;
            sent.is_err() || sink.finish().await.is_err()
        }
    };
    assert!(refused, "COPY FROM STDIN was accepted for the runtime role");
    let stolen: i64 = sqlx::query_scalar("SELECT count(*) FROM app.projects WHERE name = 'stolen'")
        .fetch_one(&fixture.admin)
        .await
        .expect("count");
    assert_eq!(stolen, 0);
}

#[tokio::test]
async fn drop_owned_by_the_runtime_role_leaves_every_policy_in_place() {
    let fixture = TwoTenants::new().await;
    let mut conn = runtime_connection(&fixture).await;
    // The runtime role owns nothing and granted nothing: revoking what it was granted needs
    // the grantor's rights, so the statement is refused outright and changes nothing.
    let dropped = sqlx::raw_sql("DROP OWNED BY CURRENT_USER")
        .execute(&mut conn)
        .await;
    assert_eq!(
        sqlstate(&dropped).as_deref(),
        Some("42501"),
        "DROP OWNED BY the runtime role: {dropped:?}"
    );
    let still_granted: bool =
        sqlx::query_scalar("SELECT has_table_privilege(current_user, 'app.projects', 'SELECT')")
            .fetch_one(&mut conn)
            .await
            .expect("privilege");
    assert!(
        still_granted,
        "DROP OWNED took the runtime role's own grants"
    );
    let policies: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_policies WHERE schemaname = 'app' AND policyname = 'tenant_isolation'",
    )
    .fetch_one(&fixture.admin)
    .await
    .expect("count");
    assert_eq!(policies, 4);
    let forced: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'app' AND c.relrowsecurity AND c.relforcerowsecurity",
    )
    .fetch_one(&fixture.admin)
    .await
    .expect("count");
    assert_eq!(forced, 4);
}

#[tokio::test]
async fn the_runtime_role_cannot_grant_onward() {
    let fixture = TwoTenants::new().await;
    let mut conn = runtime_connection(&fixture).await;
    // Without GRANT OPTION, Postgres only warns "no privileges were granted".
    let _ = sqlx::raw_sql("GRANT SELECT, INSERT ON app.projects TO PUBLIC")
        .execute(&mut conn)
        .await;
    let deploy = fixture.db.deploy_role().as_str();
    let (public_select, deploy_grantable): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM information_schema.role_table_grants
                         WHERE table_schema = 'app' AND table_name = 'projects' AND grantee = 'PUBLIC'),
                EXISTS (SELECT 1 FROM information_schema.role_table_grants
                         WHERE table_schema = 'app' AND grantor = $1 AND grantee <> $1 AND is_grantable = 'YES')",
    )
    .bind(deploy)
    .fetch_one(&fixture.admin)
    .await
    .expect("grants");
    assert!(
        !public_select,
        "the runtime role passed its privileges on to PUBLIC"
    );
    assert!(
        !deploy_grantable,
        "the runtime role holds a privilege WITH GRANT OPTION"
    );
}
