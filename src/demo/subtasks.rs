//! The demo's one view as a library function: a page of a tenant's subtasks, each with its
//! task and project, through the scoped builder.

use sea_query::{Asterisk, Expr, ExprTrait, Order};

use crate::db::TenantTx;
use crate::http::AppError;
use crate::policy::TenancyDeclaration;
use crate::query::{JoinKind, Select};
use crate::tenant::{TenantScope, TenantSlug};

type Result<T, E = AppError> = std::result::Result<T, E>;

/// The demo's page size.
pub const SUBTASKS_PER_PAGE: u32 = 10;
/// The largest page size [`subtask_page`] accepts.
pub const MAX_PER_PAGE: u32 = 100;
/// The deepest row a page may start at: an OFFSET costs a scan of every skipped row, so
/// unbounded page numbers would be a cheap way to make the database work hard.
pub const MAX_OFFSET: u64 = 100_000;

/// One subtask as the list view shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubtaskItem {
    /// The subtask's id (unique within its tenant).
    pub id: i64,
    /// The tenant the row belongs to: always the page's tenant.
    pub account_id: i64,
    /// The subtask's name.
    pub name: String,
    /// Whether it is done.
    pub is_complete: bool,
    /// Its task's name.
    pub task_name: String,
    /// Its task's project's name.
    pub project_name: String,
}

/// A page of one tenant's subtasks, ordered by name then id.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubtaskPage {
    /// The tenant whose page this is.
    pub tenant: TenantSlug,
    /// The page number, from 1.
    pub page: u32,
    /// The page size.
    pub per_page: u32,
    /// How many subtasks the tenant has in all.
    pub total: i64,
    /// This page's subtasks (empty past the last page).
    pub items: Vec<SubtaskItem>,
}

/// The offset of `page`, or a 400 [`AppError`].
fn offset(page: u32, per_page: u32) -> Result<u64> {
    let invalid = || {
        AppError::bad_request(format!(
            "invalid page {page} of {per_page} items: pages start at 1, hold 1 to {MAX_PER_PAGE} items and start no further than item {MAX_OFFSET}"
        ))
    };
    if page == 0 || per_page == 0 || per_page > MAX_PER_PAGE {
        return Err(invalid());
    }
    let offset = u64::from(page - 1) * u64::from(per_page);
    if offset > MAX_OFFSET {
        return Err(invalid());
    }
    Ok(offset)
}

/// How many subtasks the tenant has.
fn total_query<'d>(decl: &'d TenancyDeclaration, scope: &TenantScope) -> Select<'d, TenantScope> {
    scope
        .select(decl)
        .from("subtasks")
        .expr(Expr::col(Asterisk).count())
}

