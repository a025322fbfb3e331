//! [`TxTimeouts`]: the statement, lock and idle-in-transaction deadlines of every tenant
//! transaction, set transaction-locally in its `BEGIN` round trip.

use std::time::Duration;

use crate::policy::quote_literal;

/// The database-side deadlines of a tenant transaction. They are set with
/// `set_config(..., is_local => true)` in the same round trip as `BEGIN`, so they cost
/// nothing extra, hold for that transaction only and never leak to a pooled connection.
///
/// | setting | default | past it |
/// |---|---|---|
/// | `statement_timeout` | 5 s | the statement is cancelled (SQLSTATE 57014) |
/// | `lock_timeout` | 2 s | waiting for a lock stops (55P03) |
/// | `idle_in_transaction_session_timeout` | 10 s | the server ends the session of a transaction left idle (25P03) |
///
/// Each is a temporary failure, which the HTTP layer answers with a 503 and `Retry-After`.
/// `Duration::ZERO` turns one off (PostgreSQL's `0`); values are whole milliseconds.
///
/// ```
/// use std::time::Duration;
/// use rls_tenancy::TxTimeouts;
/// let timeouts = TxTimeouts::default().statement(Duration::from_secs(30)).lock(Duration::ZERO);
/// assert_eq!(timeouts.get_statement(), Duration::from_secs(30));
/// assert_eq!(timeouts.get_idle_in_transaction(), Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TxTimeouts {
    statement: Duration,
    lock: Duration,
    idle_in_transaction: Duration,
}

impl Default for TxTimeouts {
    /// 5 s per statement, 2 s for a lock, 10 s idle inside a transaction.
    fn default() -> Self {
        Self {
            statement: Duration::from_secs(5),
            lock: Duration::from_secs(2),
            idle_in_transaction: Duration::from_secs(10),
        }
    }
}

impl TxTimeouts {
    /// `statement_timeout`: the longest one statement may run.
    ///
    /// ```
    /// # use rls_tenancy::TxTimeouts;
    /// let timeouts = TxTimeouts::default().statement(std::time::Duration::from_secs(1));
    /// ```
    pub fn statement(mut self, timeout: Duration) -> Self {
        self.statement = timeout;
        self
    }

    /// `lock_timeout`: the longest a statement waits for a lock.
    ///
    /// ```
    /// # use rls_tenancy::TxTimeouts;
    /// let timeouts = TxTimeouts::default().lock(std::time::Duration::from_millis(500));
    /// ```
    pub fn lock(mut self, timeout: Duration) -> Self {
        self.lock = timeout;
        self
    }

    /// `idle_in_transaction_session_timeout`: the longest the transaction may sit idle
    /// between statements before the server ends its session.
    ///
    /// ```
    /// # use rls_tenancy::TxTimeouts;
    /// let timeouts = TxTimeouts::default().idle_in_transaction(std::time::Duration::from_secs(60));
    /// ```
    pub fn idle_in_transaction(mut self, timeout: Duration) -> Self {
        self.idle_in_transaction = timeout;
        self
    }

    /// The statement timeout.
    ///
    /// ```
    /// # use rls_tenancy::TxTimeouts;
    /// assert_eq!(TxTimeouts::default().get_statement().as_secs(), 5);
    /// ```
    pub fn get_statement(&self) -> Duration {
        self.statement
    }

    /// The lock timeout.
    ///
    /// ```
    /// # use rls_tenancy::TxTimeouts;
    /// assert_eq!(TxTimeouts::default().get_lock().as_secs(), 2);
    /// ```
    pub fn get_lock(&self) -> Duration {
        self.lock
    }

    /// The idle-in-transaction timeout.
    ///
    /// ```
    /// # use rls_tenancy::TxTimeouts;
    /// assert_eq!(TxTimeouts::default().get_idle_in_transaction().as_secs(), 10);
    /// ```
    pub fn get_idle_in_transaction(&self) -> Duration {
        self.idle_in_transaction
    }

    /// The `BEGIN` plan's settings, as SQL string literals: names are constants, values
    /// whole milliseconds.
    pub(crate) fn settings(&self) -> [(String, String); 3] {
        [
            ("statement_timeout", self.statement),
            ("lock_timeout", self.lock),
            (
                "idle_in_transaction_session_timeout",
                self.idle_in_transaction,
            ),
        ]
        .map(|(name, timeout)| (quote_literal(name), quote_literal(&millis(timeout))))
    }
}

/// A duration as PostgreSQL's integer milliseconds, capped at its largest value.
fn millis(timeout: Duration) -> String {
    timeout.as_millis().min(i32::MAX as u128).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_whole_milliseconds_capped_at_what_postgres_takes() {
        let settings = TxTimeouts::default()
            .statement(Duration::from_millis(1500))
            .lock(Duration::ZERO)
            .idle_in_transaction(Duration::MAX)
            .settings();
        assert_eq!(
            settings,
            [
                ("'statement_timeout'".into(), "'1500'".into()),
                ("'lock_timeout'".into(), "'0'".into()),
                (
                    "'idle_in_transaction_session_timeout'".into(),
                    "'2147483647'".into()
                ),
            ]
        );
    }
}
