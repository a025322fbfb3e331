//! One subtask by id, and the demo's write: toggling whether it is done.

use sqlx::postgres::PgConnection;

use super::subtasks::SubtaskItem;
use crate::http::AppError;

/// The subtask the `subject` statement yields, with its task's and project's names; the
/// tenant transaction's row-level security decides which rows exist.
macro_rules! with_names {
    ($subject:literal) => {
        concat!(
            "WITH subject AS (",
            $subject,
            ") SELECT s.id, s.account_id, s.name, s.is_complete, t.name, p.name FROM subject s \
             JOIN app.tasks t ON t.account_id = s.account_id AND t.id = s.task_id \
             JOIN app.projects p ON p.account_id = t.account_id AND p.id = t.project_id"
        )
    };
}

const FIND: &str = with_names!("SELECT * FROM app.subtasks WHERE id = $1");
const TOGGLE: &str =
    with_names!("UPDATE app.subtasks SET is_complete = NOT is_complete WHERE id = $1 RETURNING *");

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
pub(super) async fn find(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<SubtaskItem>, AppError> {
    let row: Option<Row> = sqlx::query_as(FIND).bind(id).fetch_optional(conn).await?;
    Ok(row.map(item))
}

/// Flips whether the subtask `id` is done and returns it as it is now, if the
/// transaction's tenant has it.
pub(super) async fn toggle(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<SubtaskItem>, AppError> {
    let row: Option<Row> = sqlx::query_as(TOGGLE).bind(id).fetch_optional(conn).await?;
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
