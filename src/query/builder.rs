//! The plumbing every statement of the builder shares, kept in one place so that
//! [`Select`](super::Select), [`Insert`](super::Insert), [`Update`](super::Update) and
//! [`Delete`](super::Delete) cannot drift apart: who the statement is for, the declaration it
//! reads, the first-mistake rule (`step`), and the RETURNING list with its public
//! [`Returning`] trait. The WHERE clause and its [`Filtered`](super::Filtered) trait live in
//! `filter.rs`; running statements in `exec.rs`.

use sea_query::ReturningClause;

use super::QueryError;
use super::scoping::Scoping;
use super::table::names_of;
use crate::policy::{Ident, TenancyDeclaration};

pub(crate) mod sealed {
    use super::super::filter::Filter;
    use super::{Base, Columns, QueryError, Scoping};

    /// A statement of the builder. Sealed: only this module's statements exist.
    #[allow(unreachable_pub)]
    pub trait Builder<'d>: Sized {
        /// [`crate::TenantScope`] or [`crate::CrossTenant`].
        type Scoping: Scoping;

        /// What every statement carries.
        fn base(&mut self) -> &mut Base<'d, Self::Scoping>;

        /// Runs one building step unless an earlier one failed, and keeps its error: the
        /// first mistake is reported by `build` or at execution, so nothing half-built runs.
        fn step(mut self, f: impl FnOnce(&mut Self) -> Result<(), QueryError>) -> Self {
            if self.base().error.is_none()
                && let Err(e) = f(&mut self)
            {
                self.base().error = Some(e);
            }
            self
        }
    }

    /// A statement with a WHERE clause.
    #[allow(unreachable_pub)]
    pub trait HasFilter<'d>: Builder<'d> {
        /// The statement's conditions.
        fn filter(&mut self) -> &mut Filter<'d, Self::Scoping>;
    }

    /// A statement with a RETURNING list.
    #[allow(unreachable_pub)]
    pub trait HasReturning<'d>: Builder<'d> {
        /// The statement's RETURNING columns.
        fn returning_list(&mut self) -> &mut Columns;
    }
}

/// What every statement carries: who it is for, the declaration it reads, and the first
/// mistake made while building it.
#[derive(Debug, Clone)]
#[allow(unreachable_pub)]
pub struct Base<'d, S> {
    pub(crate) scoping: S,
    pub(crate) decl: &'d TenancyDeclaration,
    error: Option<QueryError>,
}

impl<'d, S: Scoping> Base<'d, S> {
    /// A statement for `scoping` over `decl`, failed from the start when `error` is given
    /// (an unknown table named by the constructor).
    pub(crate) fn new(scoping: S, decl: &'d TenancyDeclaration, error: Option<QueryError>) -> Self {
        Self {
            scoping,
            decl,
            error,
        }
    }

    /// The first mistake made while building, if any.
    pub(crate) fn check(&self) -> Result<(), QueryError> {
        match &self.error {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }
}

/// A list of validated column names (the RETURNING list).
#[derive(Debug, Clone, Default)]
#[allow(unreachable_pub)]
pub struct Columns(Vec<Ident>);

impl Columns {
    /// Appends validated columns.
    pub(crate) fn extend<'c>(
        &mut self,
        columns: impl IntoIterator<Item = &'c str>,
    ) -> Result<(), QueryError> {
        self.0.extend(names_of(columns)?);
        Ok(())
    }

    /// `RETURNING "a", "b"`, or nothing when the list is empty.
    pub(crate) fn clause(&self) -> Option<ReturningClause> {
        (!self.0.is_empty()).then(|| {
            sea_query::Query::returning().columns(self.0.iter().map(|c| c.as_str().to_owned()))
        })
    }
}

/// `RETURNING` for [`Insert`](super::Insert), [`Update`](super::Update) and
/// [`Delete`](super::Delete): one implementation for the three. In the
/// [prelude](crate::prelude).
///
/// ```
/// use rls_tenancy::{Returning, TenancyDeclaration, TenantId, TenantScope};
/// let decl = TenancyDeclaration::reference()?;
/// let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
/// let (sql, _) = scope.delete(&decl, "tasks").returning(["id"]).build()?;
/// assert_eq!(sql, r#"DELETE FROM "app"."tasks" WHERE "tasks"."account_id" = $1 RETURNING "id""#);
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
pub trait Returning<'d>: sealed::HasReturning<'d> {
    /// Returns these columns of the written rows (validated names).
    ///
    /// ```
    /// # use rls_tenancy::{Returning, TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.insert(&decl, "projects").columns(["name"]).values(["A"]).returning(["id", "name"]).build()?;
    /// assert_eq!(sql, r#"INSERT INTO "app"."projects" ("account_id", "name") VALUES ($1, $2) RETURNING "id", "name""#);
    /// let (sql, _) = scope.update(&decl, "tasks").value("is_complete", true).returning(["id"]).build()?;
    /// assert_eq!(sql, r#"UPDATE "app"."tasks" SET "is_complete" = $1 WHERE "tasks"."account_id" = $2 RETURNING "id""#);
    /// let (sql, _) = scope.delete(&decl, "tasks").returning(["id"]).build()?;
    /// assert_eq!(sql, r#"DELETE FROM "app"."tasks" WHERE "tasks"."account_id" = $1 RETURNING "id""#);
    /// assert!(scope.delete(&decl, "tasks").returning(["id; DROP"]).build().is_err());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    fn returning<'c>(self, columns: impl IntoIterator<Item = &'c str>) -> Self {
        self.step(|q| q.returning_list().extend(columns))
    }
}

impl<'d, T: sealed::HasReturning<'d>> Returning<'d> for T {}
