//! The current tenant beyond requests: `TenantScope::scope`, `rls_tenancy::spawn`,
//! `TenantPool::begin_current`, and a worker that turns job payloads (`TenantRef`) back into
//! tenant transactions on one connection and one task without carrying a tenant over.

use rls_tenancy::{
    DbError, Error, RegistryOptions, Result, TenancyDeclaration, TenantPool, TenantPoolOptions,
    TenantRef, TenantScope, TxOptions,
};
use sqlx::postgres::PgPoolOptions;

use crate::fixture::TwoTenants;

/// What the current tenant's transaction sees: its connection's backend and the projects
/// (account id, name).
type Seen = (i32, Vec<(i64, String)>);

async fn current_projects(pool: &TenantPool) -> std::result::Result<Seen, Error> {
    let decl = TenancyDeclaration::reference()?;
    let mut tx = pool.begin_current().await?;
    let scope = tx.scope().clone();
    let (backend,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
        .fetch_one(&mut *tx)
        .await?;
    let rows = tx
        .fetch_all(
            &scope
                .select(&decl)
                .from("projects")
                .columns(["account_id", "name"]),
        )
        .await?;
    tx.commit().await?;
    Ok((backend, rows))
}

fn only(rows: &[(i64, String)], scope: &TenantScope, expected: usize) {
    let id = scope.id().as_i64().expect("bigint id");
    assert_eq!(rows.len(), expected, "{rows:?}");
    assert!(rows.iter().all(|(account, _)| *account == id), "{rows:?}");
}

#[tokio::test]
async fn spawned_tasks_see_the_tenant_and_plain_tasks_do_not() -> Result<()> {
    let t = TwoTenants::new().await?;
    let pool = t.pool.clone();
    let (carried, plain, nested, after) = t
        .alpha
        .scope(async {
            let carried = rls_tenancy::spawn({
                let pool = pool.clone();
                async move { (TenantScope::current(), current_projects(&pool).await) }
            });
            let plain = tokio::spawn({
                let pool = pool.clone();
                async move { (TenantScope::current(), current_projects(&pool).await) }
            });
            let nested = t.beta.scope(current_projects(&pool)).await;
            let after = current_projects(&pool).await;
            (carried.await, plain.await, nested, after)
        })
        .await;
    let (scope, seen) = carried.expect("the spawned task");
    assert_eq!(scope.as_ref(), Some(&t.alpha));
    only(&seen?.1, &t.alpha, 2);
    let (scope, rows) = plain.expect("the plain task");
    assert_eq!(scope, None);
    assert!(
        matches!(rows, Err(Error::Db(DbError::NoCurrentTenant))),
        "{rows:?}"
    );
    only(&nested?.1, &t.beta, 3);
    only(&after?.1, &t.alpha, 2);
    Ok(())
}

#[tokio::test]
async fn a_task_without_a_tenant_cannot_open_a_tenant_transaction() -> Result<()> {
    let t = TwoTenants::new().await?;
    assert_eq!(TenantScope::current(), None);
    assert!(matches!(
        t.pool.begin_current().await,
        Err(DbError::NoCurrentTenant)
    ));
    let pool = t.pool.clone();
    let spawned = rls_tenancy::spawn(async move {
        pool.begin_current_with(TxOptions::default().read_only())
            .await
            .map(|_| ())
    })
    .await
    .expect("the task");
    assert!(matches!(spawned, Err(DbError::NoCurrentTenant)));
    let message = DbError::NoCurrentTenant.to_string();
    assert!(message.contains("TenantScope::scope"), "{message}");
    Ok(())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Job {
    tenant: TenantRef,
    label: String,
}

#[tokio::test]
async fn a_worker_on_one_connection_never_inherits_the_previous_jobs_tenant() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    // One connection, shared by the worker's tenant transactions and by the plain checks
    // between jobs.
    let raw = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(t.db.runtime_url().connect_options()?)
        .await?;
    let pool = TenantPool::from_pool(raw.clone(), TenantPoolOptions::new(decl.clone())).await?;
    let registry = pool.registry(RegistryOptions::default());
    let payloads: Vec<String> = [&t.alpha, &t.beta, &t.alpha, &t.beta, &t.beta, &t.alpha]
        .iter()
        .enumerate()
        .map(|(i, scope)| {
            serde_json::to_string(&Job {
                tenant: TenantRef::from(*scope),
                label: format!("job {i}"),
            })
            .expect("a payload")
        })
        .collect();

    // One task runs every job in turn.
    let worker = tokio::spawn(async move {
        let mut seen = Vec::new();
        for payload in payloads {
            let job: Job = serde_json::from_str(&payload).expect("a job");
            let scope = registry.resolve_id(job.tenant.id()).await?;
            let (backend, rows) = scope.scope(current_projects(&pool)).await?;
            // Between jobs: no current tenant, and the connection carries none.
            assert_eq!(TenantScope::current(), None, "{}", job.label);
            assert!(matches!(
                pool.begin_current().await,
                Err(DbError::NoCurrentTenant)
            ));
            let (setting, visible): (Option<String>, i64) = sqlx::query_as(
                "SELECT nullif(current_setting('app.tenant_id', true), ''), (SELECT count(*) FROM app.projects)",
            )
            .fetch_one(&raw)
            .await?;
            assert_eq!((setting, visible), (None, 0), "after {}", job.label);
            seen.push((scope, backend, rows));
        }
        Ok::<_, Error>(seen)
    });
    let seen = worker.await.expect("the worker")?;

    assert_eq!(seen.len(), 6);
    let backend = seen[0].1;
    for (scope, pid, rows) in &seen {
        assert_eq!(*pid, backend, "one connection for every job");
        let expected = if scope == &t.alpha { 2 } else { 3 };
        only(rows, scope, expected);
    }
    assert_eq!(
        seen.iter().map(|(s, ..)| s.id()).collect::<Vec<_>>(),
        [&t.alpha, &t.beta, &t.alpha, &t.beta, &t.beta, &t.alpha]
            .iter()
            .map(|s| s.id())
            .collect::<Vec<_>>()
    );
    // Both tenants' rows were there all along.
    assert_eq!(t.count("projects", &t.alpha).await?, 2);
    assert_eq!(t.count("projects", &t.beta).await?, 3);
    Ok(())
}
