//! The schema mode (`strategy = "schema"`): each tenant in a schema of its own, found through
//! a transaction-local `search_path`, behind the same forced row-level security as the RLS
//! mode. The wall holds on one reused connection (A, B, no tenant, A), raw SQL included.

use rls_tenancy::{
    DbError, MigrateOptions, PlacementError, REFERENCE_TENANT_MIGRATIONS, SchemaOutcome,
    SchemasReport, ScratchDatabase, Strategy, TenancyDeclaration, TenantId, TenantPool,
    TenantPoolOptions, TenantScope, install_policies, migrate_schemas,
};
use sqlx::{PgConnection, PgPool};

use crate::migrate::rls_migrate;
use crate::support::{TENANT_TABLES, sqlstate};

/// A migrated database in the schema mode with tenants `tenant-a` (schema `tenant_a`) and
/// `tenant-b` (schema `tenant_b`), each with one row in every tenant table of its schema.
struct SchemaTenants {
    db: ScratchDatabase,
    admin: PgPool,
    decl: TenancyDeclaration,
    a: TenantScope,
    b: TenantScope,
}

impl SchemaTenants {
    /// With the signed tenant context, the default.
    async fn new() -> Self {
        let db = ScratchDatabase::migrated_signed()
            .await
            .expect("scratch database");
        let admin = db.admin_pool().await.expect("admin pool");
        let decl = TenancyDeclaration::reference()
            .expect("declaration")
            .with_strategy(Strategy::Schema);
        install_policies(&decl, &deploy_options(&db))
            .await
            .expect("schema-mode grants");
        let a = register(&admin, "tenant-a", "tenant_a").await;
        let b = register(&admin, "tenant-b", "tenant_b").await;
        let report = migrate_schemas(&REFERENCE_TENANT_MIGRATIONS, &decl, &deploy_options(&db), 2)
            .await
            .expect("migrate schemas");
        assert!(
            report
                .schemas
                .iter()
                .all(|s| matches!(s.outcome, SchemaOutcome::Migrated { .. })),
            "{report}"
        );
        for (scope, schema) in [(&a, "tenant_a"), (&b, "tenant_b")] {
            insert_rows(&admin, schema, scope).await;
        }
        Self {
            db,
            admin,
            decl,
            a,
            b,
        }
    }

    /// A schema-mode tenant pool over `raw` (the runtime role's connections).
    async fn pool(&self, raw: PgPool) -> TenantPool {
        let key = self.db.tenant_key().expect("signed").clone();
        TenantPool::from_pool(
            raw,
            TenantPoolOptions::new(self.decl.clone()).tenant_key(key),
        )
        .await
        .expect("schema-mode tenant pool (the guard passes)")
    }

    /// `migrate_schemas` again over both tenants' schemas; none fails.
    async fn rerun_without_failures(&self) -> SchemasReport {
        let report = self.rerun(2).await;
        assert!(!report.has_failures(), "{report}");
        report
    }

    /// `migrate_schemas` again over every registered tenant's schema, over `jobs` connections.
    async fn rerun(&self, jobs: u32) -> SchemasReport {
        migrate_schemas(
            &REFERENCE_TENANT_MIGRATIONS,
            &self.decl,
            &deploy_options(&self.db),
            jobs,
        )
        .await
        .expect("rerun")
    }

    /// A connection as the deploy role.
    async fn deploy(&self) -> PgConnection {
        rls_tenancy::connect(self.db.deploy_url())
            .await
            .expect("deploy")
    }

    async fn raw_runtime_pool(&self) -> PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect_with(self.db.runtime_url().connect_options().expect("options"))
            .await
            .expect("runtime pool")
    }
}

fn deploy_options(db: &ScratchDatabase) -> MigrateOptions {
    MigrateOptions::new(db.deploy_url().clone(), db.runtime_role().as_str())
        .expect("options")
        .tenant_key(db.tenant_key().expect("signed").clone())
}

async fn register(admin: &PgPool, slug: &str, schema: &str) -> TenantScope {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO app.accounts (slug, name, schema_name) VALUES ($1, $1, $2) RETURNING id",
    )
    .bind(slug)
    .bind(schema)
    .fetch_one(admin)
    .await
    .expect("account");
    TenantScope::new(TenantId::new(id).expect("id"), slug.parse().expect("slug"))
}

