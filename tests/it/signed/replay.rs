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
    assert_refused(
        &replayed,
        "B's entry inside A's transaction",
        "the message that begins the transaction",
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

/// The signature over B's entry as the application would make it, computed by the superuser
/// from the installed key, `issued_ms` milliseconds after the epoch.
async fn signature_for(fixture: &TwoTenants, b: i64, nonce: i64, issued_ms: i64) -> String {
    let key_id = fixture.db.tenant_key().expect("signed").id();
    sqlx::query_scalar(
        "SELECT encode(sha256(k.outer_block || sha256(k.inner_block
                || convert_to(concat_ws('|', 'v1', 'app.tenant_id', $2::text, $3::bigint, $4::bigint), 'UTF8'))), 'hex')
           FROM rls_tenancy_secret.tenant_keys k WHERE k.key_id = $1",
    )
    .bind(&key_id)
    .bind(b.to_string())
    .bind(nonce)
    .bind(issued_ms)
    .fetch_one(&fixture.admin)
    .await
    .expect("the signature")
}

#[tokio::test]
async fn each_refusal_of_an_entry_says_which_check_failed() {
    let fixture = TwoTenants::signed().await;
    let b = fixture.b.scope.id().as_i64().expect("id");
    let key_id = fixture.db.tenant_key().expect("signed").id();
    let now_ms: i64 =
        sqlx::query_scalar("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")
            .fetch_one(&fixture.admin)
            .await
            .expect("the server's clock");
    let mut raw = sqlx::PgConnection::connect_with(
        &fixture.db.runtime_url().connect_options().expect("options"),
    )
    .await
    .expect("runtime connection");
    let call = |nonce: i64, issued: i64, signature: &str| {
        format!(
            "rls_tenancy.enter('app.tenant_id', '{b}', '{key_id}', {nonce}, {issued}, '{signature}')"
        )
    };
    // A valid entry, issued now, in the message that begins its transaction: accepted, so
    // that each refusal below is the one check it names.
    let valid = signature_for(&fixture, b, 11, now_ms).await;
    let accepted = sqlx::raw_sql(AssertSqlSafe(format!(
        "BEGIN; SELECT {}",
        call(11, now_ms, &valid)
    )))
    .execute(&mut raw)
    .await;
    assert!(accepted.is_ok(), "{accepted:?}");
    let seen: Option<String> = sqlx::query_scalar("SELECT rls_tenancy.tenant('app.tenant_id')")
        .fetch_one(&mut raw)
        .await
        .expect("tenant()");
    assert_eq!(seen, Some(b.to_string()));
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut raw)
        .await
        .expect("rollback");

    let stale_ms = now_ms - 60_000;
    let stale = signature_for(&fixture, b, 12, stale_ms).await;
    let mut flipped = valid.clone();
    flipped.replace_range(63.., if valid.ends_with('0') { "1" } else { "0" });
    // (the entry, whether it is sent after a BEGIN of its own, the reason given)
    let refusals = [
        // One hex digit of a valid signature changed.
        (
            call(11, now_ms, &flipped),
            false,
            "the signature does not verify",
        ),
        // The valid signature over another nonce.
        (
            call(13, now_ms, &valid),
            false,
            "the signature does not verify",
        ),
        // Signed a minute ago.
        (
            call(12, stale_ms, &stale),
            false,
            "away from the database's clock",
        ),
        // Not in the message that began the transaction.
        (
            call(11, now_ms, &valid),
            true,
            "the message that begins the transaction",
        ),
    ];
    for (entry, after_own_begin, reason) in &refusals {
        let message = if *after_own_begin {
            sqlx::raw_sql("BEGIN")
                .execute(&mut raw)
                .await
                .expect("begin");
            format!("SELECT {entry}")
        } else {
            format!("BEGIN; SELECT {entry}")
        };
        let refused = sqlx::raw_sql(AssertSqlSafe(message.clone()))
            .execute(&mut raw)
            .await;
        assert_refused(&refused, &message, reason);
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut raw)
            .await
            .expect("rollback");
    }
    assert!(rows_of(&fixture.admin, b).await >= 4);
}

fn assert_refused(
    refused: &sqlx::Result<sqlx::postgres::PgQueryResult>,
    message: &str,
    reason: &str,
) {
    assert_eq!(
        sqlstate(refused).as_deref(),
        Some("28000"),
        "{message}: {refused:?}"
    );
    assert!(
        refused
            .as_ref()
            .err()
            .is_some_and(|e| e.to_string().contains(reason)),
        "{message}: expected {reason:?}, got {refused:?}"
    );
}
