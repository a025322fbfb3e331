//! [`Insert`]: an INSERT whose rows belong to the scope's tenant, set by the builder.

use sea_query::{Expr, PostgresQueryBuilder, Query, Value};
use sea_query_sqlx::{SqlxBinder, SqlxValues};

use super::builder::sealed::{Builder, HasReturning};
use super::builder::{Base, Columns};
use super::check::check_expr;
use super::scoping::{Scoping, same_scoping};
use super::table::{WriteTable, names_of};
use super::{Conflict, QueryError, Select};
use crate::policy::{Ident, TenancyDeclaration};
use crate::tenant::{TenantId, TenantScope};

/// An INSERT into a tenant table (never a global one: [`QueryError::GlobalTableWrite`]).
///
/// In a scoped insert the builder writes the tenant column itself, first, from the scope. A
/// caller who names the tenant column too must give exactly the scope's tenant id as a plain
/// value in every row (it is then dropped as redundant); anything else is refused with
/// [`QueryError::ForeignTenantValue`] rather than written. Rows come from
/// [`Insert::values`] or from one scoped select of the same tenant ([`Insert::select_from`]);
/// [`Insert::on_conflict`] makes it an upsert within the tenant.
///
/// ```
/// use rls_tenancy::{Returning, TenancyDeclaration, TenantId, TenantScope};
/// use rls_tenancy::sea_query::Value;
/// let decl = TenancyDeclaration::reference()?;
/// let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
/// let (sql, values) = scope
///     .insert(&decl, "projects")
///     .columns(["name"])
///     .values(["Apollo"])
///     .returning(["id"])
///     .build()?;
/// assert_eq!(sql, r#"INSERT INTO "app"."projects" ("account_id", "name") VALUES ($1, $2) RETURNING "id""#);
/// assert_eq!(values.0.0[0], Value::BigInt(Some(7)));
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Insert<'d, S: Scoping = TenantScope> {
    base: Base<'d, S>,
    table: Option<WriteTable>,
    columns: Vec<Ident>,
    rows: Vec<Vec<Expr>>,
    select: Option<Box<Select<'d, S>>>,
    conflict: Option<Conflict>,
    returning: Columns,
}

impl<'d, S: Scoping> Builder<'d> for Insert<'d, S> {
    type Scoping = S;
    fn base(&mut self) -> &mut Base<'d, S> {
        &mut self.base
    }
}

impl<'d, S: Scoping> HasReturning<'d> for Insert<'d, S> {
    fn returning_list(&mut self) -> &mut Columns {
        &mut self.returning
    }
}

impl<'d, S: Scoping> Insert<'d, S> {
    pub(crate) fn new(scoping: S, decl: &'d TenancyDeclaration, table: &str) -> Self {
        let (table, error) = match WriteTable::resolve(decl, table) {
            Ok(table) => (Some(table), None),
            Err(e) => (None, Some(e)),
        };
        Self {
            base: Base::new(scoping, decl, error),
            table,
            columns: Vec::new(),
            rows: Vec::new(),
            select: None,
            conflict: None,
            returning: Columns::default(),
        }
    }