/// One row per tenant table in `schema`, written by the superuser with qualified names.
async fn insert_rows(admin: &PgPool, schema: &str, scope: &TenantScope) {
    let id = scope.id().as_i64().expect("bigint id");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {schema}.users (account_id, email, first_name, last_name, password)
             VALUES ({id}, 'owner@{schema}.test', 'Owner', '{schema}', 'x');
         INSERT INTO {schema}.projects (account_id, name) VALUES ({id}, 'project of {schema}');
         INSERT INTO {schema}.tasks (account_id, project_id, name)
             SELECT {id}, id, 'task of {schema}' FROM {schema}.projects;
         INSERT INTO {schema}.subtasks (account_id, task_id, name)
             SELECT {id}, id, 'subtask of {schema}' FROM {schema}.tasks;"
    )))
    .execute(admin)
    .await
    .expect("rows");
}

/// Each schema's outcome, in the report's order.
fn outcomes(report: &SchemasReport) -> Vec<(&str, SchemaOutcome)> {
    report
        .schemas
        .iter()
        .map(|s| (s.schema.as_str(), s.outcome.clone()))
        .collect()
}

async fn backend_pid(conn: &mut PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(conn)
        .await
        .expect("pid")
}

/// Inside `own`'s transaction: unqualified names are `own`'s tables and show its row only;
/// every table of `other`'s schema, named by hand, shows nothing and takes no write.
async fn assert_walled(conn: &mut PgConnection, own: &TenantScope, other_schema: &str) {
    let own_id = own.id().as_i64().expect("bigint id");
    for table in TENANT_TABLES {
        let seen: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT account_id FROM {table}"
        )))
        .fetch_all(&mut *conn)
        .await
        .expect("own table");
        assert_eq!(seen, [own_id], "{table}: the tenant's own row, and only it");

        let foreign: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT account_id FROM {other_schema}.{table}"
        )))
        .fetch_all(&mut *conn)
        .await
        .expect("the other schema's table is readable, and empty");
        assert!(
            foreign.is_empty(),
            "{other_schema}.{table} leaked {foreign:?}"
        );

        let column = if table == "users" { "email" } else { "name" };
        let updated = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE {other_schema}.{table} SET {column} = 'overwritten'"
        )))
        .execute(&mut *conn)
        .await
        .expect("update");
        assert_eq!(
            updated.rows_affected(),
            0,
            "{other_schema}.{table} was updated"
        );
        let deleted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {other_schema}.{table}"
        )))
        .execute(&mut *conn)
        .await
        .expect("delete");
        assert_eq!(
            deleted.rows_affected(),
            0,
            "{other_schema}.{table} lost rows"
        );
    }
    // A row for the other tenant, written into its schema by hand, is refused by the policy.
    sqlx::query("SAVEPOINT attempt")
        .execute(&mut *conn)
        .await
        .expect("savepoint");
    let other_id: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT CASE WHEN {own_id} = min(id) THEN max(id) ELSE min(id) END FROM app.accounts"
    )))
    .fetch_one(&mut *conn)
    .await
    .expect("the other tenant's id from the registry");
    let insert = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {other_schema}.projects (account_id, name) VALUES ($1, 'planted')"
    )))
    .bind(other_id)
    .execute(&mut *conn)
    .await;
    assert_eq!(sqlstate(&insert).as_deref(), Some("42501"), "{insert:?}");
    sqlx::query("ROLLBACK TO SAVEPOINT attempt")
        .execute(&mut *conn)
        .await
        .expect("rollback to savepoint");
}

