//! Where statements start: a [`TenantScope`] or the explicit [`CrossTenant`] path.

use super::scoping::CrossTenant;
use super::{Delete, Insert, Select, Update};
use crate::policy::TenancyDeclaration;
use crate::tenant::TenantScope;

impl TenantScope {
    /// Starts a SELECT scoped to this tenant over the tables `decl` declares (tenant tables
    /// get the tenant predicate, global tables are read as they are).
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.select(&decl).from("users").column("email").build()?;
    /// assert_eq!(sql, r#"SELECT "email" FROM "app"."users" WHERE "users"."account_id" = $1"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn select<'d>(&self, decl: &'d TenancyDeclaration) -> Select<'d, TenantScope> {
        Select::new(self.clone(), decl)
    }

    /// Starts an INSERT into the tenant table `table`, for this tenant.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.insert(&decl, "projects").columns(["name"]).values(["A"]).build()?;
    /// assert_eq!(sql, r#"INSERT INTO "app"."projects" ("account_id", "name") VALUES ($1, $2)"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn insert<'d>(&self, decl: &'d TenancyDeclaration, table: &str) -> Insert<'d, TenantScope> {
        Insert::new(self.clone(), decl, table)
    }

    /// Starts an UPDATE of this tenant's rows of the tenant table `table`.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.update(&decl, "projects").value("name", "B").build()?;
    /// assert_eq!(sql, r#"UPDATE "app"."projects" SET "name" = $1 WHERE "projects"."account_id" = $2"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn update<'d>(&self, decl: &'d TenancyDeclaration, table: &str) -> Update<'d, TenantScope> {
        Update::new(self.clone(), decl, table)
    }

    /// Starts a DELETE of this tenant's rows of the tenant table `table`.
    ///
    /// ```
    /// # use rls_tenancy::{TenancyDeclaration, TenantId, TenantScope};
    /// # let decl = TenancyDeclaration::reference()?;
    /// # let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
    /// let (sql, _) = scope.delete(&decl, "projects").build()?;
    /// assert_eq!(sql, r#"DELETE FROM "app"."projects" WHERE "projects"."account_id" = $1"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn delete<'d>(&self, decl: &'d TenancyDeclaration, table: &str) -> Delete<'d, TenantScope> {
        Delete::new(self.clone(), decl, table)
    }
}

impl CrossTenant {
    /// Starts a SELECT over every tenant's rows: no tenant predicate.
    ///
    /// ```
    /// # use rls_tenancy::{CrossTenant, TenancyDeclaration};
    /// # let decl = TenancyDeclaration::reference()?;
    /// let (sql, _) = CrossTenant::new("report").select(&decl).from("users").column("email").build()?;
    /// assert_eq!(sql, r#"SELECT "email" FROM "app"."users""#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn select<'d>(&self, decl: &'d TenancyDeclaration) -> Select<'d, CrossTenant> {
        Select::new(self.clone(), decl)
    }

    /// Starts an INSERT with no tenant set by the builder: the rows must name their tenant.
    ///
    /// ```
    /// # use rls_tenancy::{CrossTenant, TenancyDeclaration};
    /// # use rls_tenancy::sea_query::Expr;
    /// # let decl = TenancyDeclaration::reference()?;
    /// let (sql, _) = CrossTenant::new("seeding").insert(&decl, "projects").columns(["account_id", "name"]).values([Expr::val(1), Expr::val("A")]).build()?;
    /// assert_eq!(sql, r#"INSERT INTO "app"."projects" ("account_id", "name") VALUES ($1, $2)"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn insert<'d>(&self, decl: &'d TenancyDeclaration, table: &str) -> Insert<'d, CrossTenant> {
        Insert::new(self.clone(), decl, table)
    }

    /// Starts an UPDATE over every tenant's rows (the tenant column still cannot be set).
    ///
    /// ```
    /// # use rls_tenancy::{CrossTenant, TenancyDeclaration};
    /// # let decl = TenancyDeclaration::reference()?;
    /// let (sql, _) = CrossTenant::new("migration").update(&decl, "projects").value("details", "").build()?;
    /// assert_eq!(sql, r#"UPDATE "app"."projects" SET "details" = $1"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn update<'d>(&self, decl: &'d TenancyDeclaration, table: &str) -> Update<'d, CrossTenant> {
        Update::new(self.clone(), decl, table)
    }

    /// Starts a DELETE over every tenant's rows.
    ///
    /// ```
    /// # use rls_tenancy::{CrossTenant, Filtered, TenancyDeclaration};
    /// # use rls_tenancy::sea_query::{Expr, ExprTrait};
    /// # let decl = TenancyDeclaration::reference()?;
    /// let (sql, _) = CrossTenant::new("retention").delete(&decl, "subtasks").and_where(Expr::col("is_complete").eq(true)).build()?;
    /// assert_eq!(sql, r#"DELETE FROM "app"."subtasks" WHERE "is_complete" = $1"#);
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn delete<'d>(&self, decl: &'d TenancyDeclaration, table: &str) -> Delete<'d, CrossTenant> {
        Delete::new(self.clone(), decl, table)
    }
}
