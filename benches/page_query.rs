//! Queries per second of the demo's page query through a tenant transaction (RLS, the
//! runtime role) against the same query as one plain statement with an explicit
//! `WHERE account_id = $1` (superuser, no RLS), same connection count, in one run.
//!
//! `cargo bench --bench page_query` (env: `BENCH_SECONDS`, default 5 per round;
//! `BENCH_CONNECTIONS`, default 8). Also compares the signed tenant context (the default:
//! `rls_tenancy.enter` in the BEGIN message, `rls_tenancy.tenant()` in every policy) with the
//! plain one on a second database with the same rows, rounds alternating, the plain
//! policy predicate with the `(SELECT ...)` initplan form, and a `bigint` tenant key with a
//! `uuid` one: the same schema and rows in `app_uuid`, keyed by UUID, declared
//! `key_type = "uuid"`, policies installed by `install_policies` (plain context, as the
//! bigint side), rounds alternating with the bigint schema. And the schema strategy against
//! the RLS strategy on the same rows: the signed database's 200 tenants copied each into a
//! schema of its own (`tenant_N`, created by `migrate_schemas`), the same page query with the
//! tables unqualified through a schema-mode pool, rounds alternating with the signed RLS side.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark aborts on failure"
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::RngExt;
use rls_tenancy::{
    MigrateOptions, REFERENCE_TENANT_MIGRATIONS, ScratchDatabase, Strategy, TenancyDeclaration,
    TenantContextMode, TenantId, TenantPool, TenantPoolOptions, TenantScope, install_policies,
    migrate_schemas,
};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

const ACCOUNTS: i64 = 200;
const PER_PAGE: i64 = 10;
const PAGES: i64 = 50;

/// The demo's page query as sent inside a tenant transaction: RLS adds the tenant.
const PAGE_RLS: &str = "SELECT s.id, s.account_id, s.name, s.is_complete, t.name, p.name
    FROM app.subtasks s
    JOIN app.tasks t ON t.account_id = s.account_id AND t.id = s.task_id
    JOIN app.projects p ON p.account_id = t.account_id AND p.id = t.project_id
    ORDER BY s.name, s.id LIMIT $1 OFFSET $2";

/// The same query with the tenant spelled out, for a role RLS does not apply to.
const PAGE_PLAIN: &str = "SELECT s.id, s.account_id, s.name, s.is_complete, t.name, p.name
    FROM app.subtasks s
    JOIN app.tasks t ON t.account_id = s.account_id AND t.id = s.task_id
    JOIN app.projects p ON p.account_id = t.account_id AND p.id = t.project_id
    WHERE s.account_id = $3
    ORDER BY s.name, s.id LIMIT $1 OFFSET $2";

const FIXTURE: &str = "
    INSERT INTO app.accounts (slug, name)
        SELECT 'tenant-' || a, 'Account ' || a FROM generate_series(1, 200) a;
    INSERT INTO app.projects (account_id, name)
        SELECT a.id, 'project ' || p FROM app.accounts a, generate_series(1, 5) p;
    INSERT INTO app.tasks (account_id, project_id, name)
        SELECT p.account_id, p.id, 'task ' || p.id || '.' || t FROM app.projects p, generate_series(1, 10) t;
    INSERT INTO app.subtasks (account_id, task_id, name)
        SELECT t.account_id, t.id, md5(t.id::text || '.' || s) FROM app.tasks t, generate_series(1, 10) s;
    ANALYZE;";

/// The page query's tables again, in schema `app_uuid`, keyed by UUID (created by the deploy
/// role, as a migration would).
const UUID_SCHEMA: &str = "
    CREATE SCHEMA app_uuid;
    CREATE TABLE app_uuid.accounts (
        id uuid PRIMARY KEY, slug text NOT NULL UNIQUE, name text NOT NULL,
        is_active boolean NOT NULL DEFAULT true);
    CREATE TABLE app_uuid.projects (
        account_id uuid NOT NULL REFERENCES app_uuid.accounts (id),
        id bigint GENERATED ALWAYS AS IDENTITY, name text NOT NULL, PRIMARY KEY (account_id, id));
    CREATE TABLE app_uuid.tasks (
        account_id uuid NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY,
        project_id bigint NOT NULL, name varchar(200) NOT NULL, PRIMARY KEY (account_id, id),
        FOREIGN KEY (account_id, project_id) REFERENCES app_uuid.projects (account_id, id));
    CREATE TABLE app_uuid.subtasks (
        account_id uuid NOT NULL, id bigint GENERATED ALWAYS AS IDENTITY,
        task_id bigint NOT NULL, name varchar(200) NOT NULL,
        is_complete boolean NOT NULL DEFAULT false, PRIMARY KEY (account_id, id),
        FOREIGN KEY (account_id, task_id) REFERENCES app_uuid.tasks (account_id, id));
    CREATE INDEX ON app_uuid.tasks (account_id, project_id);
    CREATE INDEX ON app_uuid.subtasks (account_id, task_id);
    CREATE INDEX ON app_uuid.subtasks (account_id, name, id);";

