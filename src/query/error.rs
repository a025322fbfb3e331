//! [`QueryError`]: why the scoped query builder refused to build or run a statement.

use crate::tenant::TenantId;

/// Why running a scoped statement failed: refused before anything was sent, or the
/// database's error.
///
/// ```
/// use rls_tenancy::{QueryError, StatementError};
/// let err = StatementError::from(QueryError::NoTable);
/// assert!(matches!(err, StatementError::Refused(QueryError::NoTable)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatementError {
    /// The builder refused the statement; nothing was sent.
    #[error("refused statement: {0}")]
    Refused(#[from] QueryError),
    /// The database's error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Why a statement was refused. These are programming errors (HTTP 500 with a generic body),
/// never a reason to run the statement anyway; each message says what to write instead.
///
/// ```
/// use rls_tenancy::{QueryError, TenancyDeclaration, TenantId, TenantScope};
/// let decl = TenancyDeclaration::reference()?;
/// let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
/// let refused = scope.select(&decl).from("accounts").build();
/// assert!(matches!(refused, Err(QueryError::UnknownTable { .. })));
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The table is neither a declared tenant table nor a declared global table.
    #[error(
        "{table:?} is not a declared tenant or global table: the scoped builder reads only the tables listed in the declaration (policies/tenancy.toml)"
    )]
    UnknownTable {
        /// The name given.
        table: String,
    },
    /// A write to, or a row lock on, a global table.
    #[error(
        "{table:?} is a global table, read-only through the builder: change shared data in a migration, and lock only tenant tables"
    )]
    GlobalTableWrite {
        /// The global table.
        table: String,
    },
    /// An alias or column name is not a plain identifier.
    #[error("invalid {what} {name:?}: use lowercase ASCII letters, digits and underscores")]
    InvalidName {
        /// What the name was for.
        what: &'static str,
        /// The name given.
        name: String,
    },
    /// Two items of one FROM clause have the same name.
    #[error("{name:?} names two tables in one statement: give one of them an alias")]
    DuplicateName {
        /// The name used twice.
        name: String,
    },
    /// A select with nothing in FROM.
    #[error("the select reads no table: call from(...) first")]
    NoTable,
    /// A sub-select inside an expression, which the builder cannot scope.
    #[error(
        "a raw sub-select is not accepted in an expression: pass a scoped select to and_where_in, and_where_exists or from_subquery"
    )]
    RawSubquery,
    /// Custom SQL text (`Expr::cust`, custom keywords and functions, non-operator custom
    /// operators), which could name any table or inline any value.
    #[error(
        "custom SQL is not accepted: build the expression from columns, values and sea-query's functions"
    )]
    RawSql,
    /// A value written into the SQL text instead of being bound.
    #[error("an inlined constant is not accepted: values are always bound (use Expr::val)")]
    InlinedValue,
    /// A function that is not on the allow-list ([`crate::ALLOWED_FUNCTIONS`]): it could
    /// read other tables, change settings or outlive the transaction.
    #[error(
        "function {name:?} is not on the builder's allow-list (rls_tenancy::ALLOWED_FUNCTIONS): compute it in Rust or run that statement through sqlx in the tenant transaction"
    )]
    FunctionNotAllowed {
        /// The function's name as it would be written into the SQL.
        name: String,
    },
    /// An expression whose insides sea-query does not expose, so it cannot be checked.
    #[error("{what} cannot be checked for sub-selects and is not accepted by the scoped builder")]
    Uncheckable {
        /// The kind of expression.
        what: &'static str,
    },
    /// An unsigned number too large to bind as a Postgres `bigint`.
    #[error("{value} is out of range: values bound as bigint must be at most 9223372036854775807")]
    OutOfRange {
        /// The value.
        value: u64,
    },
    /// An update that sets the tenant column.
    #[error("the tenant column {column:?} cannot be updated: rows never move between tenants")]
    TenantColumnUpdate {
        /// The tenant column.
        column: String,
    },
    /// An insert that supplies a tenant column value other than its scope's tenant.
    #[error(
        "the insert supplies {column:?} for another tenant (or as an expression): leave the tenant column out, the builder sets it"
    )]
    ForeignTenantValue {
        /// The tenant column.
        column: String,
    },
    /// An ON CONFLICT target without the tenant column: uniqueness is per tenant, and a
    /// conflict on a key without the tenant column would be decided across tenants.
    #[error(
        "the ON CONFLICT target must include the tenant column {column:?}: name it with the other key columns, e.g. Conflict::update([{column:?}, \"email\"], ...)"
    )]
    ConflictWithoutTenant {
        /// The tenant column.
        column: String,
    },
    /// An insert given both rows and a select.
    #[error("an insert takes rows (values) or one select (select_from), not both")]
    MixedInsertSource,
    /// `skip_locked()` or `nowait()` without a row lock.
    #[error("skip_locked() and nowait() qualify a row lock: call for_update() or for_share() too")]
    NoRowLock,
    /// An insert row (or the select it inserts) whose width differs from the column list.
    #[error("an insert row (or its select) has {found} values for {expected} columns")]
    ValueCount {
        /// How many columns were named.
        expected: usize,
        /// How many values the row has.
        found: usize,
    },
    /// An insert without rows or an update without values.
    #[error("the {statement} sets no values: add values first")]
    NoValues {
        /// `insert` or `update`.
        statement: &'static str,
    },
    /// A statement (or sub-select) of one tenant used with another tenant's transaction or
    /// statement.
    #[error(
        "a statement built for tenant {statement} cannot be used with tenant {other}: build it from the same scope"
    )]
    ScopeMismatch {
        /// The tenant the statement was built for.
        statement: TenantId,
        /// The tenant of the transaction or outer statement.
        other: TenantId,
    },
}
