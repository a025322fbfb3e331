//! [`AppError`]: every failure of a request, mapped to a status code in one place.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::db::DbError;
use crate::error::Error;
use crate::query::{QueryError, StatementError};
use crate::resolve::ResolveError;

/// SQLSTATE `insufficient_privilege`: what Postgres answers when a row-level security
/// policy refuses a write (`new row violates row-level security policy`) or a grant is
/// missing.
const INSUFFICIENT_PRIVILEGE: &str = "42501";
/// SQLSTATE of a foreign key that finds no parent row.
const FOREIGN_KEY_VIOLATION: &str = "23503";
/// SQLSTATE of a duplicate key.
const UNIQUE_VIOLATION: &str = "23505";
/// SQLSTATE of an exclusion constraint clash: a conflict like a duplicate.
const EXCLUSION_VIOLATION: &str = "23P01";
/// SQLSTATE of a statement cancelled by `statement_timeout` (or a cancel request).
const QUERY_CANCELED: &str = "57014";
/// SQLSTATE of a lock not had within `lock_timeout`.
const LOCK_NOT_AVAILABLE: &str = "55P03";
/// SQLSTATE of a session ended by `idle_in_transaction_session_timeout`.
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "25P03";

/// How long a client is told to wait before retrying a 503, in seconds.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// The error type of every handler and extractor in the HTTP layer.
///
/// [`AppError::status`] is the one place that decides a status code:
///
/// | failure | status |
/// |---|---|
/// | a malformed `Host` (or several), an invalid tenant slug or id, a bad query parameter | 400, with the reason |
/// | a malformed `?page=` or one past [`crate::MAX_OFFSET`] | 400 |
/// | the application's authorization hook refused the caller ([`AppError::Forbidden`]) | 403, generic |
/// | an unknown or inactive tenant, a path that is not a tenant's, an RLS refusal (SQLSTATE 42501), a builder refusal to write another tenant's row | 404, generic |
/// | a foreign key that finds no parent (SQLSTATE 23503): a missing or another tenant's parent; also deleting a parent that still has children, which Postgres reports with the same code | 404, generic |
/// | a duplicate key (23505) or an exclusion clash (23P01) | 409, generic |
/// | other integrity or data errors from the client's values (classes 23 and 22: a check, a too-long string, bad syntax) | 400, generic (the database's message can quote key values) |
/// | no connection free in time, the database known to be down ([`DbError::Unavailable`]); the connection refused, dropped or its backend ended (SQLSTATE classes 08, 53, 57P01-57P03); a statement, lock or idle-in-transaction timeout (57014, 55P03, 25P03); too many requests in flight, the request deadline passed, shutting down, not ready ([`Unavailable`]) | 503, generic, with `Retry-After` |
/// | anything else (a statement the builder refuses to build, a closed pool) | 500, generic; the detail goes to `tracing::error!` |
///
/// **Why an RLS refusal is a 404 and not a 403.** A row of another tenant is invisible to a
/// tenant transaction, so *reading* it already answers 404. If a *write* that RLS refuses
/// answered 403, a client could tell "exists in another tenant" from "does not exist" by
/// comparing the two, which is exactly the oracle tenant isolation must not offer. So both
/// answer the same 404. A 42501 can also mean a missing grant; that is a deployment fault the
/// guard reports at start-up, and the refusal is logged with `tracing::warn!` either way.
///
/// 4xx bodies are short plain text saying what to fix (a generic phrase when the database
/// refused the values); 5xx bodies say nothing but "internal server error" (or "service
/// unavailable", with a `Retry-After` header: the failure is temporary). Bodies are never HTML, so echoed input cannot become markup.
///
/// ```
/// use axum::http::StatusCode;
/// use rls_tenancy::{Error, http::AppError};
/// let err = AppError::from("0".parse::<rls_tenancy::TenantId>().unwrap_err());
/// assert_eq!(err.status(), StatusCode::BAD_REQUEST);
/// assert_eq!(AppError::NotFound.status(), StatusCode::NOT_FOUND);
/// assert_eq!(AppError::Forbidden.status(), StatusCode::FORBIDDEN);
/// let err = AppError::from(Error::Database(sqlx::Error::PoolTimedOut));
/// assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
/// let response = axum::response::IntoResponse::into_response(err);
/// assert_eq!(response.headers()["retry-after"], "1");
/// let err = AppError::from(Error::Database(sqlx::Error::PoolClosed));
/// assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The request itself is malformed; the message says what to fix and is shown.
    #[error("{0}")]
    BadRequest(String),

    /// Nothing here for this client: no such tenant, page or row (or one it may not see).
    #[error("not found")]
    NotFound,

    /// The caller may not act for the tenant the request names (the application's
    /// [`super::Authorize`] hook said no): a 403 whose body says nothing more.
    #[error("forbidden")]
    Forbidden,

    /// A failure from the library; [`AppError::status`] decides what it means over HTTP.
    #[error(transparent)]
    Library(#[from] Error),

    /// A fault of the server or its set-up; the detail is logged, never shown.
    #[error("{0}")]
    Internal(String),

    /// The server cannot answer now but will soon: a 503 with `Retry-After`.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// Why a request was turned away with a 503 before it could be answered.
///
/// ```
/// use rls_tenancy::http::{AppError, Unavailable};
/// assert_eq!(AppError::from(Unavailable::Overloaded).status(), 503);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unavailable {
    /// More requests are in flight than the server admits (load shedding).
    #[error("too many requests in flight; shed")]
    Overloaded,
    /// The request did not finish within its deadline.
    #[error("the request did not finish within its deadline")]
    DeadlineExceeded,
    /// The server is shutting down and cut the request.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The database did not answer a readiness probe in time.
    #[error("the database is not ready")]
    NotReady,
}

