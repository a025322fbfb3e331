//! The `rls-tenant` binary: every command end to end in both strategies, exit codes, one-line
//! errors that change nothing, and a suspension a running server sees.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use rls_tenancy::demo::{DemoState, router};
use rls_tenancy::http::AppState;
use rls_tenancy::{RegistryOptions, ScratchDatabase};
use serde_json::Value;

use super::Tenants;
use crate::http::{BASE, Site, send};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// `rls-tenant` as the deploy role of `t`'s database, in its strategy and tenant context.
pub(super) struct Binary<'a> {
    db: &'a ScratchDatabase,
    strategy: &'static str,
    key_dir: tempfile::TempDir,
    declaration: Option<std::path::PathBuf>,
}

impl<'a> Binary<'a> {
    pub(super) fn new(db: &'a ScratchDatabase, strategy: &'static str) -> Self {
        let key_dir = tempfile::tempdir().expect("temp dir");
        if let Some(key) = db.tenant_key() {
            std::fs::write(key_dir.path().join("tenant.key"), key.to_hex()).expect("key file");
        }
        Self {
            db,
            strategy,
            key_dir,
            declaration: None,
        }
    }

    /// With the declaration at `path` (`RLS_DECLARATION`) instead of the reference.
    pub(super) fn declaration(mut self, path: &std::path::Path) -> Self {
        self.declaration = Some(path.to_owned());
        self
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rls-tenant"));
        command
            .arg("--database-url")
            .arg(self.db.deploy_url().expose_secret())
            .args(["--strategy", self.strategy])
            .args(["--runtime-role", self.db.runtime_role().as_str()])
            .env_remove("DEPLOY_DATABASE_URL")
            .env_remove("RLS_STRATEGY")
            .env_remove("RLS_BASE_DOMAIN")
            .env_remove("RUST_LOG");
        if let Some(path) = &self.declaration {
            command.env("RLS_DECLARATION", path);
        }
        match self.db.tenant_key() {
            Some(_) => command
                .arg("--tenant-key-file")
                .arg(self.key_dir.path().join("tenant.key")),
            None => command.args(["--tenant-context", "plain"]),
        };
        command.args(args).output().expect("rls-tenant runs")
    }

    /// Runs and asserts exit code 0; stdout.
    pub(super) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    /// Runs and asserts exit code 2 with one line on stderr naming `names`; that line.
    pub(super) fn refused(&self, args: &[&str], names: &str) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8(out.stderr).expect("utf-8");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.contains("TenantPoolOptions::deploy_role_writer"))
            .collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line: {stderr}");
        assert!(lines[0].starts_with("rls-tenant: error: "), "{stderr}");
        assert!(
            lines[0].contains(names),
            "{args:?}: {stderr} should name {names}"
        );
        lines[0].to_owned()
    }
}

async fn end_to_end(t: &Tenants, strategy: &'static str) -> TestResult {
    let bin = Binary::new(&t.db, strategy);
    let created = bin.ok(&[
        "create",
        "acme",
        "--name",
        "Acme Corp",
        "--domain",
        "acme.example",
        "--domain",
        "www.acme.example",
    ]);
    assert!(created.starts_with("created tenant acme (id "), "{created}");
    bin.ok(&["create", "globex"]);

    let listed: Value = serde_json::from_str(&bin.ok(&["list", "--format", "json"]))?;
    let slugs: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .map(|t| t["slug"].as_str().expect("slug"))
        .collect();
    assert_eq!(slugs, ["acme", "globex"]);
    let acme = &listed[0];
    assert!(
        acme["id"].is_i64()
            && acme["active"] == true
            && acme["domains"] == serde_json::json!(["acme.example", "www.acme.example"]),
        "{acme}"
    );
    let schema = if strategy == "schema" {
        Value::from("acme")
    } else {
        Value::Null
    };
    assert_eq!(acme["schema"], schema);

    bin.ok(&["domain", "remove", "www.acme.example"]);
    bin.ok(&["domain", "add", "globex", "www.acme.example"]);
    let listed: Value = serde_json::from_str(&bin.ok(&["list", "--format", "json"]))?;
    assert_eq!(listed[0]["domains"], serde_json::json!(["acme.example"]));
    assert_eq!(
        listed[1]["domains"],
        serde_json::json!(["www.acme.example"])
    );

    bin.ok(&["suspend", "acme"]);
    let text = bin.ok(&["list"]);
    let acme_line = text
        .lines()
        .find(|l| l.starts_with("acme "))
        .expect("acme listed");
    assert!(acme_line.contains("suspended"), "{text}");
    bin.ok(&["resume", "acme"]);
    bin.ok(&["rename", "acme", "acme-corp"]);

    let ran = bin.ok(&["run", "--tenants", "all", "-c", "SELECT 1"]);
    assert_eq!(
        ran,
        "acme-corp: ok (1 rows)\nglobex: ok (1 rows)\ntenants: 2 ok, 0 failed\n"
    );
    let failed = bin.run(&["run", "--tenants", "globex", "-c", "SELECT 1/0"]);
    assert_eq!(failed.status.code(), Some(1), "the SQL failed in a tenant");
    assert!(String::from_utf8(failed.stdout)?.contains("globex: FAILED: "));

    let before = t.snapshot().await;
    let refusal = bin.refused(&["drop", "acme-corp"], "--yes");
    assert!(refusal.contains("would drop tenant acme-corp"), "{refusal}");
    assert_eq!(
        t.snapshot().await,
        before,
        "drop without --yes changes nothing"
    );
    let dropped = bin.ok(&["drop", "acme-corp", "--yes"]);
    assert!(dropped.starts_with("dropped tenant acme-corp"), "{dropped}");
    let listed: Value = serde_json::from_str(&bin.ok(&["list", "--format", "json"]))?;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["slug"], "globex");
    Ok(())
}

