//! Static tenants under the RLS strategy: `rls-migrate` gives each a registry row, its
//! declared domains route to it (to a router of its own), its rows sit behind the policies
//! like any tenant's, and own tables are refused; `rls-tenant` refuses to drop, rename or
//! suspend it, and `run --tenants` reads the selectors `rls-migrate --schemas` reads.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use rls_tenancy::http::{
    AppError, AppState, TenantSource, TenantTxLayer, Tx, route_static_tenants,
};
use rls_tenancy::{
    LifecycleError, MigrateError, MigrateOptions, NewTenant, RegistryOptions, RunOutcome,
    SchemaSelector, ScratchDatabase, TenancyDeclaration, TenantContextMode, TenantLifecycle,
    TenantPool, TenantPoolOptions, TenantSlug,
};
use sqlx::PgPool;

use super::cli::Binary;
use crate::http::send;
use crate::migrate::rls_migrate;
use crate::support::catalog_snapshot;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The reference declaration (RLS strategy) with static tenant `www` on `example.com` and
/// `www.example.com`; with `own_tables`, `www` declares a table of its own too.
fn declaration(dir: &Path, own_tables: bool) -> PathBuf {
    let reference = std::fs::read_to_string("policies/tenancy.toml").expect("reference");
    assert!(
        reference.contains("strategy = \"rls\""),
        "the reference is RLS"
    );
    let mut text = format!(
        "{reference}\n[[static_tenant]]\nname = \"www\"\nschema = \"www\"\n\
         domains = [\"example.com\", \"www.example.com\"]\n"
    );
    if own_tables {
        text.push_str(
            "[[static_tenant.tenant_table]]\nname = \"posts\"\ncolumn = \"account_id\"\n",
        );
    }
    let path = dir.join(if own_tables {
        "own.toml"
    } else {
        "tenancy.toml"
    });
    std::fs::write(&path, text).expect("declaration");
    path
}

/// `rls-migrate` (plain tenant context) with the declaration at `path`: exit code and output.
fn migrate(db: &ScratchDatabase, path: &Path) -> (i32, String) {
    rls_migrate(
        &[
            "--runtime-role",
            db.runtime_role().as_str(),
            "--tenant-context",
            "plain",
            "--declaration",
            path.to_str().expect("utf-8"),
        ],
        Some(db.deploy_url().expose_secret()),
    )
}

/// A database `rls-migrate` (RLS strategy, plain context) migrated with static tenant `www`,
/// and dynamic tenants `acme` and `globex`, each with one project.
struct Statics {
    db: ScratchDatabase,
    admin: PgPool,
    decl: TenancyDeclaration,
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Statics {
    async fn new() -> Self {
        let db = ScratchDatabase::create().await.expect("scratch database");
        let admin = db.admin_pool().await.expect("admin");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = declaration(dir.path(), false);
        let (code, output) = migrate(&db, &path);
        assert_eq!(code, 0, "{output}");
        sqlx::raw_sql(
            "INSERT INTO app.accounts (slug, name) VALUES ('acme', 'Acme'), ('globex', 'Globex');
             INSERT INTO app.projects (account_id, name)
                 SELECT id, slug || ' project' FROM app.accounts;",
        )
        .execute(&admin)
        .await
        .expect("tenants and rows");
        Self {
            decl: TenancyDeclaration::from_file(&path).expect("declaration"),
            db,
            admin,
            path,
            _dir: dir,
        }
    }

    async fn lifecycle(&self) -> TenantLifecycle {
        let options = MigrateOptions::new(
            self.db.deploy_url().clone(),
            self.db.runtime_role().as_str(),
        )
        .expect("options")
        .tenant_context(TenantContextMode::Plain);
        TenantLifecycle::connect(self.decl.clone(), options)
            .await
            .expect("lifecycle")
            .base_domain("example.com".parse().expect("base"))
    }

    /// The registry and domains rows and the catalog.
    async fn snapshot(&self) -> (Vec<String>, Vec<String>) {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT format('%s %s %s', id, slug, is_active) FROM app.accounts
             UNION ALL SELECT format('domain %s %s', domain, account_id) FROM app.domains
             ORDER BY 1",
        )
        .fetch_all(&self.admin)
        .await
        .expect("rows");
        (catalog_snapshot(&self.admin).await, rows)
    }
}

fn slug(s: &str) -> TenantSlug {
    s.parse().expect("slug")
}

async fn projects(mut tx: Tx) -> Result<String, AppError> {
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM app.projects ORDER BY name")
        .fetch_all(tx.conn())
        .await?;
    Ok(names.join(", "))
}

#[tokio::test]
async fn a_static_tenant_in_the_rls_mode_is_routed_by_its_domains_to_its_own_router() -> TestResult
{
    let s = Statics::new().await;
    let pool = TenantPool::connect(
        s.db.runtime_url(),
        TenantPoolOptions::new(s.decl.clone()).max_connections(2),
    )
    .await?;
    let registry = pool.registry(RegistryOptions::default());
    let state = AppState::new(pool, registry, "example.com".parse()?)
        .with_tenant_source(TenantSource::Host);
    let site = |prefix: &'static str| {
        Router::new()
            .route(
                "/",
                get(move |tx: Tx| async move {
                    Ok::<_, AppError>(format!("{prefix}: {}", projects(tx).await?))
                }),
            )
            .layer(TenantTxLayer)
            .with_state(state.clone())
    };
    let app = route_static_tenants(site("app"), [(slug("www"), site("landing"))], state.clone());
    for (host, body) in [
        ("example.com", "landing: www project"),
        ("www.example.com", "landing: www project"),
        ("acme.example.com", "app: acme project"),
        ("globex.example.com", "app: globex project"),
    ] {
        let reply = send(&app, Some(host), "/").await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, body),
            "{host}"
        );
    }
    assert_eq!(
        send(&app, Some("initech.example.com"), "/").await.status,
        StatusCode::NOT_FOUND
    );
    Ok(())
}

