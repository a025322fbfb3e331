//! `rls-migrate --strategy schema --schemas SELECTOR`: which schemas each selector names
//! (`all`, `:shared:`, `:static:`, `:dynamic:`, a schema name, a domain or slug prefix), static
//! tenants migrated with their own migrations directory, an unknown selector refused with
//! nothing changed, and a failing schema finished by a rerun of the same selector.

use std::path::{Path, PathBuf};

use rls_tenancy::{
    MigrateError, SchemaSelector, ScratchDatabase, Strategy, TenancyDeclaration, select_schemas,
};
use sqlx::PgPool;

use crate::migrate::rls_migrate;

/// The reference declaration in the schema mode with two static tenants: `www` on
/// `example.com` (the tenant migrations) and `blog` on `blog.example.com` and
/// `help.example.com` (its own migrations: a `posts` table).
pub fn static_declaration(dir: &Path) -> PathBuf {
    let blog = dir.join("blog");
    std::fs::create_dir_all(&blog).expect("blog migrations dir");
    std::fs::write(
        blog.join("20261130000001_posts.sql"),
        "CREATE TABLE posts (
             account_id bigint NOT NULL REFERENCES app.accounts (id),
             id         bigint GENERATED ALWAYS AS IDENTITY,
             title      text NOT NULL,
             PRIMARY KEY (account_id, id)
         );",
    )
    .expect("blog migration");
    let reference = std::fs::read_to_string("policies/tenancy.toml").expect("reference");
    let text = format!(
        "{}\n[[static_tenant]]\nname = \"www\"\nschema = \"www\"\ndomains = [\"example.com\"]\n\n\
         [[static_tenant]]\nname = \"blog\"\nschema = \"blog\"\n\
         domains = [\"blog.example.com\", \"help.example.com\"]\nmigrations = {:?}\n\
         [[static_tenant.tenant_table]]\nname = \"posts\"\ncolumn = \"account_id\"\n",
        reference.replace("strategy = \"rls\"", "strategy = \"schema\""),
        blog.display().to_string(),
    );
    let path = dir.join("tenancy.toml");
    std::fs::write(&path, text).expect("declaration");
    path
}

/// A database migrated by `rls-migrate --strategy schema` with the static tenants, and two
/// dynamic tenants registered but not migrated: `tenant-a` (schema `tenant_a`, domain
/// `crm.acme.test`) and `tenant-b` (schema `tenant_b`).
struct Site {
    db: ScratchDatabase,
    admin: PgPool,
    decl: TenancyDeclaration,
    args: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Site {
    async fn new() -> Self {
        let db = ScratchDatabase::create().await.expect("scratch database");
        let admin = db.admin_pool().await.expect("admin");
        let dir = tempfile::tempdir().expect("tempdir");
        let decl_path = static_declaration(dir.path());
        let key = dir.path().join("tenant.key");
        let args: Vec<String> = [
            "--strategy",
            "schema",
            "--runtime-role",
            db.runtime_role().as_str(),
            "--tenant-key-file",
            key.to_str().expect("utf-8"),
            "--declaration",
            decl_path.to_str().expect("utf-8"),
        ]
        .map(str::to_owned)
        .into();
        let site = Self {
            decl: TenancyDeclaration::from_file(&decl_path)
                .expect("declaration")
                .with_strategy(Strategy::Schema),
            db,
            admin,
            args,
            _dir: dir,
        };
        let (code, output) = site.migrate(&[]);
        assert_eq!(code, 0, "{output}");
        assert!(
            output.contains("blog: migrated [20261130000001]"),
            "{output}"
        );
        assert!(
            output.contains("www: migrated [20261130000001]"),
            "{output}"
        );
        sqlx::raw_sql(
            "INSERT INTO app.accounts (slug, name, schema_name)
                 VALUES ('tenant-a', 'A', 'tenant_a'), ('tenant-b', 'B', 'tenant_b');
             INSERT INTO app.domains (domain, account_id, is_primary)
                 SELECT 'crm.acme.test', id, true FROM app.accounts WHERE slug = 'tenant-a'",
        )
        .execute(&site.admin)
        .await
        .expect("dynamic tenants");
        site
    }

    fn migrate(&self, extra: &[&str]) -> (i32, String) {
        let mut args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        args.extend(extra);
        rls_migrate(&args, Some(self.db.deploy_url().expose_secret()))
    }

    async fn schemas(&self) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT nspname::text FROM pg_namespace
              WHERE nspname IN ('www', 'blog', 'tenant_a', 'tenant_b') ORDER BY 1",
        )
        .fetch_all(&self.admin)
        .await
        .expect("schemas")
    }
}