#[tokio::test]
async fn another_tenants_schema_shows_nothing_on_one_reused_connection() {
    let t = SchemaTenants::new().await;
    let raw = t.raw_runtime_pool().await;
    let pool = t.pool(raw.clone()).await;

    let mut tx = pool.begin(&t.a).await.expect("A");
    let pid = backend_pid(&mut tx).await;
    let search_path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
        .fetch_one(&mut *tx)
        .await
        .expect("search_path");
    assert_eq!(search_path, r#""tenant_a", "app""#);
    assert_walled(&mut tx, &t.a, "tenant_b").await;
    tx.commit().await.expect("commit A");

    let mut tx = pool.begin(&t.b).await.expect("B");
    assert_eq!(backend_pid(&mut tx).await, pid, "one connection, reused");
    assert_walled(&mut tx, &t.b, "tenant_a").await;
    tx.commit().await.expect("commit B");

    // No tenant, on the same connection: no tenant schema on the path, no row anywhere.
    let mut conn = raw.acquire().await.expect("connection");
    assert_eq!(backend_pid(&mut conn).await, pid, "one connection, reused");
    let search_path: String = sqlx::query_scalar("SELECT current_setting('search_path')")
        .fetch_one(&mut *conn)
        .await
        .expect("search_path");
    assert_eq!(
        search_path, r#""$user", public"#,
        "nothing outlived B's transaction"
    );
    let unqualified = sqlx::query("SELECT * FROM subtasks")
        .fetch_all(&mut *conn)
        .await;
    assert_eq!(
        sqlstate(&unqualified).as_deref(),
        Some("42P01"),
        "{unqualified:?}"
    );
    for schema in ["tenant_a", "tenant_b"] {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {schema}.subtasks"
        )))
        .fetch_one(&mut *conn)
        .await
        .expect("count");
        assert_eq!(n, 0, "{schema}.subtasks without a tenant");
    }
    drop(conn);

    let mut tx = pool.begin(&t.a).await.expect("A again");
    assert_eq!(backend_pid(&mut tx).await, pid, "one connection, reused");
    assert_walled(&mut tx, &t.a, "tenant_b").await;
    tx.commit().await.expect("commit A again");

    // B's rows were there all along, and are untouched.
    for table in TENANT_TABLES {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM tenant_b.{table} WHERE account_id = $1"
        )))
        .bind(t.b.id().as_i64())
        .fetch_one(&t.admin)
        .await
        .expect("count");
        assert_eq!(n, 1, "tenant_b.{table}");
    }
}

