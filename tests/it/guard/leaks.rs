//! The classes the guard refuses are real leaks: for each, the misconfiguration is injected
//! into a database holding two tenants, tenant a's own transaction (the runtime role, its
//! tenant set, row-level security on) reads tenant b's data, and the guard names the rule.

use rls_tenancy::guard::{self, RuleId};
use rls_tenancy::{Result, TenantPool};
use sqlx::AssertSqlSafe;

use super::{options, pool_options, rules};
use crate::support::TwoTenants;

const B_EMAIL: &str = "owner@tenant-b.test";

/// Injects `sql` as the superuser and asserts the guard refuses the database under `rule`.
async fn injected(t: &TwoTenants, sql: &str, rule: RuleId) -> Result<()> {
    let runtime = t.db.runtime_role().to_string();
    sqlx::raw_sql(AssertSqlSafe(sql.replace("{runtime}", &runtime)))
        .execute(&t.admin)
        .await?;
    let report = guard::check_url(t.db.runtime_url(), &options()).await?;
    assert!(report.is_refused(), "{report}");
    assert!(rules(&report).contains(&rule), "{rule} missing:\n{report}");
    Ok(())
}

/// The runtime role's pool with the guard skipped: what an application would get if nothing
/// checked the database.
async fn unguarded(t: &TwoTenants) -> Result<TenantPool> {
    Ok(TenantPool::connect(t.db.runtime_url(), pool_options().skip_guard()).await?)
}

/// The text values `sql` returns inside tenant a's transaction.
async fn read_as_tenant_a(t: &TwoTenants, sql: &str) -> Result<Vec<String>> {
    let pool = unguarded(t).await?;
    let mut tx = pool.begin(&t.a.scope).await?;
    let values = sqlx::query_scalar(AssertSqlSafe(sql))
        .fetch_all(&mut *tx)
        .await?;
    tx.rollback().await?;
    pool.close().await;
    Ok(values)
}

#[tokio::test]
async fn tenant_a_does_not_see_tenant_b_on_the_migrated_database() -> Result<()> {
    let t = TwoTenants::new().await;
    let emails = read_as_tenant_a(&t, "SELECT email FROM app.users").await?;
    assert_eq!(emails, ["owner@tenant-a.test"]);
    Ok(())
}

/// Tenant b renames its own project to `b secret plan`, in its own transaction.
async fn tenant_b_renames_its_project(t: &TwoTenants) -> Result<()> {
    let pool = unguarded(t).await?;
    let mut tx = pool.begin(&t.b.scope).await?;
    sqlx::query("UPDATE app.projects SET name = 'b secret plan'")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    pool.close().await;
    Ok(())
}

/// Injects `sql`, asserts the guard refuses it under `rule`, and that `read` in tenant a's
/// transaction returns tenant b's email.
async fn shows_tenant_b_to_tenant_a(sql: &str, rule: RuleId, read: &str) -> Result<()> {
    let t = TwoTenants::new().await;
    injected(&t, sql, rule).await?;
    let emails = read_as_tenant_a(&t, read).await?;
    assert!(emails.iter().any(|e| e == B_EMAIL), "{emails:?}");
    Ok(())
}

#[tokio::test]
async fn a_readable_copy_in_another_schema_leaks_and_is_refused() -> Result<()> {
    shows_tenant_b_to_tenant_a(
        "CREATE SCHEMA archive; GRANT USAGE ON SCHEMA archive TO {runtime};
         CREATE TABLE archive.users AS SELECT * FROM app.users;
         GRANT SELECT ON archive.users TO {runtime}",
        RuleId::RlsDisabled,
        "SELECT email FROM archive.users",
    )
    .await
}

#[tokio::test]
async fn a_copy_in_a_schema_the_role_cannot_use_leaks_through_a_view_and_is_refused() -> Result<()>
{
    // No USAGE on schema private, so the copy cannot be named; a security_invoker view
    // reads it all the same, with the grant the role holds on it.
    shows_tenant_b_to_tenant_a(
        "CREATE SCHEMA private; CREATE TABLE private.users AS SELECT * FROM app.users;
         GRANT SELECT ON private.users TO {runtime};
         CREATE VIEW app.emails WITH (security_invoker) AS SELECT email FROM private.users;
         GRANT SELECT ON app.emails TO {runtime}",
        RuleId::RlsDisabled,
        "SELECT email FROM app.emails",
    )
    .await
}

