//! Tenants' own domains: the domains table's writes (one tenant per domain, a first domain
//! primary, a refusal changes nothing) and what the runtime role may do with it (read, never
//! write).

use rls_tenancy::{
    DomainError, DomainName, ScratchDatabase, TenancyDeclaration, add_domain, all_domains,
    remove_domain, tenant_domains,
};
use sqlx::PgPool;

use crate::support::sqlstate;

/// A migrated database with tenants `acme` and `globex`, and a deploy connection.
async fn two_tenants() -> (ScratchDatabase, PgPool, sqlx::PgConnection) {
    let db = ScratchDatabase::migrated().await.expect("scratch database");
    let admin = db.admin_pool().await.expect("admin pool");
    sqlx::raw_sql(
        "INSERT INTO app.accounts (slug, name) VALUES ('acme', 'Acme'), ('globex', 'Globex')",
    )
    .execute(&admin)
    .await
    .expect("tenants");
    let deploy = rls_tenancy::connect(db.deploy_url()).await.expect("deploy");
    (db, admin, deploy)
}

fn decl() -> TenancyDeclaration {
    TenancyDeclaration::reference().expect("declaration")
}

fn domain(text: &str) -> DomainName {
    text.parse().expect("domain")
}

async fn rows(admin: &PgPool) -> Vec<(String, i64, bool)> {
    sqlx::query_as("SELECT domain, account_id, is_primary FROM app.domains ORDER BY domain")
        .fetch_all(admin)
        .await
        .expect("domains")
}

#[tokio::test]
async fn a_tenants_first_domain_is_primary_and_a_domain_has_one_tenant() {
    let (_db, admin, mut conn) = two_tenants().await;
    let decl = decl();
    let acme = "acme".parse().expect("slug");
    let globex = "globex".parse().expect("slug");

    assert!(
        add_domain(&mut conn, &decl, &acme, &domain("crm.acme.test"))
            .await
            .expect("first")
    );
    assert!(
        !add_domain(&mut conn, &decl, &acme, &domain("acme.test"))
            .await
            .expect("second")
    );
    let before = rows(&admin).await;

    let err = add_domain(&mut conn, &decl, &globex, &domain("crm.acme.test"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, DomainError::Taken { owner, .. } if owner == "acme"),
        "{err}"
    );
    assert!(err.is_usage());
    assert!(
        err.to_string()
            .starts_with("domain crm.acme.test already belongs to tenant acme"),
        "{err}"
    );
    let err = add_domain(&mut conn, &decl, &acme, &domain("crm.acme.test"))
        .await
        .unwrap_err();
    assert!(matches!(err, DomainError::Taken { .. }), "{err}");
    let err = add_domain(
        &mut conn,
        &decl,
        &"initech".parse().expect("slug"),
        &domain("initech.test"),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, DomainError::UnknownTenant { slug } if slug == "initech"),
        "{err}"
    );
    assert_eq!(rows(&admin).await, before, "refusals change nothing");

    let listed = tenant_domains(&mut conn, &decl, &acme).await.expect("list");
    let listed: Vec<(&str, bool)> = listed
        .iter()
        .map(|d| (d.domain.as_str(), d.primary))
        .collect();
    assert_eq!(listed, [("crm.acme.test", true), ("acme.test", false)]);
    assert!(
        tenant_domains(&mut conn, &decl, &globex)
            .await
            .expect("none")
            .is_empty()
    );

    // Removing the primary domain makes the remaining one primary.
    let owner = remove_domain(&mut conn, &decl, &domain("crm.acme.test"))
        .await
        .expect("remove");
    assert_eq!(owner.as_str(), "acme");
    let all = all_domains(&mut conn, &decl, None).await.expect("all");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0.as_str(), "acme");
    assert_eq!(all[0].1.domain.as_str(), "acme.test");
    assert!(all[0].1.primary);
    let err = remove_domain(&mut conn, &decl, &domain("crm.acme.test"))
        .await
        .unwrap_err();
    assert!(matches!(err, DomainError::UnknownDomain { .. }), "{err}");

    // Freed, the domain can go to another tenant.
    assert!(
        add_domain(&mut conn, &decl, &globex, &domain("crm.acme.test"))
            .await
            .expect("moved")
    );
}

#[tokio::test]
async fn unsafe_domain_text_is_refused_by_name() {
    for (input, says) in [
        ("Crm.acme.test", "upper-case"),
        ("crm.acme.test:443", "port"),
        ("192.168.0.1", "IP address"),
        ("[::1]", "IP address"),
        ("crm..acme.test", "empty label"),
        ("xn--80ak6aa92e.test", "punycode"),
        ("crm.acme.test/evil", "'/'"),
        ("crm acme.test", "whitespace"),
        ("", "empty"),
    ] {
        let err = input.parse::<DomainName>().unwrap_err();
        let message = err.to_string();
        assert!(message.contains(says), "{input:?}: {message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }
}

#[tokio::test]
async fn a_declaration_without_domains_table_says_so() {
    let (_db, _admin, mut conn) = two_tenants().await;
    let decl = TenancyDeclaration::parse(
        "schema = \"app\"\n[registry]\ntable = \"accounts\"\n[[tenant_table]]\nname = \"users\"\ncolumn = \"account_id\"\n",
    )
    .expect("declaration");
    let err = add_domain(
        &mut conn,
        &decl,
        &"acme".parse().expect("slug"),
        &domain("acme.test"),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DomainError::NoDomainsTable), "{err}");
}

#[tokio::test]
async fn the_runtime_role_reads_the_domains_table_and_cannot_write_it() {
    let (db, _admin, mut conn) = two_tenants().await;
    add_domain(
        &mut conn,
        &decl(),
        &"acme".parse().expect("slug"),
        &domain("crm.acme.test"),
    )
    .await
    .expect("add");
    let mut runtime = rls_tenancy::connect(db.runtime_url())
        .await
        .expect("runtime");
    let seen: Vec<String> = sqlx::query_scalar("SELECT domain FROM app.domains")
        .fetch_all(&mut runtime)
        .await
        .expect("routing data is readable");
    assert_eq!(seen, ["crm.acme.test"]);
    for write in [
        "INSERT INTO app.domains (domain, account_id) SELECT 'evil.test', id FROM app.accounts LIMIT 1",
        "UPDATE app.domains SET account_id = account_id",
        "DELETE FROM app.domains",
    ] {
        let result = sqlx::query(write).execute(&mut runtime).await;
        assert_eq!(sqlstate(&result).as_deref(), Some("42501"), "{write}");
    }
}
