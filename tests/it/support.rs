//! Fixtures shared by the integration tests.

use rls_tenancy::TenancyDeclaration;
use rls_tenancy::{
    AdminServer, ScratchDatabase, TenantId, TenantPool, TenantPoolOptions, TenantRegistry,
    TenantScope,
};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// The tenant tables, parents first.
pub const TENANT_TABLES: [&str; 4] = ["users", "projects", "tasks", "subtasks"];

/// One tenant's fixture rows: the id of its row in each tenant table.
#[derive(Debug, Clone)]
pub struct TenantRows {
    pub scope: TenantScope,
    pub user: i64,
    pub project: i64,
    pub task: i64,
    pub subtask: i64,
}

impl TenantRows {
    /// The id of this tenant's row in `table`.
    pub fn id(&self, table: &str) -> i64 {
        match table {
            "users" => self.user,
            "projects" => self.project,
            "tasks" => self.task,
            "subtasks" => self.subtask,
            other => panic!("not a tenant table: {other}"),
        }
    }
}

/// A migrated database with two tenants, `tenant-a` and `tenant-b`, each with one row in
/// every tenant table, written as the superuser.
pub struct TwoTenants {
    pub db: ScratchDatabase,
    pub admin: PgPool,
    pub a: TenantRows,
    pub b: TenantRows,
}

impl TwoTenants {
    /// With the plain tenant context.
    pub async fn new() -> Self {
        Self::on(AdminServer::shared().await.expect("server").clone()).await
    }

    /// The same on `server` (a replicated primary).
    pub async fn on(server: AdminServer) -> Self {
        Self::with(
            ScratchDatabase::migrated_on(server)
                .await
                .expect("scratch database"),
        )
        .await
    }

    /// With the signed tenant context (the database's key in `db.tenant_key()`).
    pub async fn signed() -> Self {
        Self::with(
            ScratchDatabase::migrated_signed()
                .await
                .expect("scratch database"),
        )
        .await
    }

    /// The same on `server` (a replicated primary).
    pub async fn signed_on(server: AdminServer) -> Self {
        Self::with(
            ScratchDatabase::migrated_signed_on(server)
                .await
                .expect("scratch database"),
        )
        .await
    }

    async fn with(db: ScratchDatabase) -> Self {
        let admin = db.admin_pool().await.expect("admin pool");
        let a = insert_tenant(&admin, "tenant-a").await;
        let b = insert_tenant(&admin, "tenant-b").await;
        Self { db, admin, a, b }
    }

    /// A tenant pool of the runtime role with at most `connections` connections.
    pub async fn runtime_pool(&self, connections: u32) -> TenantPool {
        TenantPool::from_pool(
            self.raw_runtime_pool(connections).await,
            self.pool_options(),
        )
        .await
        .expect("tenant pool")
    }

    /// The reference declaration's pool options, with the database's tenant key if signed.
    pub fn pool_options(&self) -> TenantPoolOptions {
        let options = TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"));
        match self.db.tenant_key() {
            Some(key) => options.tenant_key(key.clone()),
            None => options,
        }
    }

    /// A plain sqlx pool of the runtime role: statements sent through it carry no tenant.
    pub async fn raw_runtime_pool(&self, connections: u32) -> PgPool {
        PgPoolOptions::new()
            .max_connections(connections)
            .connect_with(self.db.runtime_url().connect_options().expect("options"))
            .await
            .expect("runtime pool")
    }
}