/// The same rows as [`FIXTURE`], each tenant's id a UUID derived from its bigint id.
const UUID_FIXTURE: &str = "
    INSERT INTO app_uuid.accounts (id, slug, name)
        SELECT md5(a.id::text)::uuid, a.slug, a.name FROM app.accounts a;
    INSERT INTO app_uuid.projects (account_id, name)
        SELECT md5(p.account_id::text)::uuid, p.name FROM app.projects p ORDER BY p.id;
    INSERT INTO app_uuid.tasks (account_id, project_id, name)
        SELECT md5(t.account_id::text)::uuid, t.project_id, t.name FROM app.tasks t ORDER BY t.id;
    INSERT INTO app_uuid.subtasks (account_id, task_id, name)
        SELECT md5(s.account_id::text)::uuid, s.task_id, s.name FROM app.subtasks s ORDER BY s.id;
    ANALYZE;";

const UUID_DECLARATION: &str = r#"
    schema = "app_uuid"
    key_type = "uuid"
    [registry]
    table = "accounts"
    [[tenant_table]]
    name = "projects"
    column = "account_id"
    [[tenant_table]]
    name = "tasks"
    column = "account_id"
    [[tenant_table]]
    name = "subtasks"
    column = "account_id"
"#;

const INITPLAN_POLICIES: &str = "
    DO $$ DECLARE t text; BEGIN
      FOREACH t IN ARRAY ARRAY['users', 'projects', 'tasks', 'subtasks'] LOOP
        EXECUTE format('ALTER POLICY tenant_isolation ON app.%I
          USING (account_id = (SELECT nullif(current_setting(''app.tenant_id'', true), '''')::bigint))
          WITH CHECK (account_id = (SELECT nullif(current_setting(''app.tenant_id'', true), '''')::bigint))', t);
      END LOOP; END $$;";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn random_page() -> (TenantId, i64) {
    let mut rng = rand::rng();
    let tenant = TenantId::new(rng.random_range(1..=ACCOUNTS)).expect("tenant");
    (tenant, rng.random_range(0..PAGES) * PER_PAGE)
}

/// One side of the RLS rounds: a pool, the page query for its schema, and its tenants' ids
/// (tenant `n` at index `n - 1`).
struct RlsSide {
    pool: TenantPool,
    query: String,
    tenants: Arc<Vec<TenantId>>,
}

async fn run_rls(side: &RlsSide, connections: u64, seconds: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (pool, done) = (side.pool.clone(), done.clone());
            let (query, tenants) = (side.query.clone(), side.tenants.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let (tenant, offset) = random_page();
                    let tenant = tenants[tenant.as_i64().expect("bigint") as usize - 1];
                    let scope = TenantScope::new(tenant, "bench".parse().expect("slug"));
                    let mut tx = pool.begin(&scope).await.expect("begin");
                    let rows = sqlx::query(sqlx::AssertSqlSafe(query.as_str()))
                        .bind(PER_PAGE)
                        .bind(offset)
                        .fetch_all(&mut *tx)
                        .await
                        .expect("page");
                    assert_eq!(rows.len() as i64, PER_PAGE);
                    tx.commit().await.expect("commit");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    done.load(Ordering::Relaxed) as f64 / seconds as f64
}

/// The UUID-keyed copy of the schema and data, its policies and grants, and its pool.
async fn uuid_side(db: &ScratchDatabase, admin: &PgPool, connections: u64) -> RlsSide {
    let deploy = PgPool::connect_with(db.deploy_url().connect_options().expect("options"))
        .await
        .expect("deploy pool");
    sqlx::raw_sql(UUID_SCHEMA)
        .execute(&deploy)
        .await
        .expect("uuid schema");
    sqlx::raw_sql(UUID_FIXTURE)
        .execute(admin)
        .await
        .expect("uuid fixture");
    let decl = TenancyDeclaration::parse(UUID_DECLARATION).expect("declaration");
    let options = MigrateOptions::new(db.deploy_url().clone(), db.runtime_role().as_str())
        .expect("options")
        .tenant_context(TenantContextMode::Plain);
    install_policies(&decl, &options)
        .await
        .expect("uuid policies");
    let tenants: Vec<uuid::Uuid> = sqlx::query_scalar(
        "SELECT md5(a::text)::uuid FROM generate_series(1, $1::bigint) a ORDER BY a",
    )
    .bind(ACCOUNTS)
    .fetch_all(admin)
    .await
    .expect("uuid tenants");
    // The guard judges one declaration per database; the bigint pool was checked already.
    let pool = TenantPool::connect(
        db.runtime_url(),
        TenantPoolOptions::new(decl)
            .max_connections(connections as u32)
            .skip_guard(),
    )
    .await
    .expect("uuid tenant pool");
    RlsSide {
        pool,
        query: PAGE_RLS.replace("app.", "app_uuid."),
        tenants: Arc::new(
            tenants
                .into_iter()
                .map(|id| TenantId::from_uuid(id).expect("uuid"))
                .collect(),
        ),
    }
}

/// The signed database's rows again, each tenant's in its own schema, and a schema-mode pool.
async fn schema_side(
    db: &ScratchDatabase,
    connections: u64,
    tenants: Arc<Vec<TenantId>>,
) -> RlsSide {
    let admin = db.admin_pool().await.expect("admin");
    let key = db.tenant_key().expect("signed").clone();
    let decl = TenancyDeclaration::reference()
        .expect("declaration")
        .with_strategy(Strategy::Schema);
    let options = MigrateOptions::new(db.deploy_url().clone(), db.runtime_role().as_str())
        .expect("options")
        .tenant_key(key.clone());
    install_policies(&decl, &options)
        .await
        .expect("schema-mode grants");
    sqlx::raw_sql("UPDATE app.accounts SET schema_name = 'tenant_' || id")
        .execute(&admin)
        .await
        .expect("schema names");
    migrate_schemas(&REFERENCE_TENANT_MIGRATIONS, &decl, &options, 4)
        .await
        .expect("tenant schemas");
    for id in 1..=ACCOUNTS {
        let copy = format!(
            "INSERT INTO tenant_{id}.projects (account_id, id, name, details) OVERRIDING SYSTEM VALUE
                 SELECT account_id, id, name, details FROM app.projects WHERE account_id = {id};
             INSERT INTO tenant_{id}.tasks (account_id, id, project_id, name, is_complete, details) OVERRIDING SYSTEM VALUE
                 SELECT account_id, id, project_id, name, is_complete, details FROM app.tasks WHERE account_id = {id};
             INSERT INTO tenant_{id}.subtasks (account_id, id, task_id, name, is_complete, details) OVERRIDING SYSTEM VALUE
                 SELECT account_id, id, task_id, name, is_complete, details FROM app.subtasks WHERE account_id = {id};
             ANALYZE tenant_{id}.projects, tenant_{id}.tasks, tenant_{id}.subtasks;"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(copy))
            .execute(&admin)
            .await
            .expect("copy a tenant's rows");
    }
    let pool = TenantPool::connect(
        db.runtime_url(),
        TenantPoolOptions::new(decl)
            .max_connections(connections as u32)
            .tenant_key(key),
    )
    .await
    .expect("schema-mode tenant pool");
    RlsSide {
        pool,
        query: PAGE_RLS.replace("app.", ""),
        tenants,
    }
}

async fn run_plain(pool: &PgPool, connections: u64, seconds: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (pool, done) = (pool.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let (tenant, offset) = random_page();
                    let rows = sqlx::query(PAGE_PLAIN)
                        .bind(PER_PAGE)
                        .bind(offset)
                        .bind(tenant.as_i64())
                        .fetch_all(&pool)
                        .await
                        .expect("page");
                    assert_eq!(rows.len() as i64, PER_PAGE);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.expect("worker");
    }
    done.load(Ordering::Relaxed) as f64 / seconds as f64
}

/// Vacuums, freezes and checkpoints a database whose rows were just written, as a live
/// table settles: otherwise the first readers set hint bits and autovacuum starts mid-round,
/// in one database and not the other. One statement a message: VACUUM refuses to run in the
/// implicit transaction of several.
async fn settle(admin: &PgPool) {
    for sql in ["VACUUM (FREEZE, ANALYZE)", "CHECKPOINT"] {
        sqlx::raw_sql(sql).execute(admin).await.expect(sql);
    }
}

#[tokio::main]
async fn main() {
    let seconds = env_or("BENCH_SECONDS", 5);
    let connections = env_or("BENCH_CONNECTIONS", 8);
    let db = ScratchDatabase::migrated().await.expect("scratch database");
    let admin = db.admin_pool().await.expect("admin");
    sqlx::raw_sql(FIXTURE)
        .execute(&admin)
        .await
        .expect("fixture");
    let signed_db = ScratchDatabase::migrated_signed()
        .await
        .expect("signed scratch database");
    sqlx::raw_sql(FIXTURE)
        .execute(&signed_db.admin_pool().await.expect("admin"))
        .await
        .expect("fixture");

    let options = TenantPoolOptions::new(TenancyDeclaration::reference().expect("declaration"))
        .max_connections(connections as u32);
    let bigint_ids = Arc::new(
        (1..=ACCOUNTS)
            .map(|id| TenantId::new(id).expect("id"))
            .collect::<Vec<_>>(),
    );
    let side = |pool| RlsSide {
        pool,
        query: PAGE_RLS.to_owned(),
        tenants: bigint_ids.clone(),
    };
    let runtime = side(
        TenantPool::connect(db.runtime_url(), options.clone())
            .await
            .expect("tenant pool"),
    );
    let key = signed_db.tenant_key().expect("signed").clone();
    let signed = side(
        TenantPool::connect(signed_db.runtime_url(), options.tenant_key(key))
            .await
            .expect("signed tenant pool"),
    );
    let uuid = uuid_side(&db, &admin, connections).await;
    let in_schemas = schema_side(&signed_db, connections, bigint_ids.clone()).await;
    let plain = PgPoolOptions::new()
        .max_connections(connections as u32)
        .connect_with(db.admin_url().connect_options().expect("options"))
        .await
        .expect("plain pool");

    settle(&admin).await;
    settle(&signed_db.admin_pool().await.expect("admin")).await;
    println!(
        "page query, {ACCOUNTS} tenants x 500 subtasks, {connections} connections, {seconds} s a round"
    );
    // Warm both, then alternate so drift on a shared machine hits both sides alike.
    run_rls(&runtime, connections, 1).await;
    run_rls(&signed, connections, 1).await;
    run_rls(&uuid, connections, 1).await;
    run_plain(&plain, connections, 1).await;
    // Sums of each side's rates, in the order below; each round starts with the next side,
    // so that no side always runs right after the same one or last (a load that grows
    // during a round would otherwise count against the same side every time).
    let mut sums = [0.0; 4];
    let rounds = env_or("BENCH_ROUNDS", 2);
    for round in 0..rounds {
        for turn in 0..sums.len() {
            let side = (round as usize + turn) % sums.len();
            sums[side] += match side {
                0 => run_rls(&runtime, connections, seconds).await,
                1 => run_rls(&signed, connections, seconds).await,
                2 => run_plain(&plain, connections, seconds).await,
                _ => run_rls(&uuid, connections, seconds).await,
            } / rounds as f64;
        }
    }
    let [rls, signed_rls, base, by_uuid] = sums;
    run_rls(&in_schemas, connections, 1).await;
    let (mut by_schema, mut signed2) = (0.0, 0.0);
    for _ in 0..rounds {
        signed2 += run_rls(&signed, connections, seconds).await / rounds as f64;
        by_schema += run_rls(&in_schemas, connections, seconds).await / rounds as f64;
    }
    sqlx::raw_sql(INITPLAN_POLICIES)
        .execute(&admin)
        .await
        .expect("initplan policies");
    let mut initplan = 0.0;
    let mut base2 = 0.0;
    for _ in 0..2 {
        initplan += run_rls(&runtime, connections, seconds).await / 2.0;
        base2 += run_plain(&plain, connections, seconds).await / 2.0;
    }
    println!("plain statement, explicit WHERE (baseline): {base:>8.0} q/s");
    println!(
        "tenant transaction + RLS (canonical):       {rls:>8.0} q/s   ratio {:.2}",
        rls / base
    );
    println!(
        "tenant transaction + RLS (signed context):  {signed_rls:>8.0} q/s   ratio {:.2}, {:.3} of the plain context",
        signed_rls / base,
        signed_rls / rls
    );
    println!(
        "same, uuid tenant key (app_uuid):           {by_uuid:>8.0} q/s   ratio {:.2}, uuid / bigint {:.3}",
        by_uuid / base,
        by_uuid / rls
    );
    println!("baseline, second pair:                      {base2:>8.0} q/s");
    println!(
        "tenant transaction + RLS (initplan form):   {initplan:>8.0} q/s   ratio {:.2}",
        initplan / base2
    );
    println!("RLS strategy (signed), second pair:         {signed2:>8.0} q/s");
    println!(
        "schema strategy, same rows (signed):        {by_schema:>8.0} q/s   schema / RLS {:.3}",
        by_schema / signed2
    );
}
