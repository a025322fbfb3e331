//! [`PoolerLookup`]: the read-only transaction a routing-data lookup runs in behind a
//! transaction-mode pooler, on a connection that never returns to the pool inside it.
//!
//! Behind a transaction-mode pooler a lookup runs unnamed inside `BEGIN READ ONLY` ...
//! `COMMIT`, so that its parse and its execution reach the same server connection. A lookup
//! cut off while its `BEGIN` was under way (a request cancelled by its deadline, a client
//! gone) would leave sqlx's connection looking idle while its server connection is in that
//! read-only transaction (sqlx counts a transaction only once `BEGIN` answered): the next
//! user of the connection would begin inside it, and a write there is refused (`25006`).
//! Here the connection is closed unless the lookup's `COMMIT` was answered, which ends the
//! transaction on the server.

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};

/// A connection in a lookup's read-only transaction: closed when dropped, unless
/// [`PoolerLookup::commit`] ended the transaction.
pub(crate) struct PoolerLookup {
    conn: PoolConnection<Postgres>,
    ended: bool,
}

impl PoolerLookup {
    /// A connection of `pool` in a read-only transaction (one simple-query message).
    pub(crate) async fn begin(pool: &PgPool) -> Result<Self, sqlx::Error> {
        let mut lookup = Self {
            conn: pool.acquire().await?,
            ended: false,
        };
        sqlx::raw_sql("BEGIN READ ONLY")
            .execute(&mut *lookup.conn)
            .await?;
        Ok(lookup)
    }

    /// The connection, for the lookup's statements.
    pub(crate) fn conn(&mut self) -> &mut PgConnection {
        &mut self.conn
    }

    /// Ends the transaction; the connection goes back to the pool.
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        sqlx::raw_sql("COMMIT").execute(&mut *self.conn).await?;
        self.ended = true;
        Ok(())
    }
}

impl Drop for PoolerLookup {
    fn drop(&mut self) {
        if !self.ended {
            // Cut off or failed: the server may be inside the transaction, or mid-statement.
            // Closing the connection ends both; nothing of it reaches the next user.
            self.conn.close_on_drop();
        }
    }
}
