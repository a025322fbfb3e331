//! A declared table as a statement uses it: resolved against the declaration, maybe aliased,
//! and, for a tenant table, the predicate that keeps it to one tenant.

use sea_query::{Expr, ExprTrait, TableName, TableRef};

use super::QueryError;
use crate::policy::{Ident, Strategy, TenancyDeclaration};
use crate::tenant::TenantId;

/// One reference to a declared table: a tenant table (with its tenant column) or a global
/// table (shared, read-only, no predicate).
#[derive(Debug, Clone)]
pub(crate) struct TableUse {
    /// `None` for a tenant table under [`Strategy::Schema`]: its unqualified name resolves
    /// to the tenant's schema through the transaction's `search_path`.
    schema: Option<String>,
    table: Ident,
    alias: Option<Ident>,
    /// The tenant column; `None` for a global table.
    tenant_column: Option<Ident>,
}

impl TableUse {
    /// Looks `table` up among the declared tenant and global tables; validates `alias`.
    pub(crate) fn resolve(
        decl: &TenancyDeclaration,
        table: &str,
        alias: Option<&str>,
    ) -> Result<Self, QueryError> {
        let (name, tenant_column, schema) = if let Some(found) = decl.tenant_table(table) {
            (
                found.name.clone(),
                Some(found.column.clone()),
                tenant_table_schema(decl),
            )
        } else if let Some(found) = decl.global_table(table) {
            (
                found.name.clone(),
                None,
                Some(decl.schema().as_str().to_owned()),
            )
        } else {
            return Err(QueryError::UnknownTable {
                table: table.to_owned(),
            });
        };
        Ok(Self {
            schema,
            table: name,
            alias: alias.map(|a| name_of("alias", a)).transpose()?,
            tenant_column,
        })
    }

    /// The name the statement knows the table by: its alias, else its bare name.
    pub(crate) fn name(&self) -> &str {
        self.alias.as_ref().unwrap_or(&self.table).as_str()
    }

    /// The table's declared name (not its alias).
    pub(crate) fn table(&self) -> &str {
        self.table.as_str()
    }

    /// Whether this is a global table.
    pub(crate) fn is_global(&self) -> bool {
        self.tenant_column.is_none()
    }

    /// `"schema"."table"`, or `"table"` for a tenant table in the schema mode (the alias is
    /// added by the caller through sea-query's `*_as`).
    pub(crate) fn table_name(&self) -> TableName {
        table_name(self.schema.as_deref(), &self.table)
    }

    /// `"schema"."table" [AS "alias"]`.
    pub(crate) fn table_ref(&self) -> TableRef {
        TableRef::Table(
            self.table_name(),
            self.alias.as_ref().map(|a| a.as_str().to_owned().into()),
        )
    }

    /// `"name"."tenant_column" = $tenant` for a tenant table; nothing for a global one.
    pub(crate) fn predicate(&self, tenant: TenantId) -> Option<Expr> {
        self.tenant_column
            .as_ref()
            .map(|column| tenant_predicate(self.name(), column.as_str(), tenant))
    }
}

/// The tenant table an insert, update or delete writes: never a global table.
#[derive(Debug, Clone)]
pub(crate) struct WriteTable {
    schema: Option<String>,
    table: Ident,
    column: Ident,
}

impl WriteTable {
    /// Looks `table` up among the declared tenant tables; a global table is refused as
    /// read-only.
    pub(crate) fn resolve(decl: &TenancyDeclaration, table: &str) -> Result<Self, QueryError> {
        match decl.tenant_table(table) {
            Some(found) => Ok(Self {
                schema: tenant_table_schema(decl),
                table: found.name.clone(),
                column: found.column.clone(),
            }),
            None if decl.global_table(table).is_some() => Err(QueryError::GlobalTableWrite {
                table: table.to_owned(),
            }),
            None => Err(QueryError::UnknownTable {
                table: table.to_owned(),
            }),
        }
    }

    /// The tenant column's bare name.
    pub(crate) fn column(&self) -> &str {
        self.column.as_str()
    }

    /// The tenant column as a validated identifier.
    pub(crate) fn column_ident(&self) -> &Ident {
        &self.column
    }

    /// `"schema"."table"`, or `"table"` in the schema mode.
    pub(crate) fn table_name(&self) -> TableName {
        table_name(self.schema.as_deref(), &self.table)
    }

    /// `"table"."tenant_column" = $tenant`.
    pub(crate) fn predicate(&self, tenant: TenantId) -> Expr {
        tenant_predicate(self.table.as_str(), self.column.as_str(), tenant)
    }
}

/// The schema a statement names for a tenant table: the declaration's in the RLS and
/// database modes (a tenant database holds the declaration's schema), none in the schema
/// mode (the transaction's `search_path` leads to the tenant's schema).
fn tenant_table_schema(decl: &TenancyDeclaration) -> Option<String> {
    match decl.strategy() {
        Strategy::Schema => None,
        Strategy::Rls | Strategy::Database => Some(decl.schema().as_str().to_owned()),
    }
}

fn table_name(schema: Option<&str>, table: &Ident) -> TableName {
    let table = table.as_str().to_owned();
    match schema {
        Some(schema) => (schema.to_owned(), table).into(),
        None => table.into(),
    }
}

fn tenant_predicate(name: &str, column: &str, tenant: TenantId) -> Expr {
    Expr::col((name.to_owned(), column.to_owned())).eq(tenant.value())
}

/// Validates an alias or column name.
pub(crate) fn name_of(what: &'static str, s: &str) -> Result<Ident, QueryError> {
    Ident::parse(what, s).map_err(|_| QueryError::InvalidName {
        what,
        name: s.to_owned(),
    })
}

/// Validates a list of column names.
pub(crate) fn names_of<'c>(
    columns: impl IntoIterator<Item = &'c str>,
) -> Result<Vec<Ident>, QueryError> {
    columns.into_iter().map(|c| name_of("column", c)).collect()
}
