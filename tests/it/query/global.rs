//! Global tables (`[[global_table]]`: shared lookup data) through the builder, on the
//! reference schema plus an `app.currencies` table added the way an application's migration
//! would add it (by the deploy role, `SELECT` for the runtime role).

use rls_tenancy::sea_query::{Expr, ExprTrait, Order};
use rls_tenancy::{
    Filtered, JoinKind, QueryError, Result, Select, TenancyDeclaration, TenantPool,
    TenantPoolOptions, TenantScope,
};
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use crate::fixture::TwoTenants;

/// The two tenants, `currencies` (EUR, USD) declared global, alpha's projects in EUR and
/// beta's in USD, and a runtime pool opened with that declaration.
struct WithCurrencies {
    t: TwoTenants,
    decl: TenancyDeclaration,
    pool: TenantPool,
}

impl WithCurrencies {
    async fn new() -> Result<Self> {
        let t = TwoTenants::new().await?;
        let mut deploy = PgConnection::connect_with(&t.db.deploy_url().connect_options()?).await?;
        let migration = format!(
            "CREATE TABLE app.currencies (code text PRIMARY KEY, symbol text NOT NULL);
             INSERT INTO app.currencies VALUES ('EUR', '€'), ('USD', '$');
             REVOKE ALL ON app.currencies FROM {runtime};
             GRANT SELECT ON app.currencies TO {runtime};
             ALTER TABLE app.projects ADD COLUMN currency text REFERENCES app.currencies (code);",
            runtime = t.db.runtime_role(),
        );
        sqlx::raw_sql(AssertSqlSafe(migration))
            .execute(&mut deploy)
            .await?;
        for (scope, code) in [(&t.alpha, "EUR"), (&t.beta, "USD")] {
            sqlx::query("UPDATE app.projects SET currency = $2 WHERE account_id = $1")
                .bind(scope.id().as_i64().expect("bigint id"))
                .bind(code)
                .execute(&t.admin)
                .await?;
        }
        let text = std::fs::read_to_string("policies/tenancy.toml")?;
        let decl = TenancyDeclaration::parse(&format!(
            "{text}\n[[global_table]]\nname = \"currencies\"\n"
        ))?;
        let pool = TenantPool::connect(
            t.db.runtime_url(),
            TenantPoolOptions::new(decl.clone()).max_connections(2),
        )
        .await?;
        Ok(Self { t, decl, pool })
    }
}

/// `FROM projects AS p INNER JOIN currencies AS c ON c.code = p.currency`.
fn priced_projects<'d>(decl: &'d TenancyDeclaration, scope: &TenantScope) -> Select<'d> {
    scope.select(decl).from_as("projects", "p").join_as(
        JoinKind::Inner,
        "currencies",
        "c",
        Expr::col(("c", "code")).equals(("p", "currency")),
    )
}

