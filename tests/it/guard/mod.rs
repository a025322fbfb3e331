//! The guard and `rls-check`: every rule is shown to fire on exactly the misconfiguration it
//! names, injected into a freshly migrated database, and the migrated database passes.

mod cli;
mod pool;
mod rules;

use std::collections::BTreeSet;

use rls_tenancy::TenancyDeclaration;
use rls_tenancy::guard::{self, GuardOptions, GuardReport, RuleId};
use rls_tenancy::{DatabaseUrl, Result, ScratchDatabase};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

/// A migrated scratch database, plus the extra roles a test created (named after the
/// database's runtime role, so parallel tests never collide), dropped after the database.
pub(crate) struct Fixture {
    db: Option<ScratchDatabase>,
    extra_roles: Vec<String>,
}

impl Fixture {
    pub(crate) async fn migrated() -> Result<Self> {
        Ok(Self {
            db: Some(ScratchDatabase::migrated().await?),
            extra_roles: Vec::new(),
        })
    }

    pub(crate) fn db(&self) -> &ScratchDatabase {
        // Only Drop takes the database out.
        self.db.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// Runs `sql` as the superuser on the scratch database, after replacing `{runtime}`,
    /// `{deploy}` and `{db}` with the quoted names, and `{mid}` / `{top}` with extra roles of
    /// this test (which the SQL creates and the fixture drops).
    pub(crate) async fn inject(&mut self, sql: &str) -> Result<()> {
        let db = self.db();
        let runtime = db.runtime_role().as_str().to_owned();
        let mut sql = sql
            .replace("{runtime}", &db.runtime_role().to_string())
            .replace("{deploy}", &db.deploy_role().to_string())
            .replace("{db}", &db.name().to_string());
        for extra in ["mid", "top"] {
            let placeholder = format!("{{{extra}}}");
            if sql.contains(&placeholder) {
                let name = format!("{runtime}_{extra}");
                sql = sql.replace(&placeholder, &format!("\"{name}\""));
                self.extra_roles.push(name);
            }
        }
        let mut admin =
            PgConnection::connect_with(&self.db().admin_url().connect_options()?).await?;
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        Ok(())
    }

    /// The name an extra role gets in [`Fixture::inject`].
    pub(crate) fn extra_role(&self, extra: &str) -> String {
        format!("{}_{extra}", self.db().runtime_role().as_str())
    }

    /// The guard as the runtime role, with no version floor (so the server's release never
    /// adds a warning to a test about something else).
    pub(crate) async fn check(&self) -> Result<GuardReport> {
        self.check_with(options()).await
    }

    pub(crate) async fn check_with(&self, options: GuardOptions) -> Result<GuardReport> {
        Ok(guard::check_url(self.db().runtime_url(), &options).await?)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let Some(db) = self.db.take() else { return };
        let admin_url = db.admin_url().with_database("postgres");
        drop(db);
        let roles = std::mem::take(&mut self.extra_roles);
        if roles.is_empty() {
            return;
        }
        // Drop cannot await: clean up on a runtime of its own, as ScratchDatabase does.
        let cleanup = std::thread::spawn(move || -> Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect_with(&admin_url.connect_options()?).await?;
                for role in roles {
                    sqlx::raw_sql(AssertSqlSafe(format!("DROP ROLE IF EXISTS \"{role}\"")))
                        .execute(&mut admin)
                        .await?;
                }
                Ok(())
            })
        });
        if let Ok(Err(e)) = cleanup.join() {
            eprintln!("could not drop a test role: {e}");
        }
    }
}

/// The guard's default options without a version floor.
pub(crate) fn options() -> GuardOptions {
    GuardOptions::new(TenancyDeclaration::reference().expect("declaration"))
        .min_server_versions(Vec::new())
}

/// The distinct rule ids of a report.
pub(crate) fn rules(report: &GuardReport) -> BTreeSet<RuleId> {
    report.findings().iter().map(|f| f.rule).collect()
}

/// What a run of the built `rls-check` printed and returned.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs the built `rls-check` with `args` (and no `DATABASE_URL` from the environment).
pub(crate) async fn rls_check(args: &[&str]) -> Result<Run> {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_rls-check"))
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "off")
        .output()
        .await?;
    Ok(Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// Runs `rls-check` as the runtime role of `db`.
pub(crate) async fn rls_check_as_runtime(db: &ScratchDatabase, args: &[&str]) -> Result<Run> {
    let url: &DatabaseUrl = db.runtime_url();
    let mut all = vec!["--database-url", url.expose_secret()];
    all.extend_from_slice(args);
    rls_check(&all).await
}
