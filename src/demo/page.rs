//! The demo's one view: a page of the tenant's subtasks, and the `?page=N` it is asked for by.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::Serialize;

use crate::db::TenantTx;
use crate::error::Result;
use crate::http::AppError;
use crate::tenant::TenantScope;

/// Subtasks on a page.
pub const PER_PAGE: u32 = 10;

/// The highest page number accepted; a page past the last one is simply empty.
pub const MAX_PAGE: u32 = 1_000_000;

/// The page a request asks for: `?page=N`, 1 when absent.
///
/// Strict, like every input: decimal digits only, no sign, no leading zero, `1..=MAX_PAGE`,
/// given at most once. Anything else is a 400 saying what to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageNumber(u32);

impl PageNumber {
    /// The first page.
    pub const FIRST: Self = Self(1);

    /// Parses the value of `page=`.
    ///
    /// # Errors
    /// [`AppError::BadRequest`] when it is not a whole number from 1 to [`MAX_PAGE`].
    ///
    /// ```
    /// use rls_tenancy::demo::PageNumber;
    /// assert_eq!(PageNumber::parse("3")?.get(), 3);
    /// for bad in ["0", "-1", "+1", "01", "abc", "1.5", "", "99999999999"] {
    ///     assert!(PageNumber::parse(bad).is_err(), "{bad}");
    /// }
    /// # Ok::<(), rls_tenancy::http::AppError>(())
    /// ```
    pub fn parse(value: &str) -> Result<Self, AppError> {
        let invalid = || {
            AppError::bad_request(format!(
                "invalid page: use a whole number from 1 to {MAX_PAGE}, such as ?page=2"
            ))
        };
        let digits =
            !value.is_empty() && value.len() <= 7 && value.bytes().all(|b| b.is_ascii_digit());
        if !digits || value.starts_with('0') {
            return Err(invalid());
        }
        match value.parse::<u32>() {
            Ok(n @ 1..=MAX_PAGE) => Ok(Self(n)),
            _ => Err(invalid()),
        }
    }

    /// The page number, from 1.
    ///
    /// ```
    /// assert_eq!(rls_tenancy::demo::PageNumber::FIRST.get(), 1);
    /// ```
    pub fn get(self) -> u32 {
        self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PageNumber {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        let query = parts.uri.query().unwrap_or_default();
        let mut pages = url::form_urlencoded::parse(query.as_bytes())
            .filter(|(key, _)| key == "page")
            .map(|(_, value)| value);
        let Some(value) = pages.next() else {
            return Ok(Self::FIRST);
        };
        if pages.next().is_some() {
            return Err(AppError::bad_request("give the page parameter once"));
        }
        Self::parse(&value)
    }
}

/// One page of a tenant's subtasks, ordered by name: the JSON of `/api/subtasks` and the
/// content of `/subtasks`.
///
/// ```
/// use rls_tenancy::demo::SubtaskPage;
/// use rls_tenancy::{TenantId, TenantScope};
/// let page = SubtaskPage {
///     tenant: TenantScope::new(TenantId::new(1)?, "tenant-1".parse()?),
///     page: 1,
///     per_page: 10,
///     total: 0,
///     items: Vec::new(),
/// };
/// let json = serde_json::to_value(&page).unwrap();
/// assert_eq!(json["tenant"]["slug"], "tenant-1");
/// assert_eq!(json["total"], 0);
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone, Serialize)]
pub struct SubtaskPage {
    /// The tenant whose subtasks these are.
    pub tenant: TenantScope,
    /// The page number, from 1.
    pub page: u32,
    /// Subtasks per page.
    pub per_page: u32,
    /// How many subtasks the tenant has in all.
    pub total: i64,
    /// The page's subtasks.
    pub items: Vec<SubtaskItem>,
}

impl SubtaskPage {
    /// The number of the last page (1 when there are no subtasks).
    ///
    /// ```
    /// # use rls_tenancy::demo::SubtaskPage;
    /// # use rls_tenancy::{TenantId, TenantScope};
    /// let page = SubtaskPage {
    ///     tenant: TenantScope::new(TenantId::new(1)?, "tenant-1".parse()?),
    ///     page: 1,
    ///     per_page: 10,
    ///     total: 25,
    ///     items: Vec::new(),
    /// };
    /// assert_eq!(page.last_page(), 3);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn last_page(&self) -> i64 {
        let per_page = i64::from(self.per_page.max(1));
        ((self.total + per_page - 1) / per_page).max(1)
    }
}

/// A subtask with its task and project, as read in the tenant's transaction.
///
/// ```
/// # fn show(item: &rls_tenancy::demo::SubtaskItem) {
/// println!("{} ({} / {})", item.name, item.task_name, item.project_name);
/// # }
/// ```
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct SubtaskItem {
    /// The subtask's tenant: always the page's tenant.
    pub account_id: i64,
    /// The subtask's id (unique within its tenant).
    pub id: i64,
    /// The subtask's name.
    pub name: String,
    /// Whether it is done.
    pub is_complete: bool,
    /// Its task's id.
    pub task_id: i64,
    /// Its task's name.
    pub task_name: String,
    /// Its task's project's id.
    pub project_id: i64,
    /// Its task's project's name.
    pub project_name: String,
}

const PAGE_QUERY: &str = "SELECT s.account_id, s.id, s.name, s.is_complete,
        t.id AS task_id, t.name AS task_name, p.id AS project_id, p.name AS project_name
    FROM app.subtasks s
    JOIN app.tasks t ON t.account_id = s.account_id AND t.id = s.task_id
    JOIN app.projects p ON p.account_id = t.account_id AND p.id = t.project_id
    ORDER BY s.name, s.id
    LIMIT $1 OFFSET $2";

const COUNT_QUERY: &str = "SELECT count(*) FROM app.subtasks";

/// Reads page `page` of the transaction's tenant's subtasks.
pub(super) async fn load(tx: &mut TenantTx, page: PageNumber) -> Result<SubtaskPage> {
    let offset = i64::from(page.get() - 1) * i64::from(PER_PAGE);
    let items: Vec<SubtaskItem> = sqlx::query_as(PAGE_QUERY)
        .bind(i64::from(PER_PAGE))
        .bind(offset)
        .fetch_all(&mut **tx)
        .await?;
    let total: i64 = sqlx::query_scalar(COUNT_QUERY).fetch_one(&mut **tx).await?;
    Ok(SubtaskPage {
        tenant: tx.scope().clone(),
        page: page.get(),
        per_page: PER_PAGE,
        total,
        items,
    })
}