#[tokio::test]
async fn each_selector_names_its_schemas() {
    let site = Site::new().await;
    let mut conn = rls_tenancy::connect(site.db.deploy_url())
        .await
        .expect("deploy");
    for (selector, shared, schemas) in [
        ("all", true, &["blog", "tenant_a", "tenant_b", "www"][..]),
        (":shared:", true, &[][..]),
        (":static:", false, &["blog", "www"][..]),
        (":dynamic:", false, &["tenant_a", "tenant_b"][..]),
        ("tenant_b", false, &["tenant_b"][..]),
        ("www", false, &["www"][..]),
        ("app", true, &[][..]),
        ("crm.acme", false, &["tenant_a"][..]),
        ("help.", false, &["blog"][..]),
        ("example.com", false, &["www"][..]),
        ("tenant-", false, &["tenant_a", "tenant_b"][..]),
    ] {
        let parsed: SchemaSelector = selector.parse().expect("selector");
        let selection = select_schemas(&mut conn, &site.decl, &parsed)
            .await
            .expect("selection");
        assert_eq!(selection.shared, shared, "{selector}: shared");
        assert_eq!(selection.names(), schemas, "{selector}");
    }
    let blog = select_schemas(&mut conn, &site.decl, &"blog".parse().expect("selector"))
        .await
        .expect("blog");
    assert_eq!(
        blog.tenants[0]
            .static_tenant
            .as_ref()
            .map(|t| t.name.as_str()),
        Some("blog")
    );
    let err = select_schemas(&mut conn, &site.decl, &"initech".parse().expect("selector"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, MigrateError::NoSchemaMatches { selector } if selector == "initech"),
        "{err}"
    );
    for bad in [":tenants:", "Tenant_A", "a b", "", "tenant;drop"] {
        let err = bad.parse::<SchemaSelector>().unwrap_err();
        assert!(
            matches!(err, MigrateError::UnknownSelector { .. }),
            "{bad:?}: {err}"
        );
        assert!(err.is_usage());
    }
}

#[tokio::test]
async fn static_tenants_get_a_registry_row_and_their_own_tables() {
    let site = Site::new().await;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT slug, schema_name FROM app.accounts WHERE slug IN ('www', 'blog') ORDER BY 1",
    )
    .fetch_all(&site.admin)
    .await
    .expect("rows");
    assert_eq!(
        rows,
        [
            ("blog".to_owned(), "blog".to_owned()),
            ("www".to_owned(), "www".to_owned())
        ]
    );
    let tables: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text, c.relforcerowsecurity
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname IN ('www', 'blog') AND c.relkind = 'r'
            AND c.relname NOT LIKE '\\_rls%'
          ORDER BY 1, 2",
    )
    .fetch_all(&site.admin)
    .await
    .expect("tables");
    let blog: Vec<(&str, bool)> = tables
        .iter()
        .filter(|t| t.0 == "blog")
        .map(|t| (t.1.as_str(), t.2))
        .collect();
    assert_eq!(blog, [("posts", true)], "blog has its own tables only");
    let www: Vec<&str> = tables
        .iter()
        .filter(|t| t.0 == "www")
        .map(|t| t.1.as_str())
        .collect();
    assert_eq!(www, ["projects", "subtasks", "tasks", "users"]);
    assert!(tables.iter().all(|t| t.2), "every table is protected");
}

#[tokio::test]
async fn an_unknown_selector_exits_2_and_changes_nothing() {
    let site = Site::new().await;
    let before = site.schemas().await;
    assert_eq!(before, ["blog", "www"]);
    for (selector, says) in [
        (":tenants:", "unknown schema selector \":tenants:\""),
        ("Tenant_A", "unknown schema selector \"Tenant_A\""),
        (
            "initech",
            "no schema, tenant slug or domain matches \"initech\"",
        ),
    ] {
        let (code, output) = site.migrate(&["--schemas", selector]);
        assert_eq!(code, 2, "{selector}: {output}");
        assert!(output.contains(says), "{selector}: {output}");
        assert_eq!(output.trim().lines().count(), 1, "one line: {output}");
    }
    assert_eq!(site.schemas().await, before, "nothing changed");
}

#[tokio::test]
async fn a_selector_migrates_only_its_schemas_and_a_rerun_finishes_a_failed_one() {
    let site = Site::new().await;
    let (code, output) = site.migrate(&["--schemas", "crm.acme"]);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("tenant_a: migrated"), "{output}");
    assert!(!output.contains("tenant_b"), "{output}");
    assert!(
        !output.contains("migrations:"),
        "the shared schema is not selected: {output}"
    );
    assert_eq!(site.schemas().await, ["blog", "tenant_a", "www"]);

    let mut deploy = rls_tenancy::connect(site.db.deploy_url())
        .await
        .expect("deploy");
    sqlx::raw_sql("CREATE SCHEMA tenant_b; CREATE TABLE tenant_b.users (in_the_way int)")
        .execute(&mut deploy)
        .await
        .expect("obstacle");
    let (code, output) = site.migrate(&["--schemas", ":dynamic:", "--jobs", "2"]);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("tenant_a: already current"), "{output}");
    assert!(output.contains("tenant_b: FAILED"), "{output}");
    assert!(!output.contains("www"), "{output}");

    sqlx::raw_sql("DROP TABLE tenant_b.users")
        .execute(&mut deploy)
        .await
        .expect("clear the way");
    let (code, output) = site.migrate(&["--schemas", ":dynamic:"]);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("tenant_b: migrated [20261130000001]"),
        "{output}"
    );
    assert!(output.contains("tenant_a: already current"), "{output}");
    assert!(
        output.contains("tenant schemas: 1 migrated, 1 already current, 0 failed"),
        "{output}"
    );
}
