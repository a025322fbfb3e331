//! [`BeginPlan`]: the one round trip that starts a tenant transaction, and [`TxOptions`].
//!
//! `BEGIN` and every transaction-local setting (the tenant context, a placement's
//! `search_path`, timeouts) travel in one simple-query message:
//!
//! ```text
//! BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY; SELECT set_config('app.tenant_id', '7', true), ...
//! ```
//!
//! Nothing is set at session level, so a connection handed back to the pool, or a server
//! connection pgbouncer hands to another client, carries nothing of this transaction.

use std::fmt;

/// The isolation level of a tenant transaction.
///
/// ```
/// use rls_tenancy::IsolationLevel;
/// assert_eq!(IsolationLevel::Serializable.to_string(), "SERIALIZABLE");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IsolationLevel {
    /// `READ COMMITTED`, PostgreSQL's default.
    ReadCommitted,
    /// `REPEATABLE READ`: one snapshot for the whole transaction.
    RepeatableRead,
    /// `SERIALIZABLE`: as if transactions ran one at a time; may fail with `40001`.
    Serializable,
}

impl fmt::Display for IsolationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IsolationLevel::ReadCommitted => "READ COMMITTED",
            IsolationLevel::RepeatableRead => "REPEATABLE READ",
            IsolationLevel::Serializable => "SERIALIZABLE",
        })
    }
}

/// How a tenant transaction begins: its isolation level (default: the server's) and
/// whether it may write (default: it may).
///
/// ```
/// use rls_tenancy::{IsolationLevel, TxOptions};
/// let options = TxOptions::default().read_only().isolation(IsolationLevel::RepeatableRead);
/// assert!(options.is_read_only());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TxOptions {
    isolation: Option<IsolationLevel>,
    read_only: bool,
    read_write: bool,
}

impl TxOptions {
    /// A read-only transaction: any write is refused by the server (`25006`).
    ///
    /// ```
    /// # use rls_tenancy::TxOptions;
    /// assert!(TxOptions::default().read_only().is_read_only());
    /// ```
    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self.read_write = false;
        self
    }

    /// A transaction that says `READ WRITE` in its `BEGIN`: on a server in recovery (a
    /// standby, a demoted primary) the `BEGIN` itself fails (`0A000`, "cannot set
    /// transaction read-write mode during recovery"), before anything of the transaction
    /// ran, so the caller may try another server. It also overrides a
    /// `default_transaction_read_only` set on the role or database.
    ///
    /// ```
    /// # use rls_tenancy::TxOptions;
    /// let options = TxOptions::default().read_write();
    /// assert!(!options.is_read_only());
    /// assert!(options.read_write().read_only().is_read_only(), "the last one wins");
    /// ```
    pub fn read_write(mut self) -> Self {
        self.read_only = false;
        self.read_write = true;
        self
    }

    /// The transaction's isolation level.
    ///
    /// ```
    /// # use rls_tenancy::{IsolationLevel, TxOptions};
    /// let options = TxOptions::default().isolation(IsolationLevel::Serializable);
    /// assert_eq!(options.isolation_level(), Some(IsolationLevel::Serializable));
    /// ```
    pub fn isolation(mut self, level: IsolationLevel) -> Self {
        self.isolation = Some(level);
        self
    }

    /// Whether the transaction is read-only.
    ///
    /// ```
    /// # use rls_tenancy::TxOptions;
    /// assert!(!TxOptions::default().is_read_only());
    /// ```
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The isolation level asked for, if any.
    ///
    /// ```
    /// # use rls_tenancy::TxOptions;
    /// assert_eq!(TxOptions::default().isolation_level(), None);
    /// ```
    pub fn isolation_level(&self) -> Option<IsolationLevel> {
        self.isolation
    }

    /// `BEGIN` with the modes asked for.
    fn begin_statement(&self) -> String {
        let mut modes = Vec::new();
        if let Some(level) = self.isolation {
            modes.push(format!("ISOLATION LEVEL {level}"));
        }
        if self.read_only {
            modes.push("READ ONLY".to_owned());
        } else if self.read_write {
            modes.push("READ WRITE".to_owned());
        }
        if modes.is_empty() {
            "BEGIN".to_owned()
        } else {
            format!("BEGIN {}", modes.join(", "))
        }
    }
}

