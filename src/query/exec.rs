//! Running statements: in the tenant transaction of the same tenant, or through the
//! cross-tenant path on a connection the caller owns.

use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use sea_query_sqlx::SqlxValues;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::{AssertSqlSafe, FromRow};
use tracing::Instrument;

use super::scoping::{CrossTenant, Scoping};
use super::{Delete, Insert, QueryError, Select, StatementError, Update};
use crate::db::TenantTx;
use crate::tenant::TenantScope;

/// What running a statement returns: its result, or why it was refused or failed.
type Result<T, E = StatementError> = std::result::Result<T, E>;

mod sealed {
    #[allow(unreachable_pub)]
    pub trait Sealed {}
    impl<S: super::Scoping> Sealed for super::Select<'_, S> {}
    impl<S: super::Scoping> Sealed for super::Insert<'_, S> {}
    impl<S: super::Scoping> Sealed for super::Update<'_, S> {}
    impl<S: super::Scoping> Sealed for super::Delete<'_, S> {}
}

/// A statement of the builder: [`Select`], [`Insert`], [`Update`] or [`Delete`]. Sealed.
///
/// Scoped statements (`Scoping = TenantScope`) run through [`TenantTx::fetch_all`] and its
/// siblings ([`TenantTx::fetch`] streams); cross-tenant ones through
/// [`CrossTenant::fetch_all`] and its siblings.
///
/// ```
/// use rls_tenancy::{Statement, TenancyDeclaration, TenantId, TenantScope};
/// let decl = TenancyDeclaration::reference()?;
/// let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
/// let select = scope.select(&decl).from("tasks").column("id");
/// assert_eq!(Statement::scoping(&select), &scope);
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
pub trait Statement: sealed::Sealed {
    /// [`TenantScope`] or [`CrossTenant`].
    type Scoping: Scoping;

    /// What the statement is scoped to.
    fn scoping(&self) -> &Self::Scoping;

    /// The SQL and its bound values.
    ///
    /// # Errors
    /// [`QueryError`] when the statement was built wrongly.
    fn build(&self) -> Result<(String, SqlxValues), QueryError>;
}

impl<S: Scoping> Statement for Select<'_, S> {
    type Scoping = S;
    fn scoping(&self) -> &S {
        Select::scoping(self)
    }
    fn build(&self) -> Result<(String, SqlxValues), QueryError> {
        Select::build(self)
    }
}

impl<S: Scoping> Statement for Insert<'_, S> {
    type Scoping = S;
    fn scoping(&self) -> &S {
        Insert::scoping(self)
    }
    fn build(&self) -> Result<(String, SqlxValues), QueryError> {
        Insert::build(self)
    }
}

impl<S: Scoping> Statement for Update<'_, S> {
    type Scoping = S;
    fn scoping(&self) -> &S {
        Update::scoping(self)
    }
    fn build(&self) -> Result<(String, SqlxValues), QueryError> {
        Update::build(self)
    }
}

impl<S: Scoping> Statement for Delete<'_, S> {
    type Scoping = S;
    fn scoping(&self) -> &S {
        Delete::scoping(self)
    }
    fn build(&self) -> Result<(String, SqlxValues), QueryError> {
        Delete::build(self)
    }
}

/// A built statement, ready to run on a connection: the one place the builder's SQL meets
/// sqlx.
struct Prepared {
    sql: String,
    values: SqlxValues,
    /// Whether sqlx may name and cache the statement on the connection: not behind a
    /// transaction-mode pooler, where only unnamed statements are safe.
    persistent: bool,
}

impl Prepared {
    async fn fetch_all<T>(self, conn: &mut PgConnection) -> sqlx::Result<Vec<T>>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        sqlx::query_as_with(AssertSqlSafe(self.sql), self.values)
            .persistent(self.persistent)
            .fetch_all(conn)
            .await
    }

    async fn fetch_one<T>(self, conn: &mut PgConnection) -> sqlx::Result<T>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        sqlx::query_as_with(AssertSqlSafe(self.sql), self.values)
            .persistent(self.persistent)
            .fetch_one(conn)
            .await
    }

    async fn fetch_optional<T>(self, conn: &mut PgConnection) -> sqlx::Result<Option<T>>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        sqlx::query_as_with(AssertSqlSafe(self.sql), self.values)
            .persistent(self.persistent)
            .fetch_optional(conn)
            .await
    }

    async fn execute(self, conn: &mut PgConnection) -> sqlx::Result<u64> {
        Ok(sqlx::query_with(AssertSqlSafe(self.sql), self.values)
            .persistent(self.persistent)
            .execute(conn)
            .await?
            .rows_affected())
    }

    fn fetch<'c, T>(self, conn: &'c mut PgConnection) -> BoxStream<'c, sqlx::Result<T>>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin + 'c,
    {
        sqlx::query_as_with(AssertSqlSafe(self.sql), self.values)
            .persistent(self.persistent)
            .fetch(conn)
    }
}

