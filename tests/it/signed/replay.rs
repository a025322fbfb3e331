//! Replaying another tenant's signed entry, read from `pg_stat_activity` while its
//! transaction runs: the runtime role can read the query text of its own other sessions.

use sqlx::{AssertSqlSafe, Connection};

use super::attacks::{rows_of, visible};
use crate::support::{TwoTenants, sqlstate};

#[tokio::test]
async fn a_signature_read_from_a_concurrent_transaction_cannot_be_replayed() {
    let fixture = TwoTenants::signed().await;
    let b = fixture.b.scope.id().as_i64().expect("id");
    let pool = fixture.runtime_pool(2).await;
    // B's transaction is open and has run nothing but its BEGIN message.
    let b_tx = pool.begin(&fixture.b.scope).await.expect("B's transaction");
    let mut a_tx = pool.begin(&fixture.a.scope).await.expect("A's transaction");
    let texts: Vec<String> = sqlx::query_scalar(
        "SELECT query FROM pg_stat_activity
          WHERE pid <> pg_backend_pid() AND query LIKE '%rls_tenancy.enter(%'",
    )
    .fetch_all(&mut *a_tx)
    .await
    .expect("pg_stat_activity");
    let stolen = texts
        .iter()
        .find_map(|text| {
            let start = text.find("rls_tenancy.enter(")?;
            let call = &text[start..];
            call.contains(&format!("'{b}'")).then(|| call.to_owned())
        })
        .unwrap_or_else(|| panic!("B's BEGIN message is visible: {texts:?}"));

    // Inside A's transaction: not the message that began it.
    let replayed = sqlx::raw_sql(AssertSqlSafe(format!("SELECT {stolen}")))
        .execute(&mut *a_tx)
        .await;
    assert_eq!(
        sqlstate(&replayed).as_deref(),
        Some("28000"),
        "{replayed:?}"
    );
    drop(a_tx);

    // A transaction of its own that enters in its first message (an injection that can send
    // several statements): B's transaction holds the nonce.
    let mut raw = sqlx::PgConnection::connect_with(
        &fixture.db.runtime_url().connect_options().expect("options"),
    )
    .await
    .expect("runtime connection");
    let replayed = sqlx::raw_sql(AssertSqlSafe(format!("BEGIN; SELECT {stolen}")))
        .execute(&mut raw)
        .await;
    assert_eq!(
        sqlstate(&replayed).as_deref(),
        Some("28000"),
        "{replayed:?}"
    );
    assert!(
        replayed
            .as_ref()
            .err()
            .is_some_and(|e| e.to_string().contains("nonce is in use")),
        "{replayed:?}"
    );
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut raw)
        .await
        .expect("rollback");

    // B's own transaction still sees B.
    let mut b_tx = b_tx;
    let seen = visible(&mut b_tx).await;
    assert!(seen.iter().all(|(_, _, account)| *account == b) && !seen.is_empty());
    b_tx.commit().await.expect("commit");
    assert!(rows_of(&fixture.admin, b).await >= 4);
}
