//! [`Conflict`]: what an insert does when a row with the same key exists (`ON CONFLICT`).

use sea_query::{Expr, OnConflict};

use super::QueryError;
use super::check::check_expr;
use super::table::{WriteTable, name_of, names_of};
use crate::policy::Ident;
use crate::tenant::TenantId;

/// The `ON CONFLICT` clause of an [`Insert`](crate::Insert): an upsert within the tenant.
///
/// The conflict target must name the tenant column (uniqueness is per tenant: `UNIQUE
/// (account_id, email)`), else [`Insert::on_conflict`](crate::Insert::on_conflict) refuses
/// it with [`QueryError::ConflictWithoutTenant`]: a key without the tenant column would let
/// one tenant's insert collide with, and learn about, another tenant's row. The tenant column
/// is never among the columns updated, and a scoped upsert's `DO UPDATE` carries the tenant
/// predicate too.
///
/// ```
/// use rls_tenancy::{Conflict, TenancyDeclaration, TenantId, TenantScope};
/// let decl = TenancyDeclaration::reference()?;
/// let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
/// let (sql, _) = scope
///     .insert(&decl, "users")
///     .columns(["email", "first_name", "last_name", "password"])
///     .values(["ada@acme.test", "Ada", "Lovelace", "x"])
///     .on_conflict(Conflict::update(["account_id", "email"], ["first_name", "last_name"]))
///     .build()?;
/// assert_eq!(
///     sql,
///     r#"INSERT INTO "app"."users" ("account_id", "email", "first_name", "last_name", "password") VALUES ($1, $2, $3, $4, $5) ON CONFLICT ("account_id", "email") DO UPDATE SET "first_name" = "excluded"."first_name", "last_name" = "excluded"."last_name" WHERE "users"."account_id" = $6"#
/// );
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Conflict {
    target: Vec<Ident>,
    action: Action,
    error: Option<QueryError>,
}

#[derive(Debug, Clone)]
enum Action {
    Nothing,
    /// Each column is set from `excluded` (`None`) or from an expression.
    Update(Vec<(Ident, Option<Expr>)>),
}

impl Conflict {
    fn new<'c>(target: impl IntoIterator<Item = &'c str>, action: Action) -> Self {
        let (target, error) = match names_of(target) {
            Ok(target) => (target, None),
            Err(e) => (Vec::new(), Some(e)),
        };
        Self {
            target,
            action,
            error,
        }
    }

    /// `ON CONFLICT (target) DO NOTHING`: rows whose key exists are skipped.
    ///
    /// ```
    /// # use rls_tenancy::{Conflict, TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope
    ///     .insert(&decl, "users")
    ///     .columns(["email", "first_name", "last_name", "password"])
    ///     .values(["ada@acme.test", "Ada", "Lovelace", "x"])
    ///     .on_conflict(Conflict::do_nothing(["account_id", "email"]))
    ///     .build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"INSERT INTO "app"."users" ("account_id", "email", "first_name", "last_name", "password") VALUES ($1, $2, $3, $4, $5) ON CONFLICT ("account_id", "email") DO NOTHING"#
    /// );
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn do_nothing<'c>(target: impl IntoIterator<Item = &'c str>) -> Self {
        Self::new(target, Action::Nothing)
    }

    /// `ON CONFLICT (target) DO UPDATE SET c = excluded.c, …` for each of `columns`: the
    /// existing row takes the values the insert gave.
    ///
    /// ```
    /// # use rls_tenancy::{Conflict, TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope
    ///     .insert(&decl, "users")
    ///     .columns(["email", "first_name", "last_name", "password"])
    ///     .values(["ada@acme.test", "Ada", "Byron", "x"])
    ///     .on_conflict(Conflict::update(["account_id", "email"], ["last_name"]))
    ///     .build()?;
    /// assert!(sql.ends_with(r#"ON CONFLICT ("account_id", "email") DO UPDATE SET "last_name" = "excluded"."last_name" WHERE "users"."account_id" = $6"#));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn update<'c, 'u>(
        target: impl IntoIterator<Item = &'c str>,
        columns: impl IntoIterator<Item = &'u str>,
    ) -> Self {
        Self::new(target, Action::Update(Vec::new())).step(|c| {
            for column in names_of(columns)? {
                c.push_update(column, None);
            }
            Ok(())
        })
    }

    /// Adds `column = value` to the `DO UPDATE` (making a [`Conflict::do_nothing`] an update);
    /// `value` is checked like a select's expressions and may use the existing row
    /// (`"users"."login_count"`) and the proposed one (`"excluded"."login_count"`).
    ///
    /// ```
    /// # use rls_tenancy::{Conflict, TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope
    ///     .insert(&decl, "users")
    ///     .columns(["email", "first_name", "last_name", "password"])
    ///     .values(["ada@acme.test", "Ada", "Lovelace", "x"])
    ///     .on_conflict(Conflict::update(["account_id", "email"], []).set("is_active", Expr::val(true)))
    ///     .build()?;
    /// assert!(sql.ends_with(r#"ON CONFLICT ("account_id", "email") DO UPDATE SET "is_active" = $6 WHERE "users"."account_id" = $7"#));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn set(self, column: &str, value: impl Into<Expr>) -> Self {
        let value = value.into();
        self.step(|c| {
            let column = name_of("column", column)?;
            check_expr(&value)?;
            c.push_update(column, Some(value));
            Ok(())
        })
    }

    fn step(mut self, f: impl FnOnce(&mut Self) -> Result<(), QueryError>) -> Self {
        if self.error.is_none()
            && let Err(e) = f(&mut self)
        {
            self.error = Some(e);
        }
        self
    }

    /// Adds to the update list, turning DO NOTHING into DO UPDATE.
    fn push_update(&mut self, column: Ident, value: Option<Expr>) {
        match &mut self.action {
            Action::Update(updates) => updates.push((column, value)),
            Action::Nothing => self.action = Action::Update(vec![(column, value)]),
        }
    }

    /// Checks the clause against the table it is for: the target names the tenant column,
    /// nothing updates it.
    pub(crate) fn check(&self, table: &WriteTable) -> Result<(), QueryError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let tenant_column = table.column();
        if !self.target.iter().any(|c| c.as_str() == tenant_column) {
            return Err(QueryError::ConflictWithoutTenant {
                column: tenant_column.to_owned(),
            });
        }
        match &self.action {
            Action::Update(updates) if updates.is_empty() => Err(QueryError::NoValues {
                statement: "on conflict update",
            }),
            Action::Update(updates) if updates.iter().any(|(c, _)| c.as_str() == tenant_column) => {
                Err(QueryError::TenantColumnUpdate {
                    column: tenant_column.to_owned(),
                })
            }
            _ => Ok(()),
        }
    }

    /// The sea-query clause; a scoped `DO UPDATE` carries the tenant predicate.
    pub(crate) fn clause(&self, table: &WriteTable, tenant: Option<TenantId>) -> OnConflict {
        let mut clause = OnConflict::columns(self.target.iter().map(|c| c.as_str().to_owned()));
        match &self.action {
            Action::Nothing => {
                clause.do_nothing();
            }
            Action::Update(updates) => {
                for (column, value) in updates {
                    let column = column.as_str().to_owned();
                    match value {
                        Some(value) => clause.value(column, value.clone()),
                        None => clause.update_column(column),
                    };
                }
                if let Some(tenant) = tenant {
                    clause.action_and_where(table.predicate(tenant));
                }
            }
        }
        clause
    }
}
