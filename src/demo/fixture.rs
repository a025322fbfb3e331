//! The demo's built-in data: three tenants with distinct projects, tasks and subtasks.
//!
//! Written as the deploy role: the registry rows directly (the registry has no row-level
//! security and the runtime role may not write it), the tenant rows through each tenant's
//! own transaction, so the policies' `WITH CHECK` vets every row on the way in.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::db::{DatabaseUrl, TenantPool, TenantPoolOptions, TenantTx};
use crate::error::{Error, Result};
use crate::tenant::{TenantId, TenantScope, TenantSlug};

/// A tenant of the fixture: its name and two projects of three tasks each.
struct Company {
    name: &'static str,
    projects: [(&'static str, [&'static str; 3]); 2],
}

const COMPANIES: [Company; 3] = [
    Company {
        name: "Acme Rockets",
        projects: [
            (
                "Moon launch",
                ["fuel order", "launch checklist", "pad inspection"],
            ),
            (
                "Weather satellite",
                ["antenna design", "orbit plan", "solar panels"],
            ),
        ],
    },
    Company {
        name: "Globex",
        projects: [
            ("Volcano lair", ["lava cooling", "monorail", "guest wing"]),
            (
                "Doomsday device",
                ["laser focus", "power supply", "user manual"],
            ),
        ],
    },
    Company {
        name: "Initech",
        projects: [
            (
                "TPS reports",
                ["cover sheets", "memo reminder", "printer fix"],
            ),
            ("Y2K patch", ["date audit", "rounding bug", "code freeze"]),
        ],
    },
];

/// Every task gets these four subtasks, so every tenant has 24 subtasks on 3 pages.
const STEPS: [&str; 4] = ["Draft", "Review", "Approve", "Ship"];

/// A subtask whose name is markup, in the first tenant: the pages must show it as text.
const HOSTILE_NAME: &str = "<script>alert(\"tenant-1\")</script> & 'quotes'";

/// Seeds `tenant-1` .. `tenant-3` through the deploy role at `deploy_url`, returning their
/// slugs.
pub(super) async fn seed(deploy_url: &DatabaseUrl) -> Result<Vec<TenantSlug>> {
    let mut registry = PgConnection::connect_with(&deploy_url.connect_options()?)
        .await
        .map_err(|source| Error::Connect {
            url: deploy_url.redacted(),
            source,
        })?;
    let pool = TenantPool::connect(
        deploy_url,
        TenantPoolOptions::default()
            .max_connections(1)
            .deploy_role_writer(),
    )
    .await?;
    let mut slugs = Vec::with_capacity(COMPANIES.len());
    for (n, company) in COMPANIES.iter().enumerate() {
        let slug: TenantSlug = format!("tenant-{}", n + 1).parse()?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO app.accounts (slug, name) VALUES ($1, $2) RETURNING id",
        )
        .bind(slug.as_str())
        .bind(company.name)
        .fetch_one(&mut registry)
        .await?;
        let scope = TenantScope::new(TenantId::new(id)?, slug.clone());
        let mut tx = pool.begin(&scope).await?;
        seed_company(&mut tx, company, n == 0).await?;
        tx.commit().await?;
        slugs.push(slug);
    }
    pool.close().await;
    Ok(slugs)
}

async fn seed_company(tx: &mut TenantTx, company: &Company, hostile: bool) -> Result<()> {
    let account = tx.scope().id().get();
    let mut last_task = 0;
    for (project, tasks) in &company.projects {
        let project_id: i64 = sqlx::query_scalar(
            "INSERT INTO app.projects (account_id, name, details) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(account)
        .bind(*project)
        .bind(company.name)
        .fetch_one(&mut **tx)
        .await?;
        for task in tasks {
            last_task = sqlx::query_scalar(
                "INSERT INTO app.tasks (account_id, project_id, name) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(account)
            .bind(project_id)
            .bind(*task)
            .fetch_one(&mut **tx)
            .await?;
            for (i, step) in STEPS.iter().enumerate() {
                insert_subtask(tx, last_task, &format!("{step} the {task}"), i < 2).await?;
            }
        }
    }
    if hostile {
        insert_subtask(tx, last_task, HOSTILE_NAME, false).await?;
    }
    Ok(())
}

async fn insert_subtask(tx: &mut TenantTx, task: i64, name: &str, done: bool) -> Result<()> {
    sqlx::query(
        "INSERT INTO app.subtasks (account_id, task_id, name, is_complete) VALUES ($1, $2, $3, $4)",
    )
    .bind(tx.scope().id().get())
    .bind(task)
    .bind(name)
    .bind(done)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
