//! The database wall on the crm schema: customers and invoices × select / insert / update /
//! delete × {own org, other org, no org}, with the other org's rows present to leak.

use sqlx::PgConnection;

use super::{Crm, Org};
use crate::isolation::{Actor, OPS, Op};
use crate::support::sqlstate;

const TABLES: [&str; 2] = ["customers", "invoices"];

/// What a statement did: the ids it saw, the rows it touched, or the SQLSTATE it failed with.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Seen(Vec<(i64, uuid::Uuid)>),
    Affected(u64),
    Refused(Option<String>),
}

/// Runs `op` on `table` aimed at `target`'s row (or inserting a row for `target`, under its
/// customer for an invoice). Writes bind the org as `$1` and the row (or customer) as `$2`.
async fn attempt(conn: &mut PgConnection, table: &str, op: Op, target: &Org) -> Outcome {
    let invoices = table == "invoices";
    let result = if op == Op::Select {
        let sql = if invoices {
            "SELECT id, org_id FROM crm.invoices ORDER BY id"
        } else {
            "SELECT id, org_id FROM crm.customers ORDER BY id"
        };
        sqlx::query_as(sql)
            .fetch_all(&mut *conn)
            .await
            .map(Outcome::Seen)
    } else {
        let (sql, row) = match (op, invoices) {
            (Op::Insert, false) => (
                "INSERT INTO crm.customers (org_id, name, email) VALUES ($1, 'new', 'new' || $2::bigint || '@example.test')",
                0,
            ),
            (Op::Insert, true) => (
                "INSERT INTO crm.invoices (org_id, customer_id, currency_code, amount_cents) VALUES ($1, $2, 'EUR', 5)",
                target.customer,
            ),
            (Op::Update, false) => (
                "UPDATE crm.customers SET name = 'changed' WHERE org_id = $1 AND id = $2",
                target.customer,
            ),
            (Op::Update, true) => (
                "UPDATE crm.invoices SET amount_cents = 0 WHERE org_id = $1 AND id = $2",
                target.invoice,
            ),
            (_, false) => (
                "DELETE FROM crm.customers WHERE org_id = $1 AND id = $2",
                target.customer,
            ),
            (_, true) => (
                "DELETE FROM crm.invoices WHERE org_id = $1 AND id = $2",
                target.invoice,
            ),
        };
        sqlx::query(sql)
            .bind(target.uuid())
            .bind(row)
            .execute(&mut *conn)
            .await
            .map(|r| Outcome::Affected(r.rows_affected()))
    };
    match result {
        Ok(outcome) => outcome,
        Err(e) => Outcome::Refused(sqlstate::<()>(&Err(e))),
    }
}

/// What `actor` must get for `op` on `target`'s row in `table`.
fn expected(op: Op, actor: Actor, table: &str, target: &Org, other: &Org) -> Outcome {
    let refused = || Outcome::Refused(Some("42501".into()));
    match (op, actor) {
        (Op::Select, Actor::Own) => Outcome::Seen(vec![(target.id(table), target.uuid())]),
        (Op::Select, Actor::Other) => Outcome::Seen(vec![(other.id(table), other.uuid())]),
        (Op::Select, Actor::NoTenant) => Outcome::Seen(Vec::new()),
        (Op::Insert, Actor::Own) => Outcome::Affected(1),
        (Op::Insert, _) => refused(),
        (Op::Update | Op::Delete, Actor::Own) => Outcome::Affected(1),
        (Op::Update | Op::Delete, _) => Outcome::Affected(0),
    }
}

#[tokio::test]
async fn every_crm_table_and_operation_reaches_only_the_own_orgs_rows() {
    let crm = Crm::new().await;
    for table in TABLES {
        for op in OPS {
            for actor in [Actor::Own, Actor::Other, Actor::NoTenant] {
                for (target, other) in [(&crm.a, &crm.b), (&crm.b, &crm.a)] {
                    let outcome = match actor {
                        Actor::NoTenant => {
                            let mut conn = crm.no_tenant().await;
                            let mut tx = sqlx::Connection::begin(&mut conn).await.expect("begin");
                            let outcome = attempt(&mut tx, table, op, target).await;
                            tx.rollback().await.expect("rollback");
                            outcome
                        }
                        Actor::Own | Actor::Other => {
                            let scope = if actor == Actor::Own { target } else { other };
                            let mut tx = crm.pool.begin(&scope.scope).await.expect("begin");
                            let outcome = attempt(&mut tx, table, op, target).await;
                            tx.rollback().await.expect("rollback");
                            outcome
                        }
                    };
                    assert_eq!(
                        outcome,
                        expected(op, actor, table, target, other),
                        "{table} {op:?} by {actor:?} on {}",
                        target.scope.slug()
                    );
                }
            }
        }
    }
    // Every attempt was rolled back: each org still has exactly its own rows.
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT o.handle, (SELECT count(*) FROM crm.customers c WHERE c.org_id = o.id),
                (SELECT count(*) FROM crm.invoices i WHERE i.org_id = o.id AND i.amount_cents = 1000)
           FROM crm.orgs o ORDER BY o.handle",
    )
    .fetch_all(&crm.admin)
    .await
    .expect("counts");
    assert_eq!(
        rows,
        [("org-a".to_owned(), 1, 1), ("org-b".to_owned(), 1, 1)]
    );
}