#[tokio::test]
async fn a_static_tenant_with_tables_of_its_own_is_refused_in_the_rls_mode() -> TestResult {
    let db = ScratchDatabase::create().await?;
    let admin = db.admin_pool().await?;
    let dir = tempfile::tempdir()?;
    let path = declaration(dir.path(), true);
    let before = catalog_snapshot(&admin).await;
    let (code, output) = migrate(&db, &path);
    assert_eq!(code, 2, "{output}");
    assert!(
        output.contains("static tenant www") && output.contains("schema strategy"),
        "{output}"
    );
    assert_eq!(catalog_snapshot(&admin).await, before, "nothing migrated");
    Ok(())
}

#[tokio::test]
async fn a_static_tenant_is_not_dropped_renamed_or_suspended() -> TestResult {
    let s = Statics::new().await;
    let lifecycle = s.lifecycle().await;
    let before = s.snapshot().await;
    let refusals = [
        lifecycle.suspend(&slug("www")).await.map(|_| ()),
        lifecycle
            .rename(&slug("www"), &slug("web"))
            .await
            .map(|_| ()),
        lifecycle
            .rename(&slug("acme"), &slug("www"))
            .await
            .map(|_| ()),
        lifecycle.drop_plan(&slug("www")).await.map(|_| ()),
        lifecycle.drop_tenant(&slug("www")).await.map(|_| ()),
    ];
    for refusal in refusals {
        let err = refusal.expect_err("refused");
        assert!(
            matches!(&err, LifecycleError::StaticTenant { slug, .. } if slug == "www"),
            "{err}"
        );
        assert!(err.is_usage());
    }
    assert_eq!(s.snapshot().await, before, "nothing changed");

    let bin = Binary::new(&s.db, "rls").declaration(&s.path);
    for args in [
        &["drop", "www", "--yes"][..],
        &["rename", "www", "web"],
        &["suspend", "www"],
    ] {
        let line = bin.refused(args, "tenant www is a static tenant");
        assert!(line.contains("[[static_tenant]]"), "{line}");
    }
    assert_eq!(s.snapshot().await, before, "nothing changed");
    // A dynamic tenant still can be.
    bin.ok(&["suspend", "acme"]);
    Ok(())
}

#[tokio::test]
async fn run_selects_tenants_as_rls_migrate_selects_schemas() -> TestResult {
    let s = Statics::new().await;
    let lifecycle = s.lifecycle().await;
    lifecycle
        .add_domain(&slug("acme"), &"crm.acme.test".parse()?)
        .await?;
    for (selector, tenants) in [
        ("all", &["acme", "globex", "www"][..]),
        (":static:", &["www"][..]),
        (":dynamic:", &["acme", "globex"][..]),
        ("glo", &["globex"][..]),
        ("crm.acme", &["acme"][..]),
        ("example.com", &["www"][..]),
        ("globex,:static:", &["globex", "www"][..]),
    ] {
        let report = lifecycle
            .run(
                &selector.parse()?,
                "UPDATE app.projects SET details = 'ran'",
            )
            .await?;
        let ran: Vec<&str> = report.tenants.iter().map(|t| t.slug.as_str()).collect();
        assert_eq!(ran, tenants, "{selector}");
        assert!(
            report
                .tenants
                .iter()
                .all(|t| t.outcome == RunOutcome::Done { rows: 1 }),
            "{selector}: each tenant updates its own project only\n{report}"
        );
    }
    let err = lifecycle
        .run(&SchemaSelector::Shared, "SELECT 1")
        .await
        .unwrap_err();
    assert!(
        matches!(err, LifecycleError::InvalidSelector { .. }),
        "{err}"
    );
    let err = lifecycle
        .run(&"acme,initech".parse()?, "SELECT 1")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LifecycleError::Migrate(MigrateError::NoSchemaMatches { selector }) if selector == "initech"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn a_domain_subdomain_routing_gives_another_tenant_is_refused() -> TestResult {
    let s = Statics::new().await;
    let lifecycle = s.lifecycle().await;
    let before = s.snapshot().await;
    let err = lifecycle
        .add_domain(&slug("acme"), &"globex.example.com".parse()?)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("globex"), "{err}");
    assert!(err.is_usage());
    // Not yet a tenant: subdomain routing would still give it to `initech` once created.
    lifecycle
        .add_domain(&slug("acme"), &"initech.example.com".parse()?)
        .await
        .unwrap_err();
    lifecycle
        .create(&NewTenant::new(slug("initech")).domain("acme.example.com".parse()?))
        .await
        .unwrap_err();
    assert_eq!(s.snapshot().await, before, "nothing changed");
    // Its own subdomain, a deeper name and a name outside the base domain pass.
    for own in ["acme.example.com", "crm.globex.example.com", "acme.test"] {
        lifecycle.add_domain(&slug("acme"), &own.parse()?).await?;
    }
    Ok(())
}