async fn insert_tenant(admin: &PgPool, slug: &str) -> TenantRows {
    let account: i64 =
        sqlx::query_scalar("INSERT INTO app.accounts (slug, name) VALUES ($1, $1) RETURNING id")
            .bind(slug)
            .fetch_one(admin)
            .await
            .expect("account");
    let user: i64 = sqlx::query_scalar(
        "INSERT INTO app.users (account_id, email, first_name, last_name, password)
         VALUES ($1, 'owner@' || $2 || '.test', 'Owner', $2, 'x') RETURNING id",
    )
    .bind(account)
    .bind(slug)
    .fetch_one(admin)
    .await
    .expect("user");
    let project: i64 = sqlx::query_scalar(
        "INSERT INTO app.projects (account_id, name) VALUES ($1, 'project of ' || $2) RETURNING id",
    )
    .bind(account)
    .bind(slug)
    .fetch_one(admin)
    .await
    .expect("project");
    let task: i64 = sqlx::query_scalar(
        "INSERT INTO app.tasks (account_id, project_id, name) VALUES ($1, $2, 'task of ' || $3) RETURNING id",
    )
    .bind(account)
    .bind(project)
    .bind(slug)
    .fetch_one(admin)
    .await
    .expect("task");
    let subtask: i64 = sqlx::query_scalar(
        "INSERT INTO app.subtasks (account_id, task_id, name) VALUES ($1, $2, 'subtask of ' || $3) RETURNING id",
    )
    .bind(account)
    .bind(task)
    .bind(slug)
    .fetch_one(admin)
    .await
    .expect("subtask");
    TenantRows {
        scope: TenantScope::new(
            TenantId::new(account).expect("id"),
            slug.parse().expect("slug"),
        ),
        user,
        project,
        task,
        subtask,
    }
}

/// The SQLSTATE of a database error, or `None` for success or another kind of error.
pub fn sqlstate<T>(result: &Result<T, sqlx::Error>) -> Option<String> {
    match result {
        Err(sqlx::Error::Database(e)) => e.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// The version (`xmin`) of each catalog row a migration could rewrite: the toolkit's
/// functions, every schema and relation outside the system schemas, and the database's own
/// row. `CREATE OR REPLACE`, `GRANT` and `REVOKE` write a new version even when they change
/// nothing, so two equal snapshots mean that nothing was written in between.
pub async fn catalog_row_versions<'c>(conn: impl sqlx::PgExecutor<'c>) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT format('function %s xmin=%s', p.oid::regprocedure, p.xmin)
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname IN ('rls_tenancy', 'rls_tenancy_secret')
         UNION ALL
         SELECT format('schema %s xmin=%s', n.nspname, n.xmin)
           FROM pg_namespace n
          WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
         UNION ALL
         SELECT format('relation %s xmin=%s', c.oid::regclass, c.xmin)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
         UNION ALL
         SELECT format('database xmin=%s', d.xmin) FROM pg_database d WHERE d.datname = current_database()
         ORDER BY 1",
    )
    .fetch_all(conn)
    .await
    .expect("catalog row versions")
}

/// Every schema, relation, column privilege, policy (with its oid: a policy dropped and
/// created again differs) and default privilege of the database outside the system schemas,
/// as one comparable snapshot: what `rls-migrate` is responsible for.
pub async fn catalog_snapshot(admin: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT format('schema %s acl=%s', n.nspname, n.nspacl)
           FROM pg_namespace n
          WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
         UNION ALL
         SELECT format('relation %s kind=%s rls=%s force=%s acl=%s', c.oid::regclass, c.relkind,
                       c.relrowsecurity, c.relforcerowsecurity, c.relacl)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
         UNION ALL
         SELECT format('column %s.%s acl=%s', a.attrelid::regclass, a.attname, a.attacl)
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
            AND a.attacl IS NOT NULL
         UNION ALL
         SELECT format('policy %s oid=%s %s', p.polrelid::regclass, p.oid, p.polname)
           FROM pg_policy p
         UNION ALL
         SELECT format('default %s', d.defaclacl) FROM pg_default_acl d
         ORDER BY 1",
    )
    .fetch_all(admin)
    .await
    .expect("snapshot")
}

/// Waits (a minute at most) for `registry` to listen for changes, and asserts it does.
pub async fn until_listening(registry: &TenantRegistry) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !registry.is_listening() {
        assert!(
            std::time::Instant::now() < deadline,
            "the registry never listened for changes"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
