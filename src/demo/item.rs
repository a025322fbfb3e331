//! One subtask by id, and the demo's write: toggling whether it is done.

use std::future::Future;
use std::sync::LazyLock;

use super::subtasks::SubtaskItem;
use crate::db::{DbError, TenantTx, is_connection_lost};
use crate::http::AppError;
use crate::policy::Strategy;
use crate::route::{RoutingPool, ServedBy};
use crate::{Error, TenantScope};

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

/// The subtask `id` of `scope`'s tenant, read in a read-only transaction on the server the
/// routing pool picks, and the role of that server. A read whose server went away under it
/// (after its BEGIN: the pool itself only moves on when a BEGIN fails) runs once more: it
/// wrote nothing, and the pool begins the second run on a server that answers.
pub(super) async fn read(
    pool: &RoutingPool,
    scope: &TenantScope,
    id: i64,
) -> Result<(Option<SubtaskItem>, ServedBy), AppError> {
    once_more_if_lost(|| async {
        let mut tx = pool.read(scope).await?;
        let found = find(&mut tx, id).await?;
        let served_by = tx.served_by();
        tx.commit().await?;
        Ok((found, served_by))
    })
    .await
}

/// Runs `run`, and once more when it failed because its connection or server was lost.
/// Only for work that writes nothing (a read-only transaction).
async fn once_more_if_lost<T, F, Fut>(mut run: F) -> Result<T, AppError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, AppError>>,
{
    match run().await {
        Err(err) if server_lost(&err) => {
            tracing::warn!(error = %err, "a read lost its server; running it once more");
            run().await
        }
        done => done,
    }
}

/// Whether `err` says the connection or the server went away (not a fault of the request).
fn server_lost(err: &AppError) -> bool {
    match err {
        AppError::Library(Error::Database(err) | Error::Db(DbError::Database(err))) => {
            is_connection_lost(err)
        }
        _ => false,
    }
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
#[allow(clippy::expect_used, reason = "a test fails by panicking")]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn lost() -> AppError {
        sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)).into()
    }

    #[tokio::test]
    async fn a_read_that_lost_its_server_runs_once_more_and_only_once() {
        let runs = Cell::new(0);
        let read = once_more_if_lost(|| async {
            runs.set(runs.get() + 1);
            if runs.get() == 1 { Err(lost()) } else { Ok(7) }
        });
        assert!(matches!(read.await, Ok(7)));
        assert_eq!(runs.get(), 2);

        runs.set(0);
        let always_lost = once_more_if_lost(|| async {
            runs.set(runs.get() + 1);
            Err::<i32, _>(lost())
        });
        assert!(server_lost(&always_lost.await.expect_err("lost twice")));
        assert_eq!(runs.get(), 2, "no third run");
    }

    #[tokio::test]
    async fn a_read_that_failed_for_another_reason_is_not_run_again() {
        for error in [
            AppError::NotFound,
            AppError::bad_request("bad id"),
            sqlx::Error::RowNotFound.into(),
        ] {
            let runs = Cell::new(0);
            let error = Cell::new(Some(error));
            let read = once_more_if_lost(|| async {
                runs.set(runs.get() + 1);
                Err::<i32, _>(error.take().unwrap_or(AppError::NotFound))
            });
            assert!(!server_lost(&read.await.expect_err("it failed")));
            assert_eq!(runs.get(), 1);
        }
    }

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
