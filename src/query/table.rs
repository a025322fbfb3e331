//! A tenant table as a statement uses it: resolved against the declaration, maybe aliased,
//! and the predicate that keeps it to one tenant.

use sea_query::{Expr, ExprTrait, TableName, TableRef};

use super::QueryError;
use crate::policy::{Ident, TenancyDeclaration, TenantTable};
use crate::tenant::TenantId;

/// One reference to a declared tenant table.
#[derive(Debug, Clone)]
pub(crate) struct TableUse {
    schema: String,
    table: TenantTable,
    alias: Option<Ident>,
}

impl TableUse {
    /// Looks `table` up among the declared tenant tables; validates `alias`.
    pub(crate) fn resolve(
        decl: &TenancyDeclaration,
        table: &str,
        alias: Option<&str>,
    ) -> Result<Self, QueryError> {
        let found = decl
            .tenant_table(table)
            .ok_or_else(|| QueryError::UnknownTable {
                table: table.to_owned(),
            })?;
        Ok(Self {
            schema: decl.schema().as_str().to_owned(),
            table: found.clone(),
            alias: alias.map(|a| name("alias", a)).transpose()?,
        })
    }

    /// The name the statement knows the table by: its alias, else its bare name.
    pub(crate) fn name(&self) -> &str {
        self.alias.as_ref().unwrap_or(&self.table.name).as_str()
    }

    /// The tenant column's bare name.
    pub(crate) fn column(&self) -> &str {
        self.table.column.as_str()
    }

    /// `"schema"."table"` (the alias is added by the caller through sea-query's `*_as`).
    pub(crate) fn table_name(&self) -> TableName {
        (self.schema.clone(), self.table.name.as_str().to_owned()).into()
    }

    /// `"schema"."table" [AS "alias"]`.
    pub(crate) fn table_ref(&self) -> TableRef {
        TableRef::Table(
            self.table_name(),
            self.alias.as_ref().map(|a| a.as_str().to_owned().into()),
        )
    }

    /// `"name"."tenant_column" = $tenant`.
    pub(crate) fn predicate(&self, tenant: TenantId) -> Expr {
        Expr::col((self.name().to_owned(), self.column().to_owned())).eq(tenant.value())
    }
}

/// Validates an alias or column name.
pub(crate) fn name(what: &'static str, s: &str) -> Result<Ident, QueryError> {
    Ident::parse(what, s).map_err(|_| QueryError::InvalidName {
        what,
        name: s.to_owned(),
    })
}