#[tokio::test]
async fn the_scoped_builder_reaches_the_tenants_own_schema() {
    let t = SchemaTenants::new().await;
    let pool = t.pool(t.raw_runtime_pool().await).await;
    let select = t.a.select(&t.decl).from("subtasks").column("name");
    let (sql, _) = rls_tenancy::Statement::build(&select).expect("sql");
    assert!(sql.contains(r#"FROM "subtasks""#), "unqualified: {sql}");
    let mut tx = pool.begin(&t.a).await.expect("A");
    let names: Vec<(String,)> = tx.fetch_all(&select).await.expect("rows");
    assert_eq!(names, [("subtask of tenant_a".to_owned(),)]);
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn a_tenant_without_a_schema_gets_no_transaction() {
    let t = SchemaTenants::new().await;
    let pool = t.pool(t.raw_runtime_pool().await).await;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO app.accounts (slug, name) VALUES ('homeless', 'homeless') RETURNING id",
    )
    .fetch_one(&t.admin)
    .await
    .expect("account");
    let scope = TenantScope::new(
        TenantId::new(id).expect("id"),
        "homeless".parse().expect("slug"),
    );
    let err = pool.begin(&scope).await.map(|_| ()).unwrap_err();
    assert!(
        matches!(err, DbError::Placement(PlacementError::NoSchema { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn a_schema_that_fails_to_migrate_stops_no_other_and_a_rerun_completes_it() {
    let t = SchemaTenants::new().await;
    let options = deploy_options(&t.db);
    // tenant_c holds a table in the way of the first tenant migration.
    register(&t.admin, "tenant-c", "tenant_c").await;
    let mut deploy = t.deploy().await;
    sqlx::raw_sql("CREATE SCHEMA tenant_c; CREATE TABLE tenant_c.users (in_the_way int)")
        .execute(&mut deploy)
        .await
        .expect("obstacle");
    register(&t.admin, "tenant-d", "tenant_d").await;
    let report = migrate_schemas(&REFERENCE_TENANT_MIGRATIONS, &t.decl, &options, 2)
        .await
        .expect("run");
    let outcomes: Vec<(&str, &SchemaOutcome)> = report
        .schemas
        .iter()
        .map(|s| (s.schema.as_str(), &s.outcome))
        .collect();
    assert!(
        matches!(outcomes[0], ("tenant_a", SchemaOutcome::Current)),
        "{report}"
    );
    assert!(
        matches!(outcomes[1], ("tenant_b", SchemaOutcome::Current)),
        "{report}"
    );
    assert!(
        matches!(outcomes[2], ("tenant_c", SchemaOutcome::Failed { error }) if error.contains("already exists")),
        "{report}"
    );
    assert!(
        matches!(outcomes[3], ("tenant_d", SchemaOutcome::Migrated { .. })),
        "{report}"
    );
    assert!(report.has_failures());

    sqlx::raw_sql("DROP TABLE tenant_c.users")
        .execute(&mut deploy)
        .await
        .expect("clear the way");
    let rerun = migrate_schemas(&REFERENCE_TENANT_MIGRATIONS, &t.decl, &options, 2)
        .await
        .expect("rerun");
    let migrated: Vec<&str> = rerun
        .schemas
        .iter()
        .filter(|s| matches!(s.outcome, SchemaOutcome::Migrated { .. }))
        .map(|s| s.schema.as_str())
        .collect();
    assert_eq!(migrated, ["tenant_c"], "{rerun}");
    assert!(!rerun.has_failures(), "{rerun}");
}

#[tokio::test]
async fn a_grant_on_a_relation_the_declaration_does_not_name_is_taken_back_by_a_rerun() {
    let t = SchemaTenants::new().await;
    let runtime = t.db.runtime_role();
    // What a careless later change could leave in a tenant schema: a table and a view the
    // declaration does not name, readable by the runtime role, made by the deploy role.
    let mut deploy = t.deploy().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE tenant_b.copy AS SELECT * FROM tenant_b.users;
         GRANT SELECT ON tenant_b.copy TO {runtime};
         CREATE VIEW tenant_b.copy_view AS SELECT * FROM tenant_b.copy;
         GRANT SELECT ON tenant_b.copy_view TO {runtime}"
    )))
    .execute(&mut deploy)
    .await
    .expect("undeclared relations");
    let readable = |name: &'static str| {
        sqlx::query_scalar::<_, bool>("SELECT has_table_privilege($1, $2, 'SELECT')")
            .bind(runtime.as_str())
            .bind(name)
    };
    assert!(
        readable("tenant_b.copy")
            .fetch_one(&t.admin)
            .await
            .expect("before"),
        "the grant is in place before the rerun"
    );
    let report = t.rerun_without_failures().await;
    assert_eq!(
        outcomes(&report),
        [
            ("tenant_a", SchemaOutcome::Current),
            ("tenant_b", SchemaOutcome::Migrated { applied: vec![] }),
        ],
        "a schema whose grants were repaired is reported as such: {report}"
    );
    for name in ["tenant_b.copy", "tenant_b.copy_view"] {
        assert!(
            !readable(name).fetch_one(&t.admin).await.expect("after"),
            "{name} is no longer readable by the runtime role"
        );
    }
}

#[tokio::test]
async fn a_rerun_takes_back_a_table_wide_update_and_create_on_the_schema() {
    let t = SchemaTenants::new().await;
    let runtime = t.db.runtime_role();
    // The schema's records and policies stay current; only its grants are off, in ways a
    // rerun's quick "already current" check must not miss: in tenant_b a table-wide UPDATE
    // (the tenant column becomes updatable) and CREATE on the schema; in tenant_a CREATE only
    // (taken back without the full reset of the schema's grants).
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "GRANT UPDATE ON tenant_b.projects TO {runtime};
         GRANT CREATE ON SCHEMA tenant_b TO {runtime};
         GRANT CREATE ON SCHEMA tenant_a TO {runtime}"
    )))
    .execute(&t.admin)
    .await
    .expect("grants changed by hand");
    let privileges = || {
        sqlx::query_as::<_, (bool, bool, bool, bool)>(
            "SELECT has_column_privilege($1, 'tenant_b.projects', 'account_id', 'UPDATE'),
                    has_column_privilege($1, 'tenant_b.projects', 'name', 'UPDATE'),
                    has_schema_privilege($1, 'tenant_b', 'CREATE'),
                    has_schema_privilege($1, 'tenant_a', 'CREATE')",
        )
        .bind(runtime.as_str())
    };
    assert_eq!(
        privileges().fetch_one(&t.admin).await.expect("before"),
        (true, true, true, true)
    );
    let report = t.rerun_without_failures().await;
    assert_eq!(
        outcomes(&report),
        [
            ("tenant_a", SchemaOutcome::Migrated { applied: vec![] }),
            ("tenant_b", SchemaOutcome::Migrated { applied: vec![] }),
        ],
        "{report}"
    );
    assert_eq!(
        privileges().fetch_one(&t.admin).await.expect("after"),
        (false, true, false, false),
        "the tenant column is no longer updatable (the others still are) and both schemas are \
         closed to CREATE again"
    );
}

