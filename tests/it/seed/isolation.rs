//! Seeded rows belong to exactly one account, as the runtime role sees them.

use rls_tenancy::TenancyDeclaration;
use rls_tenancy::{
    ScratchDatabase, SeedOptions, TenantId, TenantPool, TenantPoolOptions, TenantScope,
};

use super::{TestResult, counts_by_account, seed_db};

const TABLES: [&str; 4] = ["users", "projects", "tasks", "subtasks"];

/// Rows of `table` with `account_id = id` that the open tenant transaction can see.
async fn visible(tx: &mut rls_tenancy::TenantTx, table: &str, id: i64) -> TestResult<i64> {
    let sql = match table {
        "users" => "SELECT count(*) FROM app.users WHERE account_id = $1",
        "projects" => "SELECT count(*) FROM app.projects WHERE account_id = $1",
        "tasks" => "SELECT count(*) FROM app.tasks WHERE account_id = $1",
        _ => "SELECT count(*) FROM app.subtasks WHERE account_id = $1",
    };
    Ok(sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&mut **tx)
        .await?)
}

#[tokio::test]
async fn every_seeded_row_is_visible_to_its_own_account_and_to_no_other() -> TestResult {
    let db = ScratchDatabase::migrated().await?;
    seed_db(&db, &SeedOptions::new(4).seed(9)).await?;
    let admin = db.admin_pool().await?;
    let accounts: Vec<(i64, String)> =
        sqlx::query_as("SELECT id, slug FROM app.accounts ORDER BY id")
            .fetch_all(&admin)
            .await?;
    let truth = counts_by_account(&admin).await?;
    assert_eq!(accounts.len(), 4);

    let runtime = TenantPool::connect(
        db.runtime_url(),
        TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration")),
    )
    .await?;
    for (viewer_id, viewer_slug) in &accounts {
        let scope = TenantScope::new(TenantId::new(*viewer_id)?, viewer_slug.parse()?);
        let mut tx = runtime.begin(&scope).await?;
        for (owner_id, owner_slug) in &accounts {
            let Some(expected) = truth.iter().find(|c| &c.0 == owner_slug) else {
                return Err(format!("no counts for {owner_slug}").into());
            };
            let expected = [expected.1, expected.2, expected.3, expected.4];
            for (table, rows) in TABLES.iter().zip(expected) {
                let seen = visible(&mut tx, table, *owner_id).await?;
                if owner_id == viewer_id {
                    assert!(rows > 0, "{owner_slug} has {table}");
                    assert_eq!(seen, rows, "{viewer_slug} sees all of its own {table}");
                } else {
                    assert_eq!(seen, 0, "{viewer_slug} sees none of {owner_slug}'s {table}");
                }
            }
        }
        tx.rollback().await?;
    }
    Ok(())
}

#[tokio::test]
async fn every_child_row_points_at_a_parent_in_its_own_account() -> TestResult {
    let db = ScratchDatabase::migrated().await?;
    seed_db(&db, &SeedOptions::new(5).seed(4)).await?;
    let admin = db.admin_pool().await?;
    // Ids are unique per table, so joining on the id alone finds the parent wherever it is.
    let (tasks, strays_t, subtasks, strays_s): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM app.tasks),
                (SELECT count(*) FROM app.tasks t
                   LEFT JOIN app.projects p ON p.id = t.project_id
                  WHERE p.id IS NULL OR p.account_id <> t.account_id),
                (SELECT count(*) FROM app.subtasks),
                (SELECT count(*) FROM app.subtasks s
                   LEFT JOIN app.tasks t ON t.id = s.task_id
                  WHERE t.id IS NULL OR t.account_id <> s.account_id)",
    )
    .fetch_one(&admin)
    .await?;
    assert!(tasks > 0 && subtasks > 0);
    assert_eq!((strays_t, strays_s), (0, 0));
    let ids_unique: bool = sqlx::query_scalar(
        "SELECT (SELECT count(DISTINCT id) = count(*) FROM app.projects)
            AND (SELECT count(DISTINCT id) = count(*) FROM app.tasks)",
    )
    .fetch_one(&admin)
    .await?;
    assert!(ids_unique);
    Ok(())
}
