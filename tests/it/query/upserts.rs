//! Upserts (`ON CONFLICT`) and `INSERT … SELECT` against a real database: they write the
//! scope's tenant only, leave the other tenant's rows with the same key alone, and refuse
//! what could reach across tenants.

use rls_tenancy::sea_query::{Expr, ExprTrait, Func};
use rls_tenancy::{
    Conflict, CrossTenant, Filtered, QueryError, Result, Returning, StatementError,
    TenancyDeclaration, TenantId, TenantScope,
};
use sqlx::PgPool;

use crate::fixture::TwoTenants;

async fn add_user(admin: &PgPool, scope: &TenantScope, email: &str, first: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO app.users (account_id, email, first_name, last_name, password)
         VALUES ($1, $2, $3, 'Old', 'x')",
    )
    .bind(scope.id().as_i64().expect("bigint id"))
    .bind(email)
    .bind(first)
    .execute(admin)
    .await?;
    Ok(())
}

/// `(first_name, last_name)` of every user of `scope` with `email`, as the superuser.
async fn names(admin: &PgPool, scope: &TenantScope, email: &str) -> Result<Vec<(String, String)>> {
    Ok(sqlx::query_as(
        "SELECT first_name, last_name FROM app.users WHERE account_id = $1 AND email = $2",
    )
    .bind(scope.id().as_i64().expect("bigint id"))
    .bind(email)
    .fetch_all(admin)
    .await?)
}

#[tokio::test]
async fn an_upsert_updates_its_tenants_row_and_not_the_other_tenants_row_with_the_same_key()
-> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    add_user(&t.admin, &t.alpha, "ada@example.test", "Ada").await?;
    add_user(&t.admin, &t.beta, "ada@example.test", "Beta's Ada").await?;
    let upsert = |first: &'static str| {
        t.alpha
            .insert(&decl, "users")
            .columns(["email", "first_name", "last_name", "password"])
            .values(["ada@example.test", first, "King", "x"])
            .on_conflict(Conflict::update(
                ["account_id", "email"],
                ["first_name", "last_name"],
            ))
            .returning(["account_id", "first_name"])
    };

    // The builder alone (row-level security does not apply to the superuser).
    let bypass = t.bypass().await?;
    let mut tx = bypass.begin(&t.alpha).await?;
    let written: Vec<(i64, String)> = tx.fetch_all(&upsert("Augusta")).await?;
    tx.commit().await?;
    let alpha_id = t.alpha.id().as_i64().expect("bigint id");
    assert_eq!(written, vec![(alpha_id, "Augusta".to_owned())]);
    assert_eq!(
        names(&t.admin, &t.alpha, "ada@example.test").await?,
        vec![("Augusta".to_owned(), "King".to_owned())]
    );
    assert_eq!(
        names(&t.admin, &t.beta, "ada@example.test").await?,
        vec![("Beta's Ada".to_owned(), "Old".to_owned())]
    );

    // Both walls: the runtime role, DO NOTHING on the existing key, a new key inserted.
    let nothing = |email: &'static str| {
        t.alpha
            .insert(&decl, "users")
            .columns(["email", "first_name", "last_name", "password"])
            .values([email, "Ignored", "Ignored", "x"])
            .on_conflict(Conflict::do_nothing(["account_id", "email"]))
    };
    let mut tx = t.pool.begin(&t.alpha).await?;
    assert_eq!(tx.execute(&nothing("ada@example.test")).await?, 0);
    assert_eq!(tx.execute(&nothing("grace@example.test")).await?, 1);
    // SET with an expression over the existing row and the proposed one.
    let renamed = t
        .alpha
        .insert(&decl, "users")
        .columns(["email", "first_name", "last_name", "password"])
        .values(["ada@example.test", "Ignored", "Byron", "x"])
        .on_conflict(Conflict::update(["account_id", "email"], []).set(
            "last_name",
            Func::cust("concat").args([
                Expr::col(("users", "last_name")),
                Expr::val("-"),
                Expr::col(("excluded", "last_name")),
            ]),
        ));
    assert_eq!(tx.execute(&renamed).await?, 1);
    tx.commit().await?;
    assert_eq!(
        names(&t.admin, &t.alpha, "ada@example.test").await?,
        vec![("Augusta".to_owned(), "King-Byron".to_owned())]
    );
    assert_eq!(
        names(&t.admin, &t.alpha, "grace@example.test").await?.len(),
        1
    );
    assert_eq!(
        names(&t.admin, &t.beta, "ada@example.test").await?,
        vec![("Beta's Ada".to_owned(), "Old".to_owned())]
    );
    assert!(
        names(&t.admin, &t.beta, "grace@example.test")
            .await?
            .is_empty()
    );
    Ok(())
}

