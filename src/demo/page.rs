//! The `?page=N` the demo's list view is asked for by.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::subtasks::{MAX_OFFSET, SUBTASKS_PER_PAGE};
use crate::http::AppError;

/// The highest page number accepted: the last page [`crate::subtask_page`] serves with
/// [`SUBTASKS_PER_PAGE`] to a page. A page past the tenant's last one is simply empty.
// MAX_OFFSET / SUBTASKS_PER_PAGE is 10 000, so the cast cannot truncate.
pub const MAX_PAGE: u32 = (MAX_OFFSET / SUBTASKS_PER_PAGE as u64) as u32 + 1;

/// The page a request asks for: `?page=N`, 1 when absent.
///
/// Strict, like every input: decimal digits only, no sign, no leading zero,
/// `1..=`[`MAX_PAGE`], given at most once. Anything else is a 400 saying what to send.
///
/// ```
/// use rls_tenancy::demo::{MAX_PAGE, PageNumber};
/// assert!(PageNumber::parse(&MAX_PAGE.to_string()).is_ok());
/// assert!(PageNumber::parse(&(MAX_PAGE + 1).to_string()).is_err());
/// ```
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
