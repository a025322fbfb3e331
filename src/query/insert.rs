//! [`Insert`]: an INSERT whose rows belong to the scope's tenant, set by the builder.

use sea_query::{Expr, PostgresQueryBuilder, Query, Value};
use sea_query_sqlx::{SqlxBinder, SqlxValues};

use super::QueryError;
use super::check::check_expr;
use super::scoping::Scoping;
use super::table::{TableUse, name};
use crate::policy::{Ident, TenancyDeclaration};
use crate::tenant::{TenantId, TenantScope};

/// An INSERT into a tenant table.
///
/// In a scoped insert the builder writes the tenant column itself, first, from the scope. A
/// caller who names the tenant column too must give exactly the scope's tenant id as a plain
/// value in every row (it is then dropped as redundant); anything else is refused with
/// [`QueryError::ForeignTenantValue`] rather than written.
///
/// ```
/// use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
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
pub struct Insert<S: Scoping = TenantScope> {
    scoping: S,
    table: Option<TableUse>,
    columns: Vec<Ident>,
    rows: Vec<Vec<Expr>>,
    returning: Vec<Ident>,
    error: Option<QueryError>,
}

impl<S: Scoping> Insert<S> {
    pub(crate) fn new(scoping: S, decl: &TenancyDeclaration, table: &str) -> Self {
        let (table, error) = match TableUse::resolve(decl, table, None) {
            Ok(table) => (Some(table), None),
            Err(e) => (None, Some(e)),
        };
        Self {
            scoping,
            table,
            columns: Vec::new(),
            rows: Vec::new(),
            returning: Vec::new(),
            error,
        }
    }

    fn step(mut self, f: impl FnOnce(&mut Self) -> Result<(), QueryError>) -> Self {
        if self.error.is_none()
            && let Err(e) = f(&mut self)
        {
            self.error = Some(e);
        }
        self
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
        &self.scoping
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
            for column in columns {
                q.columns.push(name("column", column)?);
            }
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

    /// Returns these columns of the inserted rows.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.insert(&decl, "projects").columns(["name"]).values(["A"]).returning(["id", "name"]).build()?;
    /// assert_eq!(sql, r#"INSERT INTO "app"."projects" ("account_id", "name") VALUES ($1, $2) RETURNING "id", "name""#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn returning<'c>(self, columns: impl IntoIterator<Item = &'c str>) -> Self {
        self.step(|q| {
            for column in columns {
                q.returning.push(name("column", column)?);
            }
            Ok(())
        })
    }

    /// The SQL and its bound values, tenant column included.
    ///
    /// # Errors
    /// [`crate::Error::Query`] with the first mistake made while building, no rows, or a
    /// tenant column value for another tenant.
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
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let table = self.table.as_ref().ok_or(QueryError::NoTable)?;
        if self.rows.is_empty() {
            return Err(QueryError::NoValues {
                statement: "insert",
            });
        }
        let (columns, rows) = match self.scoping.tenant() {
            Some(tenant) => self.with_tenant(table, tenant)?,
            None => (self.columns.clone(), self.rows.clone()),
        };
        let mut q = Query::insert();
        q.into_table(table.table_name())
            .columns(columns.iter().map(|c| c.as_str().to_owned()));
        for row in rows {
            q.values(row).map_err(|_| QueryError::ValueCount {
                expected: columns.len(),
                found: 0,
            })?;
        }
        if !self.returning.is_empty() {
            q.returning(
                Query::returning().columns(self.returning.iter().map(|c| c.as_str().to_owned())),
            );
        }
        Ok(q.build_sqlx(PostgresQueryBuilder))
    }

    /// Puts the tenant column first in every row, after checking any value the caller gave.
    fn with_tenant(
        &self,
        table: &TableUse,
        tenant: TenantId,
    ) -> Result<(Vec<Ident>, Vec<Vec<Expr>>), QueryError> {
        let tenant_column = table.column();
        let given = self
            .columns
            .iter()
            .position(|c| c.as_str() == tenant_column);
        let mut columns = vec![name("column", tenant_column)?];
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
