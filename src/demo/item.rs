//! One subtask by id, and the demo's write: toggling whether it is done.

use std::sync::LazyLock;

use super::subtasks::SubtaskItem;
use crate::db::TenantTx;
use crate::http::AppError;
use crate::policy::Strategy;

/// The subtask the `subject` statement yields, with its task's and project's names; the
/// tenant transaction's row-level security decides which rows exist. `{t}` stands for the
/// tenant tables' qualification: `app.` under the RLS strategy, nothing under the schema
/// strategy (the transaction's `search_path` names the tenant's schema).
macro_rules! with_names {
    ($subject:literal) => {
        concat!(
            "WITH subject AS (",
            $subject,
            ") SELECT s.id, s.account_id, s.name, s.is_complete, t.name, p.name FROM subject s \
             JOIN {t}tasks t ON t.account_id = s.account_id AND t.id = s.task_id \
             JOIN {t}projects p ON p.account_id = t.account_id AND p.id = t.project_id"
        )
    };
}

const FIND: &str = with_names!("SELECT * FROM {t}subtasks WHERE id = $1");
const TOGGLE: &str =
    with_names!("UPDATE {t}subtasks SET is_complete = NOT is_complete WHERE id = $1 RETURNING *");

/// `FIND` and `TOGGLE` for each strategy.
static STATEMENTS: LazyLock<[[String; 2]; 2]> = LazyLock::new(|| {
    [FIND, TOGGLE].map(|sql| [sql.replace("{t}", "app."), sql.replace("{t}", "")])
});

/// Statement `which` (0: find, 1: toggle) for the transaction's strategy.
fn statement(tx: &TenantTx, which: usize) -> &'static str {
    let in_schema = usize::from(tx.declaration().strategy() == Strategy::Schema);
    STATEMENTS[which][in_schema].as_str()
}

type Row = (i64, i64, String, bool, String, String);

fn item((id, account_id, name, is_complete, task_name, project_name): Row) -> SubtaskItem {
    SubtaskItem {
        id,
        account_id,
        name,
        is_complete,
        task_name,
        project_name,
    }
}

/// A subtask id from the path: a positive integer, or a 400.
pub(super) fn parse_id(raw: &str) -> Result<i64, AppError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0 && !raw.starts_with(['+', '0']))
        .ok_or_else(|| {
            AppError::bad_request(format!(
                "invalid subtask id `{}`: a positive whole number without sign or leading zero",
                raw.chars().take(40).collect::<String>()
            ))
        })
}

/// The subtask `id` of the transaction's tenant, if it has one.
pub(super) async fn find(tx: &mut TenantTx, id: i64) -> Result<Option<SubtaskItem>, AppError> {
    let sql = statement(tx, 0);
    let row: Option<Row> = sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(item))
}

/// Flips whether the subtask `id` is done and returns it as it is now, if the
/// transaction's tenant has it.
pub(super) async fn toggle(tx: &mut TenantTx, id: i64) -> Result<Option<SubtaskItem>, AppError> {
    let sql = statement(tx, 1);
    let row: Option<Row> = sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(item))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtask_ids_are_positive_whole_numbers() {
        assert!(matches!(parse_id("42"), Ok(42)));
        for bad in ["0", "-1", "+1", "01", "x", "", "99999999999999999999"] {
            assert!(
                matches!(parse_id(bad), Err(AppError::BadRequest(_))),
                "{bad}"
            );
        }
    }
}
