//! The `crm` schema (tests/fixtures/crm), an application written only for these tests, through
//! the whole toolkit: its own migrations and declaration, UUID tenant keys, a registry with
//! its own column names, a global table and composite foreign keys.

mod builder;
mod declaration;
mod history;
mod http;
mod isolation;

use std::path::{Path, PathBuf};
use std::process::Command;

use rls_tenancy::{
    MigrateOptions, MigrateReport, ScratchDatabase, TenancyDeclaration, TenantContextMode,
    TenantId, TenantPool, TenantPoolOptions, TenantScope, migrate_with, migrator_from_dir,
};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

/// The fixture's directory: `migrations/` and `tenancy.toml`.
pub fn crm_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/crm")
}

/// The crm migrations, as the application's own `sqlx::migrate::Migrator` reads them.
pub async fn crm_migrator() -> Migrator {
    migrator_from_dir(crm_dir().join("migrations"))
        .await
        .expect("crm migrations")
}

/// The crm declaration.
pub fn crm_declaration() -> TenancyDeclaration {
    TenancyDeclaration::from_file(crm_dir().join("tenancy.toml")).expect("crm declaration")
}

/// Options for migrating `db` as its deploy role.
pub fn migrate_options(db: &ScratchDatabase) -> MigrateOptions {
    MigrateOptions::new(db.deploy_url().clone(), db.runtime_role().as_str())
        .expect("options")
        .tenant_context(TenantContextMode::Plain)
}

/// The crm migrations and declaration applied to `db`, as the deploy role.
pub async fn migrate_crm(db: &ScratchDatabase) -> MigrateReport {
    migrate_with(
        &crm_migrator().await,
        &crm_declaration(),
        &migrate_options(db),
    )
    .await
    .expect("migrate crm")
}

/// What a binary printed and how it exited.
#[derive(Debug)]
pub struct BinRun {
    pub code: Option<i32>,
    pub output: String,
}

/// Runs one of the crate's binaries with `args`, with no connection settings inherited from
/// the environment.
pub fn run_bin(binary: &str, args: &[&str]) -> BinRun {
    let out = Command::new(binary)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("DEPLOY_DATABASE_URL")
        .env_remove("RLS_RUNTIME_ROLE")
        .env_remove("RLS_MIGRATIONS")
        .env_remove("RLS_DECLARATION")
        .output()
        .expect("run the binary");
    BinRun {
        code: out.status.code(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// `rls-migrate` on `db` with the crm migrations and `declaration`.
pub fn rls_migrate(db: &ScratchDatabase, declaration: &Path) -> BinRun {
    let migrations = crm_dir().join("migrations");
    run_bin(
        env!("CARGO_BIN_EXE_rls-migrate"),
        &[
            "--database-url",
            db.deploy_url().expose_secret(),
            "--runtime-role",
            db.runtime_role().as_str(),
            "--migrations",
            migrations.to_str().expect("utf-8 path"),
            "--declaration",
            declaration.to_str().expect("utf-8 path"),
            "--tenant-context",
            "plain",
        ],
    )
}

/// `rls-check` on `db` as its runtime role, with `declaration`.
pub fn rls_check(db: &ScratchDatabase, declaration: &Path) -> BinRun {
    run_bin(
        env!("CARGO_BIN_EXE_rls-check"),
        &[
            "--database-url",
            db.runtime_url().expose_secret(),
            "--declaration",
            declaration.to_str().expect("utf-8 path"),
        ],
    )
}

/// One org's fixture rows.
#[derive(Debug, Clone)]
pub struct Org {
    pub scope: TenantScope,
    pub customer: i64,
    pub invoice: i64,
}

/// The crm schema migrated as the deploy role (by the library, as `rls-migrate` does), the
/// currencies EUR and USD, and two orgs, `org-a` (invoice in EUR) and `org-b` (in USD), each
/// with one customer and one invoice, written as the superuser.
pub struct Crm {
    pub db: ScratchDatabase,
    pub admin: PgPool,
    pub decl: TenancyDeclaration,
    pub pool: TenantPool,
    pub a: Org,
    pub b: Org,
}

impl Crm {
    pub async fn new() -> Self {
        let db = ScratchDatabase::create().await.expect("scratch database");
        migrate_crm(&db).await;
        let admin = db.admin_pool().await.expect("admin pool");
        sqlx::query(
            "INSERT INTO crm.currencies (code, name) VALUES ('EUR', 'Euro'), ('USD', 'US dollar')",
        )
        .execute(&admin)
        .await
        .expect("currencies");
        let a = insert_org(&admin, "org-a", "EUR").await;
        let b = insert_org(&admin, "org-b", "USD").await;
        let decl = crm_declaration();
        let pool = TenantPool::connect(
            db.runtime_url(),
            TenantPoolOptions::new(decl.clone()).max_connections(4),
        )
        .await
        .expect("the guard accepts the crm schema");
        Self {
            db,
            admin,
            decl,
            pool,
            a,
            b,
        }
    }

    /// A plain connection of the runtime role: statements sent on it carry no tenant.
    pub async fn no_tenant(&self) -> sqlx::PgConnection {
        use sqlx::Connection;
        sqlx::PgConnection::connect_with(&self.db.runtime_url().connect_options().expect("options"))
            .await
            .expect("runtime connection")
    }
}

async fn insert_org(admin: &PgPool, handle: &str, currency: &str) -> Org {
    let id: uuid::Uuid =
        sqlx::query_scalar("INSERT INTO crm.orgs (handle, name) VALUES ($1, $1) RETURNING id")
            .bind(handle)
            .fetch_one(admin)
            .await
            .expect("org");
    let customer: i64 = sqlx::query_scalar(
        "INSERT INTO crm.customers (org_id, name, email) VALUES ($1, 'customer of ' || $2, $2 || '@example.test') RETURNING id",
    )
    .bind(id)
    .bind(handle)
    .fetch_one(admin)
    .await
    .expect("customer");
    let invoice: i64 = sqlx::query_scalar(
        "INSERT INTO crm.invoices (org_id, customer_id, currency_code, amount_cents) VALUES ($1, $2, $3, 1000) RETURNING id",
    )
    .bind(id)
    .bind(customer)
    .bind(currency)
    .fetch_one(admin)
    .await
    .expect("invoice");
    Org {
        scope: TenantScope::new(
            TenantId::from_uuid(id).expect("uuid id"),
            handle.parse().expect("handle"),
        ),
        customer,
        invoice,
    }
}

impl Org {
    /// The org's id as a UUID.
    pub fn uuid(&self) -> uuid::Uuid {
        self.scope.id().as_uuid().expect("uuid id")
    }

    /// The id of this org's row in `table`.
    pub fn id(&self, table: &str) -> i64 {
        match table {
            "customers" => self.customer,
            "invoices" => self.invoice,
            other => panic!("not a crm tenant table: {other}"),
        }
    }
}