#[test]
fn an_upsert_without_the_tenant_column_in_its_key_or_updating_it_is_refused() -> Result<()> {
    let decl = TenancyDeclaration::reference()?;
    let scope = TenantScope::new(TenantId::new(1)?, "alpha".parse()?);
    let user = || {
        scope
            .insert(&decl, "users")
            .columns(["email", "first_name", "last_name", "password"])
            .values(["a@example.test", "A", "B", "x"])
    };
    let refused = |conflict: Conflict| user().on_conflict(conflict).build().err();
    let without_tenant = Some(QueryError::ConflictWithoutTenant {
        column: "account_id".into(),
    });
    assert_eq!(refused(Conflict::do_nothing(["email"])), without_tenant);
    assert_eq!(
        refused(Conflict::update(["email"], ["first_name"])),
        without_tenant
    );
    assert_eq!(refused(Conflict::do_nothing([])), without_tenant);
    assert_eq!(
        refused(Conflict::update(["account_id", "email"], ["account_id"])),
        Some(QueryError::TenantColumnUpdate {
            column: "account_id".into()
        })
    );
    assert_eq!(
        refused(Conflict::do_nothing(["account_id", "email"]).set("account_id", Expr::val(2))),
        Some(QueryError::TenantColumnUpdate {
            column: "account_id".into()
        })
    );
    assert_eq!(
        refused(Conflict::update(["account_id", "email"], [])),
        Some(QueryError::NoValues {
            statement: "on conflict update"
        })
    );
    assert!(matches!(
        refused(Conflict::do_nothing(["account_id", "email\" OR true --"])),
        Some(QueryError::InvalidName { .. })
    ));
    assert_eq!(
        refused(
            Conflict::update(["account_id", "email"], [])
                .set("first_name", Expr::cust("current_user"))
        ),
        Some(QueryError::RawSql)
    );
    // The cross-tenant path keeps the rule: a key without the tenant column spans tenants.
    let cross = CrossTenant::new("test: upsert rule")
        .insert(&decl, "users")
        .columns(["account_id", "email", "first_name", "last_name", "password"])
        .values([
            Expr::val(1),
            Expr::val("a@example.test"),
            Expr::val("A"),
            Expr::val("B"),
            Expr::val("x"),
        ])
        .on_conflict(Conflict::do_nothing(["email"]));
    assert_eq!(cross.build().err(), without_tenant);
    Ok(())
}

#[tokio::test]
async fn insert_select_copies_its_own_tenants_rows_and_none_of_the_other_tenants() -> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    // One project per task: alpha has 6 tasks, beta 9.
    let copy = t
        .alpha
        .insert(&decl, "projects")
        .columns(["name"])
        .select_from(
            t.alpha
                .select(&decl)
                .from("tasks")
                .column("name")
                .and_where(Expr::col("name").like("%task%")),
        );
    let bypass = t.bypass().await?;
    let mut tx = bypass.begin(&t.alpha).await?;
    assert_eq!(tx.execute(&copy).await?, 6);
    tx.commit().await?;
    assert_eq!(t.count("projects", &t.alpha).await?, 2 + 6);
    assert_eq!(t.count("projects", &t.beta).await?, 3);
    let copied: Vec<(i64, String)> = sqlx::query_as(
        "SELECT account_id, name FROM app.projects WHERE name LIKE '%task%' ORDER BY name",
    )
    .fetch_all(&t.admin)
    .await?;
    let alpha_id = t.alpha.id().as_i64().expect("bigint id");
    assert_eq!(copied.len(), 6);
    assert!(
        copied
            .iter()
            .all(|(account, name)| *account == alpha_id && name.starts_with("alpha task")),
        "{copied:?}"
    );

    // Both walls: the runtime role, with RETURNING.
    let mut tx = t.pool.begin(&t.beta).await?;
    let names: Vec<(String,)> = tx
        .fetch_all(
            &t.beta
                .insert(&decl, "projects")
                .columns(["name"])
                .select_from(
                    t.beta
                        .select(&decl)
                        .from("projects")
                        .expr(Func::cust("concat").args([Expr::col("name"), Expr::val(" (copy)")])),
                )
                .returning(["name"]),
        )
        .await?;
    tx.commit().await?;
    assert_eq!(names.len(), 3);
    assert!(
        names.iter().all(|(n,)| n.starts_with("beta project")),
        "{names:?}"
    );
    assert_eq!(t.count("projects", &t.alpha).await?, 8);
    Ok(())
}

#[tokio::test]
async fn insert_select_refuses_another_tenants_select_and_a_tenant_column_it_would_not_check()
-> Result<()> {
    let t = TwoTenants::new().await?;
    let decl = TenancyDeclaration::reference()?;
    let names = |scope: &TenantScope| scope.select(&decl).from("tasks").column("name");
    let mut tx = t.pool.begin(&t.alpha).await?;
    let cases = [
        (
            t.alpha
                .insert(&decl, "projects")
                .columns(["name"])
                .select_from(names(&t.beta)),
            QueryError::ScopeMismatch {
                statement: t.beta.id(),
                other: t.alpha.id(),
            },
        ),
        (
            t.alpha
                .insert(&decl, "projects")
                .columns(["account_id", "name"])
                .select_from(names(&t.alpha).column("account_id")),
            QueryError::ForeignTenantValue {
                column: "account_id".into(),
            },
        ),
        (
            t.alpha
                .insert(&decl, "projects")
                .columns(["name", "details"])
                .select_from(names(&t.alpha)),
            QueryError::ValueCount {
                expected: 2,
                found: 1,
            },
        ),
        (
            t.alpha
                .insert(&decl, "projects")
                .columns(["name"])
                .values(["x"])
                .select_from(names(&t.alpha)),
            QueryError::MixedInsertSource,
        ),
        (
            t.alpha
                .insert(&decl, "projects")
                .columns(["name"])
                .select_from(names(&t.alpha))
                .values(["x"]),
            QueryError::MixedInsertSource,
        ),
    ];
    for (i, (insert, expected)) in cases.into_iter().enumerate() {
        match tx.execute(&insert).await {
            Err(StatementError::Refused(refused)) => assert_eq!(refused, expected, "case {i}"),
            other => panic!("case {i}: {other:?}"),
        }
    }
    // Nothing was sent: the transaction is intact and nothing was written.
    tx.commit().await?;
    assert_eq!(t.count("projects", &t.alpha).await?, 2);
    assert_eq!(t.count("projects", &t.beta).await?, 3);
    Ok(())
}
