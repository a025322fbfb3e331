//! `rls-check --strategy database`: the control database and every tenant database checked,
//! reported per database, failing when one of them is wrong.

use rls_tenancy::guard::{GuardOptions, check_databases};
use rls_tenancy::{NewTenant, ScratchServers, TenantSlug};

use super::{admin, lifecycle};

#[tokio::test]
async fn a_privilege_granted_in_one_tenant_database_fails_the_check_of_that_database_only() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let tenants = lifecycle(&bed, bed.deploy_servers().clone()).await;
    let mut placed = Vec::new();
    for s in ["a", "b"] {
        let record = tenants
            .create(&NewTenant::new(s.parse::<TenantSlug>().expect("slug")))
            .await
            .expect("created");
        placed.push((
            record.server.expect("server"),
            record.database.expect("database"),
        ));
    }
    tenants.close().await;
    let options = GuardOptions::new(bed.declaration().clone());
    let control = bed.control().runtime_url();
    let clean = check_databases(control, bed.runtime_servers(), &options)
        .await
        .expect("checked");
    assert!(!clean.is_refused(), "{clean}");
    assert_eq!(clean.tenants.len(), 2);
    assert!(!clean.has_unchecked(), "{clean}");

    let (b_on, b_db) = &placed[1];
    let runtime = bed.control().runtime_role();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "GRANT TRUNCATE ON app.projects TO {runtime}"
    )))
    .execute(&mut admin(&bed, b_on, b_db).await)
    .await
    .expect("grant");
    let broken = check_databases(control, bed.runtime_servers(), &options)
        .await
        .expect("checked");
    assert!(broken.is_refused(), "{broken}");
    let refused: Vec<&str> = broken
        .tenants
        .iter()
        .filter(|(_, r)| r.as_ref().is_ok_and(|r| r.is_refused()))
        .map(|(p, _)| p.slug.as_str())
        .collect();
    assert_eq!(refused, ["b"]);
    assert!(!broken.control.is_refused());
    let json = broken.to_json();
    assert_eq!(json["summary"]["refused"], 1, "{json}");
    assert_eq!(
        json["tenants"][1]["report"]["refuse"][0]["rule"], "table-truncate",
        "{json}"
    );

    // The binary: exit 1, each database under its own heading, no password.
    let runtime_servers: Vec<String> = bed
        .runtime_servers()
        .iter()
        .map(|s| format!("{}={}", s.name(), s.url().expose_secret()))
        .collect();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rls-check"));
    command.args([
        "--strategy",
        "database",
        "--database-url",
        control.expose_secret(),
    ]);
    for server in &runtime_servers {
        command.args(["--server", server]);
    }
    let output = command
        .env_remove("RLS_SERVERS")
        .env_remove("RLS_CONFIG")
        .output()
        .expect("rls-check runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("== control database =="), "{stdout}");
    assert!(
        stdout.contains(&format!("== tenant b ({b_on}/{b_db}) ==")),
        "{stdout}"
    );
    assert!(
        stdout.contains("databases: 3 checked, 1 refused, 0 not checked"),
        "{stdout}"
    );
    let url = url::Url::parse(control.expose_secret()).expect("url");
    assert!(!stdout.contains(url.password().expect("password")));
}