#[tokio::test]
async fn a_join_to_a_global_table_reads_shared_rows_and_only_the_tenants_own_rows() -> Result<()> {
    let w = WithCurrencies::new().await?;
    let (t, decl) = (&w.t, &w.decl);
    let priced = priced_projects(decl, &t.alpha)
        .columns([("p", "name"), ("c", "symbol")])
        .order_by(("p", "name"), Order::Asc);
    let (sql, _) = priced.build()?;
    assert_eq!(
        sql,
        r#"SELECT "p"."name", "c"."symbol" FROM "app"."projects" AS "p" INNER JOIN "app"."currencies" AS "c" ON "c"."code" = "p"."currency" WHERE "p"."account_id" = $1 ORDER BY "p"."name" ASC"#
    );
    let expected = vec![
        ("alpha project 1".to_owned(), "€".to_owned()),
        ("alpha project 2".to_owned(), "€".to_owned()),
    ];
    // Both walls, then the builder alone.
    let mut tx = w.pool.begin(&t.alpha).await?;
    let rows: Vec<(String, String)> = tx.fetch_all(&priced).await?;
    tx.rollback().await?;
    assert_eq!(rows, expected);
    let bypass = TenantPool::from_pool(
        t.admin.clone(),
        TenantPoolOptions::new(decl.clone()).skip_guard(),
    )
    .await?;
    let mut tx = bypass.begin(&t.alpha).await?;
    let rows: Vec<(String, String)> = tx.fetch_all(&priced).await?;
    assert_eq!(rows, expected);

    // FROM the global table, LEFT JOIN the tenant table: the tenant predicate in ON keeps
    // beta's USD projects out, so USD is kept with no project.
    let by_currency = t
        .alpha
        .select(decl)
        .from("currencies")
        .join(
            JoinKind::Left,
            "projects",
            Expr::col(("projects", "currency")).equals(("currencies", "code")),
        )
        .columns([("currencies", "code"), ("projects", "name")])
        .order_by(("currencies", "code"), Order::Asc)
        .order_by(("projects", "name"), Order::Asc);
    let rows: Vec<(String, Option<String>)> = tx.fetch_all(&by_currency).await?;
    assert_eq!(
        rows,
        vec![
            ("EUR".to_owned(), Some("alpha project 1".to_owned())),
            ("EUR".to_owned(), Some("alpha project 2".to_owned())),
            ("USD".to_owned(), None),
        ]
    );
    tx.rollback().await?;
    Ok(())
}

#[tokio::test]
async fn a_global_table_is_never_written_or_locked_through_the_builder() -> Result<()> {
    let w = WithCurrencies::new().await?;
    let (t, decl) = (&w.t, &w.decl);
    let global = Some(QueryError::GlobalTableWrite {
        table: "currencies".into(),
    });
    assert_eq!(
        t.alpha
            .insert(decl, "currencies")
            .columns(["code", "symbol"])
            .values(["GBP", "£"])
            .build()
            .err(),
        global
    );
    assert_eq!(
        t.alpha
            .update(decl, "currencies")
            .value("symbol", "x")
            .build()
            .err(),
        global
    );
    assert_eq!(t.alpha.delete(decl, "currencies").build().err(), global);
    assert_eq!(
        t.alpha
            .select(decl)
            .from("currencies")
            .column("code")
            .for_update()
            .build()
            .err(),
        global
    );

    // A lock over a join with a global table locks the tenant table only: a plain
    // FOR UPDATE would need UPDATE on the global table, which the runtime role lacks.
    let lock = priced_projects(decl, &t.alpha)
        .column(("p", "id"))
        .and_where(Expr::col(("c", "code")).eq("EUR"))
        .for_update()
        .skip_locked();
    let (sql, _) = lock.build()?;
    assert!(sql.ends_with(r#"FOR UPDATE OF "p" SKIP LOCKED"#), "{sql}");
    let mut tx = w.pool.begin(&t.alpha).await?;
    let locked: Vec<(i64,)> = tx.fetch_all(&lock).await?;
    assert_eq!(locked.len(), 2);
    tx.rollback().await?;
    let mut tx = w.pool.begin(&t.alpha).await?;
    let plain = sqlx::query(
        "SELECT p.id FROM app.projects p JOIN app.currencies c ON c.code = p.currency FOR UPDATE",
    )
    .execute(&mut *tx)
    .await;
    let code = match plain {
        Err(sqlx::Error::Database(e)) => e.code().map(|c| c.into_owned()),
        other => panic!("{other:?}"),
    };
    assert_eq!(code.as_deref(), Some("42501"));
    tx.rollback().await?;

    // Nothing was written: the shared rows are as they were.
    let symbols: Vec<(String,)> = sqlx::query_as("SELECT symbol FROM app.currencies ORDER BY code")
        .fetch_all(&t.admin)
        .await?;
    assert_eq!(symbols, vec![("€".to_owned(),), ("$".to_owned(),)]);
    Ok(())
}