#[tokio::test]
async fn a_rerun_repairs_a_tampered_policy_a_dropped_force_and_an_extra_policy() {
    let t = SchemaTenants::new().await;
    let mut deploy = t.deploy().await;
    // Each a way for a schema to look current by its migration records while its wall is
    // down; the rerun's "already current" read must see every one.
    sqlx::raw_sql(
        "ALTER POLICY tenant_isolation ON tenant_b.tasks USING (true);
         ALTER TABLE tenant_b.users NO FORCE ROW LEVEL SECURITY;
         CREATE POLICY open_door ON tenant_a.projects USING (true)",
    )
    .execute(&mut deploy)
    .await
    .expect("tamper");
    let report = t.rerun_without_failures().await;
    assert!(
        report
            .schemas
            .iter()
            .all(|s| s.outcome == SchemaOutcome::Migrated { applied: vec![] }),
        "both schemas are reported repaired: {report}"
    );
    let (open, unforced, policies): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM pg_policies
                  WHERE schemaname IN ('tenant_a', 'tenant_b') AND qual = 'true'),
                (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname IN ('tenant_a', 'tenant_b') AND c.relkind = 'r'
                    AND c.relname <> '_rls_migrations' AND NOT c.relforcerowsecurity),
                (SELECT count(*) FROM pg_policies WHERE schemaname IN ('tenant_a', 'tenant_b'))",
    )
    .fetch_one(&t.admin)
    .await
    .expect("policy state");
    assert_eq!(
        (open, unforced, policies),
        (0, 0, 2 * TENANT_TABLES.len() as i64),
        "every tenant table of both schemas has its one canonical policy, forced, again"
    );
}

#[tokio::test]
async fn rls_migrate_with_strategy_schema_migrates_each_tenant_schema_and_exits_1_on_a_failure() {
    let db = ScratchDatabase::create().await.expect("scratch database");
    let admin = db.admin_pool().await.expect("admin");
    let deploy = db.deploy_url().expose_secret().to_owned();
    let role = db.runtime_role().as_str().to_owned();
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("tenant.key");
    let key_file = key_file.to_str().expect("utf-8 path");
    let args = [
        "--strategy",
        "schema",
        "--runtime-role",
        &role,
        "--jobs",
        "2",
        "--tenant-key-file",
        key_file,
    ];

    let (code, output) = rls_migrate(&args, Some(&deploy));
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("tenant schemas: 0 migrated, 0 already current, 0 failed"),
        "{output}"
    );

    register(&admin, "tenant-a", "tenant_a").await;
    register(&admin, "tenant-c", "tenant_c").await;
    let mut conn = rls_tenancy::connect(db.deploy_url()).await.expect("deploy");
    sqlx::raw_sql("CREATE SCHEMA tenant_c; CREATE TABLE tenant_c.users (in_the_way int)")
        .execute(&mut conn)
        .await
        .expect("obstacle");
    let (code, output) = rls_migrate(&args, Some(&deploy));
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("tenant_a: migrated [20261130000001]"),
        "{output}"
    );
    assert!(output.contains("tenant_c: FAILED"), "{output}");
    let (code, output) = rls_migrate(&["--strategy", "database"], Some(&deploy));
    assert_eq!(code, 2, "{output}");
    assert!(output.contains("needs at least one server"), "{output}");
}

