//! `rls-tenant` and its library: the tenant lifecycle in both strategies, end to end.

mod cli;
mod library;
mod statics;

use rls_tenancy::{
    MigrateOptions, ScratchDatabase, Strategy, TenancyDeclaration, TenantContextMode,
    TenantLifecycle, TenantPool, TenantPoolOptions, install_policies, migrator_from_dir,
};
use sqlx::PgPool;

use crate::support::catalog_snapshot;

/// A migrated database and the lifecycle over it, in one strategy.
pub struct Tenants {
    pub db: ScratchDatabase,
    pub admin: PgPool,
    pub decl: TenancyDeclaration,
    pub lifecycle: TenantLifecycle,
}

impl Tenants {
    /// The schema mode, signed tenant context (the default).
    pub async fn schema() -> Self {
        let db = ScratchDatabase::migrated_signed()
            .await
            .expect("scratch database");
        let decl = TenancyDeclaration::reference()
            .expect("declaration")
            .with_strategy(Strategy::Schema);
        // The schema mode's grants on the registry (the runtime role reads the schema column).
        install_policies(&decl, &options(&db))
            .await
            .expect("schema-mode grants");
        Self::over(db, decl).await
    }

    /// The RLS mode, plain tenant context.
    pub async fn rls() -> Self {
        let db = ScratchDatabase::migrated().await.expect("scratch database");
        Self::over(db, TenancyDeclaration::reference().expect("declaration")).await
    }

    async fn over(db: ScratchDatabase, decl: TenancyDeclaration) -> Self {
        let admin = db.admin_pool().await.expect("admin pool");
        let lifecycle = TenantLifecycle::connect(decl.clone(), options(&db))
            .await
            .expect("lifecycle")
            .tenant_migrations(
                migrator_from_dir("migrations/tenant")
                    .await
                    .expect("tenant migrations"),
            );
        Self {
            db,
            admin,
            decl,
            lifecycle,
        }
    }

    /// The runtime role's tenant pool (the guard runs).
    pub async fn runtime_pool(&self) -> TenantPool {
        let mut options = TenantPoolOptions::new(self.decl.clone()).max_connections(2);
        if let Some(key) = self.db.tenant_key() {
            options = options.tenant_key(key.clone());
        }
        TenantPool::connect(self.db.runtime_url(), options)
            .await
            .expect("runtime pool (the guard passes)")
    }

    /// Everything a lifecycle command may change: the catalog, the registry and domains rows.
    pub async fn snapshot(&self) -> (Vec<String>, Vec<String>) {
        let registry: Vec<String> = sqlx::query_scalar(
            "SELECT format('%s %s %s %s', id, slug, is_active, schema_name) FROM app.accounts
             UNION ALL
             SELECT format('domain %s %s %s', domain, account_id, is_primary) FROM app.domains
             ORDER BY 1",
        )
        .fetch_all(&self.admin)
        .await
        .expect("registry rows");
        (catalog_snapshot(&self.admin).await, registry)
    }

    /// Rows of `table` in `schema`, all tenants, read by the superuser.
    pub async fn rows(&self, schema: &str, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {schema}.{table}"
        )))
        .fetch_one(&self.admin)
        .await
        .expect("count")
    }
}

/// The deploy role's options, with the database's tenant context (and key).
pub fn options(db: &ScratchDatabase) -> MigrateOptions {
    let options =
        MigrateOptions::new(db.deploy_url().clone(), db.runtime_role().as_str()).expect("options");
    match db.tenant_key() {
        Some(key) => options.tenant_key(key.clone()),
        None => options.tenant_context(TenantContextMode::Plain),
    }
}
