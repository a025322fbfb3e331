//! Two tenants with the same shape of data and the same subtask names, so that only the
//! tenant predicate tells their rows apart.

use rls_tenancy::sea_query::{Expr, ExprTrait};
use rls_tenancy::{
    Result, ScratchDatabase, TenancyDeclaration, TenantId, TenantPool, TenantPoolOptions,
    TenantScope, TenantTx,
};
use sqlx::PgPool;

/// A migrated database with tenants `alpha` (2 projects) and `beta` (3 projects); each
/// project has 3 tasks and each task 4 subtasks named `subtask 1` to `subtask 4`. Project and
/// task names start with the tenant's slug.
pub(crate) struct TwoTenants {
    /// Dropped with the fixture: the database lives as long as the test needs it.
    pub(crate) db: ScratchDatabase,
    pub(crate) admin: PgPool,
    pub(crate) pool: TenantPool,
    pub(crate) alpha: TenantScope,
    pub(crate) beta: TenantScope,
}

pub(crate) const ALPHA_SUBTASKS: i64 = 2 * 3 * 4;
pub(crate) const BETA_SUBTASKS: i64 = 3 * 3 * 4;

impl TwoTenants {
    pub(crate) async fn new() -> Result<Self> {
        let db = ScratchDatabase::migrated().await?;
        let admin = db.admin_pool().await?;
        let alpha = add_tenant(&admin, "alpha", 2).await?;
        let beta = add_tenant(&admin, "beta", 3).await?;
        let pool = TenantPool::connect(
            db.runtime_url(),
            TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"))
                .max_connections(4),
        )
        .await?;
        Ok(Self {
            db,
            admin,
            pool,
            alpha,
            beta,
        })
    }

    /// A tenant pool on the superuser's connections, which row-level security does not apply
    /// to: the builder is the only wall, so a missing predicate shows.
    pub(crate) async fn bypass(&self) -> Result<TenantPool> {
        TenantPool::from_pool(
            self.admin.clone(),
            TenantPoolOptions::new(TenancyDeclaration::reference()?).skip_guard(),
        )
        .await
        .map_err(Into::into)
    }

    /// How many projects `tx` sees through the builder: whether it still works, and as whom.
    pub(crate) async fn projects_seen(&self, tx: &mut TenantTx) -> Result<i64> {
        let decl = TenancyDeclaration::reference()?;
        let count = tx
            .scope()
            .select(&decl)
            .from("projects")
            .expr(Expr::col("id").count());
        let (n,): (i64,) = tx.fetch_one(&count).await?;
        Ok(n)
    }

    /// The number of rows of `table` (a tenant table) that belong to `scope`, as the superuser.
    pub(crate) async fn count(&self, table: &str, scope: &TenantScope) -> Result<i64> {
        let sql = format!("SELECT count(*) FROM app.{table} WHERE account_id = $1");
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(scope.id().as_i64().expect("bigint id"))
            .fetch_one(&self.admin)
            .await?)
    }

    /// The tenant's subtask ids in page order, read as the superuser (no RLS, no builder).
    pub(crate) async fn subtask_ids_in_order(&self, scope: &TenantScope) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM app.subtasks WHERE account_id = $1 ORDER BY name, id",
        )
        .bind(scope.id().as_i64().expect("bigint id"))
        .fetch_all(&self.admin)
        .await?)
    }
}

async fn add_tenant(admin: &PgPool, slug: &str, projects: i32) -> Result<TenantScope> {
    let id: i64 =
        sqlx::query_scalar("INSERT INTO app.accounts (slug, name) VALUES ($1, $1) RETURNING id")
            .bind(slug)
            .fetch_one(admin)
            .await?;
    sqlx::query(
        "WITH p AS (
             INSERT INTO app.projects (account_id, name)
             SELECT $1, $2 || ' project ' || g FROM generate_series(1, $3) AS g
             RETURNING id, name
         ), t AS (
             INSERT INTO app.tasks (account_id, project_id, name)
             SELECT $1, p.id, $2 || ' task ' || p.id || '.' || g FROM p, generate_series(1, 3) AS g
             RETURNING id
         )
         INSERT INTO app.subtasks (account_id, task_id, name, is_complete)
         SELECT $1, t.id, 'subtask ' || g, g % 2 = 0 FROM t, generate_series(1, 4) AS g",
    )
    .bind(id)
    .bind(slug)
    .bind(projects)
    .execute(admin)
    .await?;
    Ok(TenantScope::new(TenantId::new(id)?, slug.parse()?))
}