#[tokio::test]
async fn a_connection_that_served_more_tenants_than_the_limit_is_closed_on_release() {
    let t = SchemaTenants::new().await;
    let raw = t.raw_runtime_pool().await;
    let key = t.db.tenant_key().expect("signed").clone();
    let pool = TenantPool::from_pool(
        raw,
        TenantPoolOptions::new(t.decl.clone())
            .tenant_key(key)
            .recycle_after(1),
    )
    .await
    .expect("schema-mode tenant pool");
    let mut served = Vec::new();
    for scope in [&t.a, &t.a, &t.b, &t.a] {
        let mut tx = pool.begin(scope).await.expect("begin");
        served.push(backend_pid(&mut tx).await);
        tx.commit().await.expect("commit");
    }
    assert_eq!(served[1], served[0], "tenant A again: the same connection");
    assert_eq!(
        served[2], served[0],
        "tenant B on it too: its second tenant"
    );
    assert_ne!(
        served[3], served[0],
        "past one tenant the connection was closed on release, and A gets a fresh one"
    );
}

#[tokio::test]
async fn a_schema_failing_in_the_middle_of_a_batch_is_rolled_back_alone() {
    let t = SchemaTenants::new().await;
    let mut deploy = t.deploy().await;
    // tenant_d's last table is in the way: its first three tables are made, then the script
    // fails inside its savepoint. One connection: tenant_c, tenant_d and tenant_e share a batch.
    register(&t.admin, "tenant-c", "tenant_c").await;
    register(&t.admin, "tenant-d", "tenant_d").await;
    let e = register(&t.admin, "tenant-e", "tenant_e").await;
    sqlx::raw_sql("CREATE SCHEMA tenant_d; CREATE TABLE tenant_d.subtasks (in_the_way int)")
        .execute(&mut deploy)
        .await
        .expect("obstacle");
    let report = t.rerun(1).await;
    let lines = outcomes(&report);
    assert!(
        matches!(&lines[3], ("tenant_d", SchemaOutcome::Failed { error })
            if error.contains("20261130000001") && error.contains("already exists")),
        "{report}"
    );
    for i in [2, 4] {
        assert!(
            matches!(&lines[i].1, SchemaOutcome::Migrated { applied } if applied == &[20261130000001]),
            "{report}"
        );
    }
    let (made, recorded, policed): (Vec<String>, Vec<String>, i64) = sqlx::query_as(
        "SELECT ARRAY(SELECT n.nspname || '.' || c.relname FROM pg_class c
                        JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE n.nspname = 'tenant_d' AND c.relkind = 'r' ORDER BY 1),
                ARRAY(SELECT DISTINCT schema_name FROM app._rls_schema_migrations ORDER BY 1),
                (SELECT count(*) FROM pg_policies WHERE schemaname IN ('tenant_c', 'tenant_e'))",
    )
    .fetch_one(&t.admin)
    .await
    .expect("state");
    assert_eq!(
        made,
        ["tenant_d.subtasks"],
        "nothing of tenant_d's failed migration is left"
    );
    assert_eq!(
        recorded,
        ["tenant_a", "tenant_b", "tenant_c", "tenant_e"],
        "no record for the failed schema"
    );
    assert_eq!(
        policed,
        2 * TENANT_TABLES.len() as i64,
        "the schemas after the failure got their policies"
    );
    let pool = t.pool(t.raw_runtime_pool().await).await;
    let mut tx = pool.begin(&e).await.expect("tenant_e's transaction");
    sqlx::query("INSERT INTO projects (account_id, name) VALUES ($1, 'granted')")
        .bind(e.id().as_i64().expect("bigint id"))
        .execute(&mut *tx)
        .await
        .expect("the runtime role got its grants in tenant_e");
}