#[tokio::test]
async fn a_readable_materialized_view_leaks_and_is_refused() -> Result<()> {
    shows_tenant_b_to_tenant_a(
        "CREATE MATERIALIZED VIEW app.emails AS SELECT email FROM app.users;
         GRANT SELECT ON app.emails TO {runtime}",
        RuleId::MaterializedViewReadable,
        "SELECT email FROM app.emails",
    )
    .await
}

#[tokio::test]
async fn a_table_a_tenant_trigger_copies_into_leaks_and_is_refused() -> Result<()> {
    let t = TwoTenants::new().await;
    injected(
        &t,
        "CREATE TABLE app.audit_log (row_data jsonb);
         CREATE FUNCTION app.audit() RETURNS trigger LANGUAGE plpgsql
           AS $$BEGIN INSERT INTO app.audit_log VALUES (to_jsonb(NEW)); RETURN NEW; END$$;
         CREATE TRIGGER projects_audit AFTER UPDATE ON app.projects
           FOR EACH ROW EXECUTE FUNCTION app.audit();
         GRANT SELECT, INSERT ON app.audit_log TO {runtime}",
        RuleId::TriggerWritesUnscopedTable,
    )
    .await?;
    tenant_b_renames_its_project(&t).await?;
    let names = read_as_tenant_a(&t, "SELECT row_data ->> 'name' FROM app.audit_log").await?;
    assert_eq!(names, ["b secret plan"]);
    Ok(())
}

#[tokio::test]
async fn a_leakproof_function_leaks_through_its_error_and_is_refused() -> Result<()> {
    let t = TwoTenants::new().await;
    // A careless helper: it complains about the value it saw. Cheap and LEAKPROOF, so the
    // planner runs it before the tenant policy on every row it scans (a small, analyzed
    // table is scanned whole).
    injected(
        &t,
        "CREATE FUNCTION public.check_domain(text) RETURNS boolean LANGUAGE plpgsql
           LEAKPROOF COST 0.0000001
           AS $$BEGIN IF $1 LIKE '%tenant-b%' THEN RAISE EXCEPTION 'bad domain in %', $1; END IF;
                      RETURN true; END$$;
         ANALYZE app.users",
        RuleId::LeakproofFunction,
    )
    .await?;
    let sql = "SELECT email FROM app.users WHERE public.check_domain(email)";
    let message = match read_as_tenant_a(&t, sql).await {
        Err(e) => e.to_string(),
        other => panic!("expected the function's error, got {other:?}"),
    };
    assert!(message.contains(B_EMAIL), "{message}");
    // Without LEAKPROOF the policy runs first and tenant b's row never reaches the function.
    sqlx::raw_sql("ALTER FUNCTION public.check_domain(text) NOT LEAKPROOF")
        .execute(&t.admin)
        .await?;
    assert_eq!(read_as_tenant_a(&t, sql).await?, ["owner@tenant-a.test"]);
    Ok(())
}

#[tokio::test]
async fn a_notifying_trigger_broadcasts_tenant_b_rows_to_a_listener_and_is_refused() -> Result<()> {
    let t = TwoTenants::new().await;
    injected(
        &t,
        "CREATE FUNCTION app.announce() RETURNS trigger LANGUAGE plpgsql
           AS $$BEGIN PERFORM pg_notify('projects', to_jsonb(NEW)::text); RETURN NEW; END$$;
         CREATE TRIGGER projects_announce AFTER UPDATE ON app.projects
           FOR EACH ROW EXECUTE FUNCTION app.announce()",
        RuleId::TriggerNotifies,
    )
    .await?;
    // Any session of the runtime role listens: no privilege needed.
    let mut listener =
        sqlx::postgres::PgListener::connect_with(&t.raw_runtime_pool(1).await).await?;
    listener.listen("projects").await?;
    tenant_b_renames_its_project(&t).await?;
    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv())
        .await
        .map_err(|_| std::io::Error::other("no notification arrived"))??;
    assert!(
        heard.payload().contains("b secret plan"),
        "{}",
        heard.payload()
    );
    Ok(())
}