/// The page query [`subtask_page`] sends for `decl`'s tenant tables, for inspection and for
/// benchmarks that replay it: the page's rows, each carrying the tenant's total from a scalar
/// sub-select (run once per statement), so a page costs one round trip. Under the schema
/// strategy the tables are named unqualified: the tenant transaction's `search_path` names
/// the tenant's schema.
///
/// # Errors
/// a 400 [`AppError`] for a page before 1, a page size outside `1..=100`, or a page
/// starting past row 100 000.
///
/// ```
/// use rls_tenancy::{Strategy, TenancyDeclaration, TenantId, TenantScope, demo::subtask_page_query};
/// let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
/// let decl = TenancyDeclaration::reference()?;
/// let (sql, _) = subtask_page_query(&decl, &scope, 3, 10)?.build()?;
/// assert_eq!(
///     sql,
///     concat!(
///         r#"SELECT "s"."id", "s"."account_id", "s"."name", "s"."is_complete", "t"."name" AS "task_name", "p"."name" AS "project_name", "#,
///         r#"(SELECT COUNT(*) FROM "app"."subtasks" WHERE "subtasks"."account_id" = $1) AS "total" "#,
///         r#"FROM "app"."subtasks" AS "s" "#,
///         r#"INNER JOIN "app"."tasks" AS "t" ON "t"."account_id" = $2 AND ("t"."account_id" = "s"."account_id" AND "t"."id" = "s"."task_id") "#,
///         r#"INNER JOIN "app"."projects" AS "p" ON "p"."account_id" = $3 AND ("p"."account_id" = "t"."account_id" AND "p"."id" = "t"."project_id") "#,
///         r#"WHERE "s"."account_id" = $4 ORDER BY "s"."name" ASC, "s"."id" ASC LIMIT $5 OFFSET $6"#,
///     )
/// );
/// assert!(subtask_page_query(&decl, &scope, 0, 10).is_err());
/// let in_schemas = decl.with_strategy(Strategy::Schema);
/// let (sql, _) = subtask_page_query(&in_schemas, &scope, 3, 10)?.build()?;
/// assert!(sql.contains(r#"FROM "subtasks" AS "s" INNER JOIN "tasks" AS "t""#), "{sql}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn subtask_page_query<'d>(
    decl: &'d TenancyDeclaration,
    scope: &TenantScope,
    page: u32,
    per_page: u32,
) -> Result<Select<'d, TenantScope>> {
    let offset = offset(page, per_page)?;
    let same_tenant =
        |a: &'static str, b: &'static str| Expr::col((a, "account_id")).equals((b, "account_id"));
    Ok(scope
        .select(decl)
        .from_as("subtasks", "s")
        .join_as(
            JoinKind::Inner,
            "tasks",
            "t",
            same_tenant("t", "s").and(Expr::col(("t", "id")).equals(("s", "task_id"))),
        )
        .join_as(
            JoinKind::Inner,
            "projects",
            "p",
            same_tenant("p", "t").and(Expr::col(("p", "id")).equals(("t", "project_id"))),
        )
        .columns([
            ("s", "id"),
            ("s", "account_id"),
            ("s", "name"),
            ("s", "is_complete"),
        ])
        .expr_as(Expr::col(("t", "name")), "task_name")
        .expr_as(Expr::col(("p", "name")), "project_name")
        .expr_subquery_as(total_query(decl, scope), "total")
        .order_by(("s", "name"), Order::Asc)
        .order_by(("s", "id"), Order::Asc)
        .limit(per_page.into())
        .offset(offset))
}

/// Page `page` (from 1) of the transaction's tenant's subtasks, `per_page` to a page, ordered
/// by name then id, each with its task's and project's names; and the tenant's total. The
/// tables are named as the transaction's pool's declaration says ([`TenantTx::declaration`]),
/// so the same call serves either strategy.
///
/// # Errors
/// a 400 [`AppError`] (nothing is sent) for a page before 1, a page size outside
/// `1..=100`, or a page starting past row 100 000; the database's error.
///
/// ```no_run
/// use rls_tenancy::{TenantPool, TenantScope, demo::{SUBTASKS_PER_PAGE, subtask_page}};
/// # async fn demo(pool: TenantPool, scope: TenantScope) -> Result<(), Box<dyn std::error::Error>> {
/// let mut tx = pool.begin(&scope).await?;
/// let page = subtask_page(&mut tx, 1, SUBTASKS_PER_PAGE).await?;
/// tx.commit().await?;
/// assert!(page.items.iter().all(|item| Some(item.account_id) == scope.id().as_i64()));
/// # Ok(()) }
/// ```
pub async fn subtask_page(tx: &mut TenantTx, page: u32, per_page: u32) -> Result<SubtaskPage> {
    let scope = tx.scope().clone();
    let decl = tx.shared_declaration();
    let query = subtask_page_query(&decl, &scope, page, per_page)?;
    let rows: Vec<(i64, i64, String, bool, String, String, i64)> = tx.fetch_all(&query).await?;
    let total = match rows.first() {
        Some(row) => row.6,
        // Past the last page no row carries the total: ask for it alone.
        None => {
            tx.fetch_one::<(i64,), _>(&total_query(&decl, &scope))
                .await?
                .0
        }
    };
    let items = rows
        .into_iter()
        .map(
            |(id, account_id, name, is_complete, task_name, project_name, _)| SubtaskItem {
                id,
                account_id,
                name,
                is_complete,
                task_name,
                project_name,
            },
        )
        .collect();
    Ok(SubtaskPage {
        tenant: scope.slug().clone(),
        page,
        per_page,
        total,
        items,
    })
}