#[tokio::test]
async fn an_older_installs_per_schema_records_are_adopted_and_not_applied_again() {
    let t = SchemaTenants::new().await;
    let mut deploy = t.deploy().await;
    // What an install made before the shared records table left: tenant_a's records in a
    // table of its own schema, none in the shared table.
    sqlx::raw_sql(
        "CREATE TABLE tenant_a._rls_migrations (version bigint PRIMARY KEY, description text NOT NULL,
                                                checksum bytea NOT NULL,
                                                installed_on timestamptz NOT NULL DEFAULT now());
         INSERT INTO tenant_a._rls_migrations (version, description, checksum)
             SELECT version, description, checksum FROM app._rls_schema_migrations
              WHERE schema_name = 'tenant_a';
         DELETE FROM app._rls_schema_migrations WHERE schema_name = 'tenant_a'",
    )
    .execute(&mut deploy)
    .await
    .expect("an older install's records");
    let report = t.rerun_without_failures().await;
    assert_eq!(
        outcomes(&report),
        [
            ("tenant_a", SchemaOutcome::Current),
            ("tenant_b", SchemaOutcome::Current),
        ],
        "{report}"
    );
    let (old_table, records): (bool, i64) = sqlx::query_as(
        "SELECT to_regclass('tenant_a._rls_migrations') IS NOT NULL,
                (SELECT count(*) FROM app._rls_schema_migrations WHERE schema_name = 'tenant_a')",
    )
    .fetch_one(&t.admin)
    .await
    .expect("records");
    assert_eq!((old_table, records), (false, 1));
}

/// Runs `by_hand` on tenant_b's schema as the deploy role, then asserts that a rerun makes
/// tenant_b whole again (its tables there, only it migrated) and that the next rerun finds
/// everything current.
async fn a_rerun_makes_tenant_b_again_after(by_hand: &str) {
    let t = SchemaTenants::new().await;
    let mut deploy = t.deploy().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(by_hand.to_owned()))
        .execute(&mut deploy)
        .await
        .expect("by hand");
    let report = t.rerun_without_failures().await;
    assert_eq!(
        outcomes(&report),
        [
            ("tenant_a", SchemaOutcome::Current),
            (
                "tenant_b",
                SchemaOutcome::Migrated {
                    applied: vec![20261130000001]
                }
            ),
        ],
        "{report}"
    );
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = 'tenant_b' AND tablename IN ('users', 'projects', 'tasks', 'subtasks')",
    )
    .fetch_one(&mut deploy)
    .await
    .expect("tables");
    assert_eq!(tables, 4);
    let again = t.rerun_without_failures().await;
    assert!(
        again
            .schemas
            .iter()
            .all(|s| s.outcome == SchemaOutcome::Current),
        "{again}"
    );
}

#[tokio::test]
async fn a_schema_dropped_by_hand_is_made_again_despite_its_records() {
    a_rerun_makes_tenant_b_again_after("DROP SCHEMA tenant_b CASCADE").await;
}

#[tokio::test]
async fn a_schema_dropped_and_made_again_by_hand_is_migrated_again() {
    // Made again before any run sees it gone: the records of the dropped one are still
    // there under the same name, and must not count for the new, empty schema.
    a_rerun_makes_tenant_b_again_after("DROP SCHEMA tenant_b CASCADE; CREATE SCHEMA tenant_b")
        .await;
}

#[tokio::test]
async fn schemas_migrated_in_one_batch_store_the_same_policy_tree_per_table() {
    let t = SchemaTenants::new().await;
    register(&t.admin, "tenant-c", "tenant_c").await;
    register(&t.admin, "tenant-d", "tenant_d").await;
    // One connection: tenant_c and tenant_d share a batch, their policies one script.
    t.rerun(1).await;
    // The "already current" check decompiles one policy per distinct stored tree: a tree
    // that depends on where the policy stood in the script makes it read one per schema.
    let trees: Vec<(String, i64)> = sqlx::query_as(
        "SELECT c.relname::text, count(DISTINCT md5(p.polqual::text || p.polwithcheck::text))
           FROM pg_policy p
           JOIN pg_class c ON c.oid = p.polrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname IN ('tenant_a', 'tenant_b', 'tenant_c', 'tenant_d')
          GROUP BY 1 ORDER BY 1",
    )
    .fetch_all(&t.admin)
    .await
    .expect("policy trees");
    assert_eq!(
        trees,
        [
            ("projects".to_owned(), 1),
            ("subtasks".to_owned(), 1),
            ("tasks".to_owned(), 1),
            ("users".to_owned(), 1),
        ]
    );
}