#[tokio::test]
async fn the_binary_runs_every_command_in_the_schema_mode() -> TestResult {
    let t = Tenants::schema().await;
    end_to_end(&t, "schema").await?;
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname IN ('acme', 'globex')",
    )
    .fetch_all(&t.admin)
    .await?;
    assert_eq!(schemas, ["globex"], "the dropped tenant's schema is gone");
    Ok(())
}

#[tokio::test]
async fn the_binary_runs_every_command_in_the_rls_mode() -> TestResult {
    end_to_end(&Tenants::rls().await, "rls").await
}

#[tokio::test]
async fn bad_input_exits_2_with_one_line_naming_it_and_changes_nothing() -> TestResult {
    let t = Tenants::schema().await;
    let bin = Binary::new(&t.db, "schema");
    bin.ok(&["create", "acme"]);
    bin.ok(&["create", "globex"]);
    sqlx::raw_sql("DROP SCHEMA globex CASCADE")
        .execute(&t.admin)
        .await?;
    bin.ok(&["domain", "add", "acme", "acme.example"]);
    let before = t.snapshot().await;
    let cases: [(&[&str], &str); 19] = [
        (
            &["create", "fresh", "--domain", "acme.example"],
            "acme.example",
        ),
        (
            &["create", "fresh", "--domain", "not a domain"],
            "not a domain",
        ),
        (&["domain", "add", "acme", "acme.example"], "acme.example"),
        (&["domain", "remove", "nobody.example"], "nobody.example"),
        (&["create", "acme"], "acme"),
        (&["create", "fresh", "--schema", "public"], "public"),
        (&["create", "fresh", "--schema", "pg_catalog"], "pg_catalog"),
        (&["create", "fresh", "--schema", "app"], "app"),
        (&["create", "Not-A-Slug"], "Not-A-Slug"),
        (&["suspend", "initech"], "initech"),
        (&["rename", "acme", "globex"], "globex"),
        (&["drop", "initech", "--yes"], "initech"),
        (&["drop", "globex", "--yes"], "globex"),
        (&["run", "--tenants", "acme,,", "-c", "SELECT 1"], "acme,,"),
        (
            &["run", "--tenants", ":shared:", "-c", "SELECT 1"],
            ":shared:",
        ),
        (
            &["run", "--tenants", "acme,initech", "-c", "SELECT 1"],
            "initech",
        ),
        // Subdomain routing under the base domain (default localhost) gives it to globex.
        (&["domain", "add", "acme", "globex.localhost"], "globex"),
        (
            &["create", "fresh", "--domain", "acme.localhost"],
            "acme.localhost",
        ),
        (
            &["run", "--tenants", "all", "-c", "DELETE FROM projects"],
            "globex",
        ),
    ];
    for (args, names) in cases {
        bin.refused(args, names);
    }
    assert_eq!(t.snapshot().await, before, "nothing changed");
    Ok(())
}

#[tokio::test]
async fn a_suspension_is_seen_by_a_running_server() -> TestResult {
    let site = Site::new().await;
    // A cache that would hold the tenant for an hour: only the registry's change notice can
    // make the server let go of it within the bound below.
    let registry = site
        .pool
        .registry(RegistryOptions::default().ttl(Duration::from_secs(3600)));
    let state = AppState::new(site.pool.clone(), registry.clone(), BASE.parse()?);
    let app = router(DemoState::new(state, Vec::new()));
    crate::support::until_listening(&registry).await;
    let (alpha, bravo) = (site.alpha.host(), site.bravo.host());
    assert_eq!(
        send(&app, Some(&alpha), "/api/subtasks").await.status,
        StatusCode::OK
    );

    let bin = Binary::new(&site.db, "rls");
    bin.ok(&["suspend", site.alpha.slug]);
    assert!(
        answers(&app, &alpha, StatusCode::NOT_FOUND, Duration::from_secs(20)).await,
        "the running server still serves the suspended tenant"
    );
    assert_eq!(
        send(&app, Some(&bravo), "/api/subtasks").await.status,
        StatusCode::OK,
        "the others are served"
    );
    bin.ok(&["resume", site.alpha.slug]);
    assert!(
        answers(&app, &alpha, StatusCode::OK, Duration::from_secs(20)).await,
        "the resumed tenant is served again"
    );
    Ok(())
}

/// Polls `app` until `host` answers `status`, at most `bound`; whether it did.
async fn answers(app: &Router, host: &str, status: StatusCode, bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    while Instant::now() < deadline {
        if send(app, Some(host), "/api/subtasks").await.status == status {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}
