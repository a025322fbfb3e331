//! Update and delete with every sub-select shape of [`Filtered`], against a real database.
//!
//! Each sub-select compares ids, which are global identities with `beta`'s larger than
//! `alpha`'s: without its own tenant predicate the sub-select would see `beta`'s rows and the
//! statement would write a different number of `alpha`'s rows.

use rls_tenancy::sea_query::{Expr, ExprTrait};
use rls_tenancy::{Filtered, Result, TenancyDeclaration};

use crate::fixture::TwoTenants;

#[tokio::test]
async fn update_and_delete_take_every_sub_select_shape_within_their_tenant() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    let a = &t.alpha;
    let bypass = t.bypass().await?;
    let mut tx = bypass.begin(a).await?;

    // IN: alpha's last task (the largest id of its own tasks).
    let last_task = a.select(&decl).from("tasks").expr(Expr::col("id").max());
    let update_in = a
        .update(&decl, "tasks")
        .value("details", "last")
        .and_where_in(Expr::col("id"), last_task.clone());
    assert_eq!(tx.execute(&update_in).await?, 1);

    // NOT IN: the tasks of alpha's projects other than its last one (3 of 6).
    let last_project = a.select(&decl).from("projects").expr(Expr::col("id").max());
    let update_not_in = a
        .update(&decl, "tasks")
        .value("is_complete", true)
        .and_where_not_in(Expr::col("project_id"), last_project);
    assert_eq!(tx.execute(&update_not_in).await?, 3);

    // NOT EXISTS: alpha's projects with no project of a larger id (its last one).
    let larger_project = a
        .select(&decl)
        .from_as("projects", "p")
        .expr(Expr::val(1))
        .and_where(Expr::col(("p", "id")).gt(Expr::col(("projects", "id"))));
    let update_not_exists = a
        .update(&decl, "projects")
        .value("details", "newest")
        .and_where_not_exists(larger_project.clone());
    assert_eq!(tx.execute(&update_not_exists).await?, 1);

    // EXISTS: alpha's subtasks whose task is not its last (5 tasks × 4).
    let larger_task = a
        .select(&decl)
        .from_as("tasks", "t")
        .expr(Expr::val(1))
        .and_where(Expr::col(("t", "id")).gt(Expr::col(("subtasks", "task_id"))));
    let delete_exists = a
        .delete(&decl, "subtasks")
        .and_where_exists(larger_task.clone());
    assert_eq!(tx.execute(&delete_exists).await?, 20);

    // NOT EXISTS on delete: the subtasks of alpha's last task (the 4 left).
    let delete_not_exists = a
        .delete(&decl, "subtasks")
        .and_where_not_exists(larger_task);
    assert_eq!(tx.execute(&delete_not_exists).await?, 4);

    // IN and NOT IN on delete: alpha's last task, then every task but the new last one.
    let delete_in = a
        .delete(&decl, "tasks")
        .and_where_in(Expr::col("id"), last_task.clone());
    assert_eq!(tx.execute(&delete_in).await?, 1);
    let delete_not_in = a
        .delete(&decl, "tasks")
        .and_where_not_in(Expr::col("id"), last_task);
    assert_eq!(tx.execute(&delete_not_in).await?, 4);
    tx.commit().await?;

    assert_eq!(t.count("tasks", a).await?, 1);
    assert_eq!(t.count("subtasks", a).await?, 0);
    let newest: i64 =
        sqlx::query_scalar("SELECT count(*) FROM app.projects WHERE details = 'newest'")
            .fetch_one(&t.admin)
            .await?;
    assert_eq!(newest, 1);
    // The other tenant: nothing changed.
    assert_eq!(t.count("projects", &t.beta).await?, 3);
    assert_eq!(t.count("tasks", &t.beta).await?, 9);
    assert_eq!(t.count("subtasks", &t.beta).await?, 36);
    let beta_changed: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM app.tasks WHERE account_id = $1 AND (details <> '' OR is_complete))
              + (SELECT count(*) FROM app.projects WHERE account_id = $1 AND details <> '')",
    )
    .bind(t.beta.id().as_i64().expect("bigint id"))
    .fetch_one(&t.admin)
    .await?;
    assert_eq!(beta_changed, 0);
    Ok(())
}