impl TenantTx {
    /// Builds `statement` after checking it belongs to this transaction's tenant.
    fn prepare<St>(&self, statement: &St) -> Result<Prepared>
    where
        St: Statement<Scoping = TenantScope> + ?Sized,
    {
        let built_for = statement.scoping();
        if built_for != self.scope() {
            return Err(QueryError::ScopeMismatch {
                statement: built_for.id(),
                other: self.scope().id(),
            }
            .into());
        }
        let (sql, values) = statement.build()?;
        Ok(Prepared {
            sql,
            values,
            persistent: self.persistent_statements(),
        })
    }

    fn span(&self) -> tracing::Span {
        tracing::debug_span!("tenant_statement", tenant = %self.scope().id())
    }

    /// Runs a scoped statement and returns every row.
    ///
    /// # Errors
    /// [`QueryError::ScopeMismatch`] (nothing is sent) when the statement was built for
    /// another tenant; its build error; the database's error.
    ///
    /// ```no_run
    /// # use rls_tenancy::{TenancyDeclaration, TenantPool, TenantScope};
    /// # async fn demo(pool: TenantPool, scope: TenantScope) -> rls_tenancy::Result<()> {
    /// let decl = TenancyDeclaration::reference()?;
    /// let mut tx = pool.begin(&scope).await?;
    /// let names: Vec<(String,)> = tx.fetch_all(&scope.select(&decl).from("projects").column("name")).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn fetch_all<T, St>(&mut self, statement: &St) -> Result<Vec<T>>
    where
        St: Statement<Scoping = TenantScope> + ?Sized,
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let prepared = self.prepare(statement)?;
        let span = self.span();
        Ok(prepared.fetch_all(self).instrument(span).await?)
    }

    /// Runs a scoped statement that returns exactly one row.
    ///
    /// # Errors
    /// As [`TenantTx::fetch_all`], and `RowNotFound` when there is no row.
    ///
    /// ```no_run
    /// # use rls_tenancy::{TenancyDeclaration, TenantPool, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # async fn demo(pool: TenantPool, scope: TenantScope) -> rls_tenancy::Result<()> {
    /// # let decl = TenancyDeclaration::reference()?;
    /// let mut tx = pool.begin(&scope).await?;
    /// let (n,): (i64,) = tx.fetch_one(&scope.select(&decl).from("tasks").expr(Expr::col("id").count())).await?;
    /// # Ok(()) }
    /// ```
    pub async fn fetch_one<T, St>(&mut self, statement: &St) -> Result<T>
    where
        St: Statement<Scoping = TenantScope> + ?Sized,
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let prepared = self.prepare(statement)?;
        let span = self.span();
        Ok(prepared.fetch_one(self).instrument(span).await?)
    }

    /// Runs a scoped statement that returns at most one row.
    ///
    /// # Errors
    /// As [`TenantTx::fetch_all`].
    ///
    /// ```no_run
    /// # use rls_tenancy::{Filtered, TenancyDeclaration, TenantPool, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # async fn demo(pool: TenantPool, scope: TenantScope) -> rls_tenancy::Result<()> {
    /// # let decl = TenancyDeclaration::reference()?;
    /// let mut tx = pool.begin(&scope).await?;
    /// let project: Option<(String,)> = tx
    ///     .fetch_optional(&scope.select(&decl).from("projects").column("name").and_where(Expr::col("id").eq(1)))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn fetch_optional<T, St>(&mut self, statement: &St) -> Result<Option<T>>
    where
        St: Statement<Scoping = TenantScope> + ?Sized,
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        let prepared = self.prepare(statement)?;
        let span = self.span();
        Ok(prepared.fetch_optional(self).instrument(span).await?)
    }

    /// Runs a scoped statement and streams its rows as they arrive, without holding them
    /// all in memory. The stream borrows the transaction: nothing else runs in it until the
    /// stream is dropped. A refused statement is the stream's one item, and nothing is sent.
    ///
    /// # Errors
    /// Each item: as [`TenantTx::fetch_all`].
    ///
    /// ```no_run
    /// # use rls_tenancy::{TenancyDeclaration, TenantPool, TenantScope};
    /// use futures_util::TryStreamExt;
    /// # async fn demo(pool: TenantPool, scope: TenantScope) -> rls_tenancy::Result<()> {
    /// # let decl = TenancyDeclaration::reference()?;
    /// let mut tx = pool.begin(&scope).await?;
    /// let everything = scope.select(&decl).from("subtasks").columns(["id", "name"]);
    /// let mut rows = tx.fetch::<(i64, String), _>(&everything);
    /// while let Some((id, name)) = rows.try_next().await? {
    ///     println!("{id} {name}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn fetch<'t, T, St>(&'t mut self, statement: &St) -> BoxStream<'t, Result<T>>
    where
        St: Statement<Scoping = TenantScope> + ?Sized,
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin + 't,
    {
        match self.prepare(statement) {
            Ok(prepared) => {
                tracing::debug!(tenant = %self.scope().id(), "streaming tenant statement");
                prepared.fetch(self).map_err(StatementError::from).boxed()
            }
            Err(refused) => stream::once(async move { Err(refused) }).boxed(),
        }
    }

    /// Runs a scoped statement and returns how many rows it affected.
    ///
    /// # Errors
    /// As [`TenantTx::fetch_all`].
    ///
    /// ```no_run
    /// # use rls_tenancy::{Filtered, TenancyDeclaration, TenantPool, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # async fn demo(pool: TenantPool, scope: TenantScope) -> rls_tenancy::Result<()> {
    /// # let decl = TenancyDeclaration::reference()?;
    /// let mut tx = pool.begin(&scope).await?;
    /// let done = tx.execute(&scope.update(&decl, "tasks").value("is_complete", true).and_where(Expr::col("id").eq(3))).await?;
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute<St>(&mut self, statement: &St) -> Result<u64>
    where
        St: Statement<Scoping = TenantScope> + ?Sized,
    {
        let prepared = self.prepare(statement)?;
        let span = self.span();
        Ok(prepared.execute(self).instrument(span).await?)
    }
}