/// The statement that starts one tenant transaction: `BEGIN` with its [`TxOptions`], then
/// every transaction-local setting in one `SELECT`. Each step of the request path adds its
/// settings ([`BeginPlan::set`]); the values are SQL string literals made from validated
/// types by `quote_literal`, never free text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BeginPlan {
    options: TxOptions,
    deallocate_all: bool,
    settings: Vec<(String, String)>,
    calls: Vec<String>,
}

impl BeginPlan {
    /// A plan beginning with `options` and no settings yet.
    pub(crate) fn new(options: TxOptions) -> Self {
        Self {
            options,
            deallocate_all: false,
            settings: Vec::new(),
            calls: Vec::new(),
        }
    }

    /// Drops every prepared statement of the server connection right after `BEGIN`: behind
    /// a transaction-mode pooler the connection may have served another client, whose
    /// named statements would clash with this transaction's.
    pub(crate) fn deallocate_all(&mut self) {
        self.deallocate_all = true;
    }

    /// Adds transaction-local settings, each `(name, value)` already an SQL string literal.
    pub(crate) fn set(&mut self, settings: impl IntoIterator<Item = (String, String)>) {
        self.settings.extend(settings);
    }

    /// Adds a call to the `SELECT` after the settings: an SQL expression made by the toolkit
    /// from validated types (the signed tenant context's `rls_tenancy.enter(...)`).
    pub(crate) fn call(&mut self, expression: String) {
        self.calls.push(expression);
    }

    /// The one simple-query message.
    pub(crate) fn sql(&self) -> String {
        let mut begin = self.options.begin_statement();
        if self.deallocate_all {
            begin.push_str("; DEALLOCATE ALL");
        }
        if self.settings.is_empty() && self.calls.is_empty() {
            return begin;
        }
        let calls: Vec<String> = self
            .settings
            .iter()
            .map(|(name, value)| format!("set_config({name}, {value}, true)"))
            .chain(self.calls.iter().cloned())
            .collect();
        format!("{begin}; SELECT {}", calls.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_carries_begin_and_every_local_setting() {
        let mut plan = BeginPlan::new(
            TxOptions::default()
                .read_only()
                .isolation(IsolationLevel::Serializable),
        );
        plan.set([("'app.tenant_id'".to_owned(), "'7'".to_owned())]);
        plan.set([("'search_path'".to_owned(), "'\"t_7\"'".to_owned())]);
        assert_eq!(
            plan.sql(),
            "BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY; SELECT set_config('app.tenant_id', '7', true), set_config('search_path', '\"t_7\"', true)"
        );
        assert_eq!(BeginPlan::new(TxOptions::default()).sql(), "BEGIN");
        assert_eq!(
            BeginPlan::new(TxOptions::default().read_write()).sql(),
            "BEGIN READ WRITE"
        );
        let mut pooled = BeginPlan::new(TxOptions::default());
        pooled.deallocate_all();
        pooled.set([("'app.tenant_id'".to_owned(), "'7'".to_owned())]);
        assert_eq!(
            pooled.sql(),
            "BEGIN; DEALLOCATE ALL; SELECT set_config('app.tenant_id', '7', true)"
        );
        let mut signed = BeginPlan::new(TxOptions::default());
        signed.set([("'lock_timeout'".to_owned(), "'2s'".to_owned())]);
        signed.call("rls_tenancy.enter('app.tenant_id', '7')".to_owned());
        assert_eq!(
            signed.sql(),
            "BEGIN; SELECT set_config('lock_timeout', '2s', true), rls_tenancy.enter('app.tenant_id', '7')"
        );
    }
}
