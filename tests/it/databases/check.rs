//! `rls-check --strategy database`: the control database and every tenant database checked,
//! reported per database, failing when one of them is wrong.

use rls_tenancy::guard::{GuardOptions, check_databases};
use rls_tenancy::{
    DatabasePattern, NewTenant, REFERENCE_TENANT_MIGRATIONS, ScratchServers, TenantSlug,
    provision_database,
};
use sqlx::AssertSqlSafe;

use super::{admin, lifecycle};

/// A bed with tenants `a` and `b` (one on each server), checked clean: each tenant's server
/// and database.
async fn two_tenants_checked_clean() -> (ScratchServers, Vec<(String, String)>) {
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
    let clean = check_databases(bed.control().runtime_url(), bed.runtime_servers(), &options)
        .await
        .expect("checked");
    assert!(!clean.is_refused(), "{clean}");
    assert_eq!(clean.tenants.len(), 2);
    assert!(!clean.has_unchecked(), "{clean}");
    assert_eq!(clean.servers.len(), 2, "{clean}");
    assert!(
        clean
            .servers
            .iter()
            .all(|(_, r)| r.as_ref().is_ok_and(Vec::is_empty)),
        "{clean}"
    );
    (bed, placed)
}

#[tokio::test]
async fn a_privilege_granted_in_one_tenant_database_fails_the_check_of_that_database_only() {
    let (bed, placed) = two_tenants_checked_clean().await;
    let options = GuardOptions::new(bed.declaration().clone());
    let control = bed.control().runtime_url();

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

#[tokio::test]
async fn a_runtime_role_that_can_connect_to_the_template_or_a_leftover_database_is_refused() {
    let (bed, _) = two_tenants_checked_clean().await;
    let options = GuardOptions::new(bed.declaration().clone());
    let control = bed.control().runtime_url();

    // The template on server one, opened to the runtime role: it could plant rows that every
    // tenant created later starts with, or hold a session there that blocks every create.
    let runtime = bed.control().runtime_role();
    let template = DatabasePattern::default()
        .template(bed.control().name().as_str())
        .expect("template");
    let mut one = admin(&bed, "one", "postgres").await;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "GRANT CONNECT ON DATABASE {template} TO {runtime}"
    )))
    .execute(&mut one)
    .await
    .expect("grant");
    // A database an interrupted create left on server two: provisioned (the runtime role may
    // connect), its registry row never committed.
    let leftover = DatabasePattern::default()
        .database(
            bed.control().name().as_str(),
            &"gone".parse().expect("slug"),
        )
        .expect("name");
    let two = bed
        .deploy_servers()
        .server(&"two".parse().expect("name"))
        .expect("server two");
    provision_database(
        two,
        &leftover,
        &template,
        &REFERENCE_TENANT_MIGRATIONS,
        bed.declaration(),
        &bed.migrate_options().expect("options"),
    )
    .await
    .expect("provisioned");

    let broken = check_databases(control, bed.runtime_servers(), &options)
        .await
        .expect("checked");
    assert!(broken.is_refused(), "{broken}");
    assert!(!broken.control.is_refused());
    assert!(
        broken
            .tenants
            .iter()
            .all(|(_, r)| r.as_ref().is_ok_and(|r| !r.is_refused())),
        "the tenant databases themselves are fine: {broken}"
    );
    let found: Vec<(String, String)> = broken
        .servers
        .iter()
        .flat_map(|(server, r)| {
            r.as_ref()
                .expect("checked")
                .iter()
                .map(move |f| (server.clone(), f.object.clone()))
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "one".to_owned(),
                format!("database {} on server one", template.as_str())
            ),
            (
                "two".to_owned(),
                format!("database {} on server two", leftover.as_str())
            ),
        ]
    );
    let json = broken.to_json();
    assert_eq!(json["summary"]["unplaced_databases"], 2, "{json}");
    assert_eq!(
        json["servers"][0]["refuse"][0]["rule"], "database-connect-unplaced",
        "{json}"
    );
    assert!(broken.to_string().contains(&format!(
        "REVOKE CONNECT ON DATABASE \"{}\" FROM \"{}\";",
        template.as_str(),
        runtime.as_str()
    )));
    // Clean up what the bed does not know of: the leftover goes with the deploy role's
    // databases when the bed is dropped.
    sqlx::raw_sql(AssertSqlSafe(format!(
        "REVOKE CONNECT ON DATABASE {template} FROM {runtime}"
    )))
    .execute(&mut one)
    .await
    .expect("revoke");
}

/// `set` with a second name, `alias`, for the server `of` (the same URL).
fn aliased(set: &rls_tenancy::ServerSet, of: &str, alias: &str) -> rls_tenancy::ServerSet {
    let server = set.server(&of.parse().expect("name")).expect("server");
    let mut servers: Vec<rls_tenancy::Server> = set.iter().cloned().collect();
    servers.push(rls_tenancy::Server::new(
        alias.parse().expect("name"),
        server.url().clone(),
    ));
    rls_tenancy::ServerSet::new(servers).expect("server set")
}

#[tokio::test]
async fn two_names_for_one_server_share_its_databases_and_nothing_is_reported_unplaced() {
    let bed = ScratchServers::create().await.expect("scratch servers");
    let tenants = lifecycle(&bed, aliased(bed.deploy_servers(), "one", "uno")).await;
    for (slug, on) in [("a", "one"), ("b", "uno")] {
        let record = tenants
            .create(
                &NewTenant::new(slug.parse::<TenantSlug>().expect("slug"))
                    .server(on.parse().expect("name")),
            )
            .await
            .expect("created");
        assert_eq!(record.server.as_deref(), Some(on));
    }
    tenants.close().await;

    let options = GuardOptions::new(bed.declaration().clone());
    let runtime = aliased(bed.runtime_servers(), "one", "uno");
    let report = check_databases(bed.control().runtime_url(), &runtime, &options)
        .await
        .expect("checked");
    // Each name reaches the cluster that holds both tenants: neither tenant's database is
    // a database "that holds no tenant" under the other name.
    assert_eq!(report.servers.len(), 3, "{report}");
    assert!(
        report
            .servers
            .iter()
            .all(|(_, r)| r.as_ref().is_ok_and(Vec::is_empty)),
        "{report}"
    );
    assert!(!report.is_refused(), "{report}");

    // The rule still holds under both names: a database on that server that holds no tenant
    // is reported once per name it is reached by.
    let runtime_role = bed.control().runtime_role();
    let template = DatabasePattern::default()
        .template(bed.control().name().as_str())
        .expect("template");
    sqlx::raw_sql(AssertSqlSafe(format!(
        "GRANT CONNECT ON DATABASE {template} TO {runtime_role}"
    )))
    .execute(&mut admin(&bed, "one", "postgres").await)
    .await
    .expect("grant");
    let broken = check_databases(bed.control().runtime_url(), &runtime, &options)
        .await
        .expect("checked");
    let unplaced: Vec<&str> = broken
        .servers
        .iter()
        .filter(|(_, r)| r.as_ref().is_ok_and(|f| !f.is_empty()))
        .map(|(server, _)| server.as_str())
        .collect();
    assert_eq!(unplaced, ["one", "uno"], "{broken}");
    assert!(broken.is_refused(), "{broken}");
}
