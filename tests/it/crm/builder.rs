//! The crm schema's UUID tenants through the registry and the builder: lookups by slug and by
//! id built from the declaration's column names, and a join to the global `currencies` table.

use rls_tenancy::sea_query::{Expr, ExprTrait, Order};
use rls_tenancy::{JoinKind, RegistryOptions, ResolveError, TenantError, TenantId};

use super::Crm;

#[tokio::test]
async fn the_registry_resolves_a_uuid_org_by_handle_and_by_id() {
    let crm = Crm::new().await;
    let registry = crm.pool.registry(RegistryOptions::default());
    let by_slug = registry
        .resolve(&"org-b".parse().expect("slug"))
        .await
        .expect("by slug");
    assert_eq!(by_slug, crm.b.scope);
    assert_eq!(by_slug.id().as_uuid(), Some(crm.b.uuid()));
    assert_ne!(by_slug.id(), crm.a.scope.id());
    let by_id = registry.resolve_id(crm.a.scope.id()).await.expect("by id");
    assert_eq!(by_id.slug().as_str(), "org-a");

    let unknown = TenantId::from_uuid(uuid::Uuid::from_u128(7)).expect("uuid");
    assert!(matches!(
        registry.resolve_id(unknown).await,
        Err(ResolveError::TenantNotFound { .. })
    ));
    assert!(matches!(
        registry.resolve_id(TenantId::new(1).expect("id")).await,
        Err(ResolveError::Tenant(TenantError::WrongKeyType { .. }))
    ));
    sqlx::query("UPDATE crm.orgs SET active = false WHERE handle = 'org-a'")
        .execute(&crm.admin)
        .await
        .expect("suspend");
    let fresh = crm.pool.registry(RegistryOptions::default());
    assert!(matches!(
        fresh.resolve(&"org-a".parse().expect("slug")).await,
        Err(ResolveError::TenantNotFound { .. })
    ));
}

#[tokio::test]
async fn a_join_to_the_global_table_reads_shared_rows_and_only_the_orgs_invoices() {
    let crm = Crm::new().await;
    let priced = |org: &super::Org| {
        org.scope
            .select(&crm.decl)
            .from_as("invoices", "i")
            .join_as(
                JoinKind::Inner,
                "currencies",
                "c",
                Expr::col(("c", "code")).equals(("i", "currency_code")),
            )
            .columns([("i", "id"), ("c", "name")])
            .order_by(("i", "id"), Order::Asc)
    };
    let (sql, _) = priced(&crm.a).build().expect("build");
    assert_eq!(
        sql,
        r#"SELECT "i"."id", "c"."name" FROM "crm"."invoices" AS "i" INNER JOIN "crm"."currencies" AS "c" ON "c"."code" = "i"."currency_code" WHERE "i"."org_id" = $1 ORDER BY "i"."id" ASC"#
    );
    for (org, currency) in [(&crm.a, "Euro"), (&crm.b, "US dollar")] {
        let mut tx = crm.pool.begin(&org.scope).await.expect("begin");
        let rows: Vec<(i64, String)> = tx.fetch_all(&priced(org)).await.expect("fetch");
        tx.rollback().await.expect("rollback");
        assert_eq!(rows, [(org.invoice, currency.to_owned())]);
    }

    // The global table alone, read by any org, with no tenant predicate.
    let currencies = crm
        .a
        .scope
        .select(&crm.decl)
        .from("currencies")
        .column("code")
        .order_by("code", Order::Asc);
    let (sql, _) = currencies.build().expect("build");
    assert!(!sql.contains("org_id"), "{sql}");
    let mut tx = crm.pool.begin(&crm.a.scope).await.expect("begin");
    let codes: Vec<(String,)> = tx.fetch_all(&currencies).await.expect("fetch");
    tx.rollback().await.expect("rollback");
    assert_eq!(codes, [("EUR".to_owned(),), ("USD".to_owned(),)]);
}