impl AppError {
    /// A 400 with `message` as its body.
    ///
    /// ```
    /// use rls_tenancy::http::AppError;
    /// assert_eq!(AppError::bad_request("page must be a number").status(), 400);
    /// ```
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    /// The status code this error answers with. See [`AppError`] for the table and why.
    ///
    /// ```
    /// use rls_tenancy::http::AppError;
    /// assert_eq!(AppError::Internal("boom".into()).status(), 500);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Library(err) => library_status(err),
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Every error of the toolkit converts, through [`enum@Error`], so `?` works in handlers.
macro_rules! from_library {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for AppError {
            fn from(err: $error) -> Self {
                Self::Library(err.into())
            }
        }
    )*};
}

from_library!(
    sqlx::Error,
    crate::TenantError,
    crate::DeclarationError,
    crate::ConnectError,
    ResolveError,
    crate::guard::GuardError,
    DbError,
    QueryError,
    StatementError,
);

/// The status for a library error: the caller's input is a 400, a tenant that cannot be
/// had is a 404, everything else is the server's fault.
fn library_status(err: &Error) -> StatusCode {
    match err {
        Error::Tenant(_) => StatusCode::BAD_REQUEST,
        Error::Resolve(err) => resolve_status(err),
        // A write into another tenant: refused by the builder before RLS would refuse it,
        // and answered the same way (see the table on AppError for why).
        Error::Query(QueryError::ForeignTenantValue { .. })
        | Error::Statement(StatementError::Refused(QueryError::ForeignTenantValue { .. })) => {
            StatusCode::NOT_FOUND
        }
        Error::Database(err)
        | Error::Statement(StatementError::Database(err))
        | Error::Db(DbError::Database(err)) => sqlx_status(err),
        Error::Db(DbError::Unavailable { .. }) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn resolve_status(err: &ResolveError) -> StatusCode {
    match err {
        ResolveError::InvalidHost(_)
        | ResolveError::MissingTenantHeader { .. }
        | ResolveError::DuplicateTenantHeader { .. }
        | ResolveError::InvalidTenantHeader { .. }
        | ResolveError::MissingTenantPath { .. }
        | ResolveError::InvalidTenantPath { .. }
        | ResolveError::Tenant(_) => StatusCode::BAD_REQUEST,
        ResolveError::TenantNotFound { .. } => StatusCode::NOT_FOUND,
        ResolveError::Registry(err) => sqlx_status(err),
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn sqlx_status(err: &sqlx::Error) -> StatusCode {
    match err {
        sqlx::Error::Database(db) => database_status(db.code().as_deref()),
        // No connection in time, or the connection refused or dropped: retry later.
        sqlx::Error::PoolTimedOut
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn database_status(code: Option<&str>) -> StatusCode {
    match code {
        Some(INSUFFICIENT_PRIVILEGE | FOREIGN_KEY_VIOLATION) => StatusCode::NOT_FOUND,
        Some(UNIQUE_VIOLATION | EXCLUSION_VIOLATION) => StatusCode::CONFLICT,
        // Timeouts, and the backend or server going away: temporary, so retry later.
        Some(QUERY_CANCELED | LOCK_NOT_AVAILABLE | IDLE_IN_TRANSACTION_TIMEOUT) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Some(code)
            if code.starts_with("08") || code.starts_with("53") || code.starts_with("57P") =>
        {
            StatusCode::SERVICE_UNAVAILABLE
        }
        Some(code) if code.starts_with("22") || code.starts_with("23") => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = if status == StatusCode::SERVICE_UNAVAILABLE {
            // Expected under overload and outages: never an ERROR line per request.
            match &self {
                Self::Unavailable(Unavailable::Overloaded) => {
                    tracing::debug!(error = %self, "request shed");
                }
                _ => tracing::warn!(error = %self, detail = ?self, "request failed, retry later"),
            }
            "service unavailable".to_owned()
        } else if status.is_server_error() {
            tracing::error!(error = %self, detail = ?self, "request failed");
            "internal server error".to_owned()
        } else if status == StatusCode::NOT_FOUND {
            match &self {
                Self::Library(Error::Resolve(ResolveError::TenantNotFound { .. }))
                | Self::NotFound => {
                    tracing::debug!(error = %self, "not found");
                }
                // An RLS refusal or a missing grant: worth a look, so louder.
                _ => tracing::warn!(error = %self, "refused as not found"),
            }
            "not found".to_owned()
        } else if let Self::Library(
            Error::Database(_)
            | Error::Statement(StatementError::Database(_))
            | Error::Db(DbError::Database(_)),
        ) = &self
        {
            // The database's message can quote key values, some of another tenant's.
            tracing::debug!(error = %self, "refused by the database");
            status
                .canonical_reason()
                .unwrap_or("bad request")
                .to_lowercase()
        } else {
            tracing::debug!(error = %self, "bad request");
            self.to_string()
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    #[test]
    fn database_errors_caused_by_the_clients_data_are_never_server_errors() {
        for (code, status) in [
            ("42501", StatusCode::NOT_FOUND),
            ("23503", StatusCode::NOT_FOUND),
            ("23505", StatusCode::CONFLICT),
            ("23P01", StatusCode::CONFLICT),
            ("23514", StatusCode::BAD_REQUEST),
            ("23502", StatusCode::BAD_REQUEST),
            ("22001", StatusCode::BAD_REQUEST),
            ("22P02", StatusCode::BAD_REQUEST),
            ("22003", StatusCode::BAD_REQUEST),
            ("40001", StatusCode::INTERNAL_SERVER_ERROR),
            ("57014", StatusCode::SERVICE_UNAVAILABLE),
            ("55P03", StatusCode::SERVICE_UNAVAILABLE),
            ("25P03", StatusCode::SERVICE_UNAVAILABLE),
            ("57P01", StatusCode::SERVICE_UNAVAILABLE),
            ("57P03", StatusCode::SERVICE_UNAVAILABLE),
            ("08006", StatusCode::SERVICE_UNAVAILABLE),
            ("53300", StatusCode::SERVICE_UNAVAILABLE),
            ("42P01", StatusCode::INTERNAL_SERVER_ERROR),
        ] {
            assert_eq!(database_status(Some(code)), status, "SQLSTATE {code}");
        }
        assert_eq!(database_status(None), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[tokio::test]
    async fn a_server_error_body_says_nothing_about_its_cause() {
        let response = AppError::Internal("password=hunter2 at db:5432".into()).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], b"internal server error");
    }

    #[tokio::test]
    async fn every_unavailable_answer_carries_retry_after_and_says_nothing_else() {
        let dropped = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        for err in [
            AppError::from(Unavailable::Overloaded),
            AppError::from(Unavailable::DeadlineExceeded),
            AppError::from(Unavailable::ShuttingDown),
            AppError::from(Unavailable::NotReady),
            AppError::from(sqlx::Error::PoolTimedOut),
            AppError::from(sqlx::Error::Io(dropped)),
            AppError::from(DbError::Unavailable {
                reason: "the database was found down moments ago",
            }),
        ] {
            let response = err.into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[header::RETRY_AFTER], "1");
            let body = axum::body::to_bytes(response.into_body(), 1024)
                .await
                .unwrap();
            assert_eq!(&body[..], b"service unavailable");
        }
        let internal = AppError::Internal("boom".into()).into_response();
        assert!(!internal.headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn a_foreign_write_is_not_found_and_a_misused_builder_is_a_server_error() {
        let foreign = AppError::from(StatementError::Refused(QueryError::ForeignTenantValue {
            column: "account_id".into(),
        }));
        assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
        let misuse = AppError::from(QueryError::NoTable);
        assert_eq!(misuse.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn an_invalid_slug_is_the_clients_fault() {
        let err = AppError::from("Bad_Slug".parse::<crate::TenantSlug>().unwrap_err());
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
}