impl CrossTenant {
    /// Builds a cross-tenant statement and leaves a warning in the log.
    fn prepare<St>(statement: &St) -> Result<Prepared>
    where
        St: Statement<Scoping = CrossTenant> + ?Sized,
    {
        let (sql, values) = statement.build().map_err(StatementError::Refused)?;
        tracing::warn!(reason = statement.scoping().reason(), sql = %sql, "cross-tenant statement");
        Ok(Prepared {
            sql,
            values,
            persistent: true,
        })
    }

    /// Runs a cross-tenant statement on the caller's connection and returns every row.
    ///
    /// # Errors
    /// The statement's build error; the database's error.
    ///
    /// ```no_run
    /// # use rls_tenancy::{CrossTenant, TenancyDeclaration};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # async fn demo(conn: &mut sqlx::PgConnection) -> rls_tenancy::Result<()> {
    /// let decl = TenancyDeclaration::reference()?;
    /// let report = CrossTenant::new("usage report").select(&decl).from("projects").column("account_id").expr(Expr::col("id").count()).group_by("account_id");
    /// let rows: Vec<(i64, i64)> = CrossTenant::fetch_all(conn, &report).await?;
    /// # Ok(()) }
    /// ```
    pub async fn fetch_all<T, St>(conn: &mut PgConnection, statement: &St) -> Result<Vec<T>>
    where
        St: Statement<Scoping = CrossTenant> + ?Sized,
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        Ok(Self::prepare(statement)?.fetch_all(conn).await?)
    }

    /// Runs a cross-tenant statement that returns at most one row.
    ///
    /// # Errors
    /// As [`CrossTenant::fetch_all`].
    ///
    /// ```no_run
    /// # use rls_tenancy::{CrossTenant, TenancyDeclaration};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # async fn demo(conn: &mut sqlx::PgConnection) -> rls_tenancy::Result<()> {
    /// # let decl = TenancyDeclaration::reference()?;
    /// let count = CrossTenant::new("admin dashboard").select(&decl).from("users").expr(Expr::col("id").count());
    /// let total: Option<(i64,)> = CrossTenant::fetch_optional(conn, &count).await?;
    /// # Ok(()) }
    /// ```
    pub async fn fetch_optional<T, St>(conn: &mut PgConnection, statement: &St) -> Result<Option<T>>
    where
        St: Statement<Scoping = CrossTenant> + ?Sized,
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin,
    {
        Ok(Self::prepare(statement)?.fetch_optional(conn).await?)
    }

    /// Runs a cross-tenant statement and returns how many rows it affected.
    ///
    /// # Errors
    /// As [`CrossTenant::fetch_all`].
    ///
    /// ```no_run
    /// # use rls_tenancy::{CrossTenant, Filtered, TenancyDeclaration};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # async fn demo(conn: &mut sqlx::PgConnection) -> rls_tenancy::Result<()> {
    /// # let decl = TenancyDeclaration::reference()?;
    /// let purge = CrossTenant::new("retention job").delete(&decl, "subtasks").and_where(Expr::col("is_complete").eq(true));
    /// let removed = CrossTenant::execute(conn, &purge).await?;
    /// # Ok(()) }
    /// ```
    pub async fn execute<St>(conn: &mut PgConnection, statement: &St) -> Result<u64>
    where
        St: Statement<Scoping = CrossTenant> + ?Sized,
    {
        Ok(Self::prepare(statement)?.execute(conn).await?)
    }
}