    /// What this statement is scoped to.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// assert_eq!(scope.insert(&decl, "projects").scoping(), &scope);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn scoping(&self) -> &S {
        &self.base.scoping
    }

    /// Names the columns the rows give values for (the tenant column may be left out).
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::Expr;
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.insert(&decl, "tasks").columns(["project_id", "name"]).values([Expr::val(1), Expr::val("Plan")]).build()?;
    /// assert_eq!(sql, r#"INSERT INTO "app"."tasks" ("account_id", "project_id", "name") VALUES ($1, $2, $3)"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn columns<'c>(self, columns: impl IntoIterator<Item = &'c str>) -> Self {
        self.step(|q| {
            q.columns.extend(names_of(columns)?);
            Ok(())
        })
    }

    /// Adds a row: one value per column, in order (checked like a select's expressions).
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.insert(&decl, "projects").columns(["name"]).values(["A"]).values(["B"]).build()?;
    /// assert_eq!(sql, r#"INSERT INTO "app"."projects" ("account_id", "name") VALUES ($1, $2), ($3, $4)"#);
    /// assert!(scope.insert(&decl, "projects").columns(["name"]).values(["A", "B"]).build().is_err());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn values<V: Into<Expr>>(self, row: impl IntoIterator<Item = V>) -> Self {
        let row: Vec<Expr> = row.into_iter().map(Into::into).collect();
        self.step(|q| {
            if q.select.is_some() {
                return Err(QueryError::MixedInsertSource);
            }
            if row.len() != q.columns.len() {
                return Err(QueryError::ValueCount {
                    expected: q.columns.len(),
                    found: row.len(),
                });
            }
            row.iter().try_for_each(check_expr)?;
            q.rows.push(row);
            Ok(())
        })
    }

    /// Inserts the rows of a scoped select of the same tenant (`INSERT … SELECT`), one
    /// select-list expression per column. In a scoped insert the tenant column is not named:
    /// the builder puts the tenant's id first in the select.
    ///
    /// ```
    /// # use rls_tenancy::{Filtered, QueryError, TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let done = scope.select(&decl).from("tasks").column("name").and_where(Expr::col("is_complete").eq(true));
    /// let (sql, _) = scope.insert(&decl, "projects").columns(["name"]).select_from(done).build()?;
    /// assert_eq!(
    ///     sql,
    ///     r#"INSERT INTO "app"."projects" ("account_id", "name") SELECT $1, "name" FROM "app"."tasks" WHERE "tasks"."account_id" = $2 AND "is_complete" = $3"#
    /// );
    /// let other = TenantScope::new(TenantId::new(8)?, "other".parse()?);
    /// let theirs = other.select(&decl).from("tasks").column("name");
    /// let refused = scope.insert(&decl, "projects").columns(["name"]).select_from(theirs).build();
    /// assert!(matches!(refused, Err(QueryError::ScopeMismatch { .. })));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn select_from(self, sub: Select<'d, S>) -> Self {
        self.step(|q| {
            if q.select.is_some() || !q.rows.is_empty() {
                return Err(QueryError::MixedInsertSource);
            }
            q.select = Some(Box::new(sub));
            Ok(())
        })
    }

    /// Makes it an upsert: what to do when a row with the same key exists. The conflict
    /// target must name the tenant column ([`QueryError::ConflictWithoutTenant`]).
    ///
    /// ```
    /// # use rls_tenancy::{Conflict, QueryError, TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let ada = || scope.insert(&decl, "users").columns(["email", "first_name", "last_name", "password"]).values(["ada@acme.test", "Ada", "Lovelace", "x"]);
    /// let (sql, _) = ada().on_conflict(Conflict::do_nothing(["account_id", "email"])).build()?;
    /// assert!(sql.ends_with(r#"ON CONFLICT ("account_id", "email") DO NOTHING"#));
    /// let refused = ada().on_conflict(Conflict::do_nothing(["email"])).build();
    /// assert_eq!(refused.err(), Some(QueryError::ConflictWithoutTenant { column: "account_id".into() }));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn on_conflict(self, conflict: Conflict) -> Self {
        self.step(|q| {
            if let Some(table) = &q.table {
                conflict.check(table)?;
            }
            q.conflict = Some(conflict);
            Ok(())
        })
    }

    /// The SQL and its bound values, tenant column included.
    ///
    /// # Errors
    /// [`QueryError`]: the first mistake made while building, no rows, or a tenant column
    /// value for another tenant.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # use rls_tenancy::sea_query::Expr;
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.insert(&decl, "projects").columns(["account_id", "name"]).values([Expr::val(7), Expr::val("A")]).build()?;
    /// assert_eq!(sql, r#"INSERT INTO "app"."projects" ("account_id", "name") VALUES ($1, $2)"#);
    /// let other = scope.insert(&decl, "projects").columns(["account_id", "name"]).values([Expr::val(8), Expr::val("A")]);
    /// assert!(other.build().is_err());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn build(&self) -> Result<(String, SqlxValues), QueryError> {
        self.base.check()?;
        let table = self.table.as_ref().ok_or(QueryError::NoTable)?;
        let tenant = self.base.scoping.tenant();
        let mut q = Query::insert();
        q.into_table(table.table_name());
        match &self.select {
            Some(sub) => {
                let (columns, sub) = self.with_tenant_select(table, tenant, sub)?;
                let width = sub.width();
                q.columns(columns.iter().map(|c| c.as_str().to_owned()))
                    .select_from(sub.statement()?)
                    .map_err(|_| QueryError::ValueCount {
                        expected: columns.len(),
                        found: width,
                    })?;
            }
            None => {
                if self.rows.is_empty() {
                    return Err(QueryError::NoValues {
                        statement: "insert",
                    });
                }
                let (columns, rows) = match tenant {
                    Some(tenant) => self.with_tenant_rows(table, tenant)?,
                    None => (self.columns.clone(), self.rows.clone()),
                };
                q.columns(columns.iter().map(|c| c.as_str().to_owned()));
                for row in rows {
                    q.values(row).map_err(|_| QueryError::ValueCount {
                        expected: columns.len(),
                        found: 0,
                    })?;
                }
            }
        }
        if let Some(conflict) = &self.conflict {
            q.on_conflict(conflict.clause(table, tenant));
        }
        if let Some(returning) = self.returning.clause() {
            q.returning(returning);
        }
        Ok(q.build_sqlx(PostgresQueryBuilder))
    }

    /// The columns and the select of an INSERT … SELECT; in a scoped insert the tenant
    /// column first, and the tenant's id first in the select.
    fn with_tenant_select(
        &self,
        table: &WriteTable,
        tenant: Option<TenantId>,
        sub: &Select<'d, S>,
    ) -> Result<(Vec<Ident>, Select<'d, S>), QueryError> {
        same_scoping(&self.base.scoping, sub.scoping())?;
        if sub.width() != self.columns.len() {
            return Err(QueryError::ValueCount {
                expected: self.columns.len(),
                found: sub.width(),
            });
        }
        let Some(tenant) = tenant else {
            return Ok((self.columns.clone(), sub.clone()));
        };
        if self.columns.iter().any(|c| c.as_str() == table.column()) {
            return Err(QueryError::ForeignTenantValue {
                column: table.column().to_owned(),
            });
        }
        let mut columns = vec![table.column_ident().clone()];
        columns.extend(self.columns.iter().cloned());
        Ok((columns, sub.clone().with_leading(Expr::val(tenant.value()))))
    }

    /// Puts the tenant column first in every row, after checking any value the caller gave.
    fn with_tenant_rows(
        &self,
        table: &WriteTable,
        tenant: TenantId,
    ) -> Result<(Vec<Ident>, Vec<Vec<Expr>>), QueryError> {
        let tenant_column = table.column();
        let given = self
            .columns
            .iter()
            .position(|c| c.as_str() == tenant_column);
        let mut columns = vec![table.column_ident().clone()];
        columns.extend(
            self.columns
                .iter()
                .filter(|c| c.as_str() != tenant_column)
                .cloned(),
        );
        let mut rows = Vec::with_capacity(self.rows.len());
        for row in &self.rows {
            let mut out = vec![Expr::val(tenant.value())];
            for (i, value) in row.iter().enumerate() {
                if Some(i) == given {
                    if !is_tenant(value, tenant) {
                        return Err(QueryError::ForeignTenantValue {
                            column: tenant_column.to_owned(),
                        });
                    }
                } else {
                    out.push(value.clone());
                }
            }
            rows.push(out);
        }
        Ok((columns, rows))
    }
}

/// Whether `value` is a plain integer or UUID value equal to `tenant`'s id.
fn is_tenant(value: &Expr, tenant: TenantId) -> bool {
    if let (Expr::Value(Value::Uuid(Some(uuid))), Some(id)) = (value, tenant.as_uuid()) {
        return *uuid == id;
    }
    let n: Option<i128> = match value {
        Expr::Value(Value::TinyInt(Some(n))) => Some((*n).into()),
        Expr::Value(Value::SmallInt(Some(n))) => Some((*n).into()),
        Expr::Value(Value::Int(Some(n))) => Some((*n).into()),
        Expr::Value(Value::BigInt(Some(n))) => Some((*n).into()),
        Expr::Value(Value::TinyUnsigned(Some(n))) => Some((*n).into()),
        Expr::Value(Value::SmallUnsigned(Some(n))) => Some((*n).into()),
        Expr::Value(Value::Unsigned(Some(n))) => Some((*n).into()),
        Expr::Value(Value::BigUnsigned(Some(n))) => Some((*n).into()),
        _ => None,
    };
    n.is_some() && n == tenant.as_i64().map(i128::from)
}
