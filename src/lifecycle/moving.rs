//! [`TenantLifecycle::move_tenant`]: a tenant's database moved to another server, readable
//! all along, writable again once the registry names the copy.
//!
//! # The steps
//! 1. Refuse bad input before anything is made: not the database mode, an unknown tenant or
//!    server, the server it is on, a server at its `max_tenants`, an unreachable server (the
//!    clone fails to connect).
//! 2. Clone the target server's template into the tenant's database name there
//!    ([`super::provision_database`]): migrated, policies, grants, `CONNECT` for the runtime
//!    role, a token key of its own. Its tables' columns must be the source's (else the two
//!    are at different migrations: refused, the clone dropped).
//! 3. Refuse a tenant table without a primary key ([`LifecycleError::NoPrimaryKey`]). Take
//!    the source database's move lock for the rest of the move (a second move of the tenant,
//!    to a third server, would replace this one's log: refused,
//!    [`LifecycleError::MoveUnderWay`]). In the source, as the deploy role, install the
//!    change log (`super::changes`): a trigger on each tenant table notes the key of every
//!    row written, from now on, in a table the runtime role may only add to from inside that
//!    trigger. Installing waits for the writes in flight (a moment's lock, like any
//!    trigger's creation).
//! 4. Copy from a snapshot, the tenant readable *and writable*: inside the tenant's own
//!    `REPEATABLE READ` transaction, stream every table with binary `COPY` into the clone
//!    (one transaction there).
//! 5. The switch. In the source, inside the tenant's transaction, `LOCK` the tenant tables
//!    `IN EXCLUSIVE MODE`: readers pass, writers wait. Count each table's rows, note the
//!    sequences; in one tenant transaction of the clone replay the log (the rows written
//!    during the copy read again and upserted, those deleted deleted), set the sequences and
//!    count the clone's rows. Counts differ: abandon (the clone is dropped, the log removed,
//!    the source unlocked, unchanged).
//! 6. Take the tenant's registry row (compare-and-set on its old place, the server's room
//!    checked again under the create lock), then, still holding the locks, fence the source:
//!    revoke the runtime role's `INSERT`, `UPDATE`, `DELETE` on its tenant tables, and commit
//!    it. Writers that waited on the lock, and any process still routing to the old copy,
//!    now get `permission denied` instead of writing where nobody will read. Then commit the
//!    registry row: its trigger's `NOTIFY` empties every process's cached placement. The write
//!    pause is measured from the `LOCK` to this commit: it grows with the writes made during
//!    the copy, not with the tenant's rows (BENCHMARKS.md).
//! 7. Give processes a moment to hear the notice (a reader that has not yet may still open
//!    a connection to the old copy), revoke the runtime role's `CONNECT` on the old
//!    database, then drop it (its remaining sessions ended, or, when the deploy role
//!    may not end other roles' sessions, once the pools' idle connections have closed).
//!
//! A failure before the registry commits leaves the registry and the old database as they
//! were (a fence already committed is lifted again, the change log removed) and drops the
//! clone.
//!
//! # Why `COPY` between connections, and not pg_dump or logical replication
//! Logical replication needs `wal_level = logical` (a restart) and, on PostgreSQL 15, a
//! superuser for `CREATE SUBSCRIPTION`; the deploy role is neither. `pg_dump`/`pg_restore`
//! must be at least the server's major version on the machine that runs the move, and
//! restore into an empty database, so the clone's policies, grants and key would be made a
//! second way. Binary `COPY` over the two connections the toolkit already holds needs no
//! binary and no privilege beyond owning the tables, and fills a database made exactly as
//! `rls-tenant create` makes one. BENCHMARKS.md measures it against `pg_dump -Fc |
//! pg_restore` on the same tenant.

use std::fmt;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::{AssertSqlSafe, Connection, PgConnection};

use super::copy::{self, TableCount};
use super::{LifecycleError, Result, TenantLifecycle, TenantRecord, bind_id, drop_tenant_database};
use super::{changes, retire};
use crate::connect::{self, Server, ServerName};
use crate::db::{IsolationLevel, TxOptions};
use crate::migrate::grants;
use crate::placement::DatabaseName;
use crate::policy::Strategy;
use crate::tenant::TenantSlug;

/// How long the move waits for the tenant's writers to finish before it holds the tables.
const LOCK_TIMEOUT: &str = "30s";

/// Feedback while a move copies, e.g. a progress bar. Both methods do nothing by default;
/// `()` is the observer that wants nothing.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use rls_tenancy::MoveProgress;
/// #[derive(Default)]
/// struct Rows(AtomicU64);
/// impl MoveProgress for Rows {
///     fn copied(&self, _table: &str, rows: u64) {
///         self.0.fetch_add(rows, Ordering::Relaxed);
///     }
/// }
/// let rows = Rows::default();
/// rows.copied("app.users", 3);
/// assert_eq!(rows.0.load(Ordering::Relaxed), 3);
/// ```
pub trait MoveProgress: Send + Sync {
    /// The copy starts: `rows` rows in all.
    fn started(&self, rows: u64) {
        let _ = rows;
    }

    /// `table`'s `rows` rows are in the copy.
    fn copied(&self, table: &str, rows: u64) {
        let _ = (table, rows);
    }
}

impl MoveProgress for () {}

/// What [`TenantLifecycle::move_tenant`] did.
///
/// ```
/// use std::time::Duration;
/// use rls_tenancy::MoveReport;
/// let report = MoveReport {
///     slug: "acme".parse()?,
///     from: "eu1".into(),
///     to: "eu2".into(),
///     database: "app_tenant_acme".into(),
///     tables: vec![("app.users".into(), 3), ("app.projects".into(), 1200)],
///     replayed: 7,
///     total: Duration::from_millis(2500),
///     write_pause: Duration::from_millis(420),
/// };
/// assert_eq!(
///     report.to_string(),
///     "moved tenant acme from server eu1 to server eu2 (database app_tenant_acme): 1203 rows in 2 tables copied and counted (7 written during the copy, copied again at the switch); 2.50 s in all, writes blocked for 0.42 s"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MoveReport {
    /// The tenant.
    pub slug: TenantSlug,
    /// The server it was on.
    pub from: String,
    /// The server it is on now.
    pub to: String,
    /// Its database's name (the same on both servers).
    pub database: String,
    /// Each tenant table with its rows, as counted on both sides.
    pub tables: Vec<(String, u64)>,
    /// The rows the tenant's writers changed during the copy, written again (or deleted) in
    /// the copy at the switch.
    pub replayed: u64,
    /// The whole move, from the checks to the old copy's drop.
    pub total: Duration,
    /// How long its writers were blocked: from the tables' lock to the registry's commit.
    pub write_pause: Duration,
}

impl fmt::Display for MoveReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: u64 = self.tables.iter().map(|(_, rows)| rows).sum();
        write!(
            f,
            "moved tenant {} from server {} to server {} (database {}): {rows} rows in {} tables copied and counted ({} written during the copy, copied again at the switch); {:.2} s in all, writes blocked for {:.2} s",
            self.slug,
            self.from,
            self.to,
            self.database,
            self.tables.len(),
            self.replayed,
            self.total.as_secs_f64(),
            self.write_pause.as_secs_f64(),
        )
    }
}

/// One move's fixed inputs.
struct Move<'a> {
    tenant: &'a TenantRecord,
    from: &'a Server,
    to: &'a Server,
    database: &'a DatabaseName,
    tables: Vec<String>,
}

impl TenantLifecycle {
    /// Moves tenant `slug`'s database to server `to` (see the [module documentation](self)
    /// for the steps and guarantees): readable throughout, writes blocked from the tables'
    /// lock to the registry's commit, no write lost or left in the old copy, the old copy
    /// dropped only once each table's rows were counted equal in the copy. A suspended
    /// tenant moves too, and stays suspended. `progress` hears the copy's progress.
    ///
    /// # Errors
    /// Refused with nothing made: [`LifecycleError::MoveNeedsDatabases`] outside the
    /// database mode, [`LifecycleError::TenantNotFound`], [`LifecycleError::StaticTenant`],
    /// [`LifecycleError::Connect`] for an unknown or unreachable server,
    /// [`LifecycleError::SameServer`], [`LifecycleError::ServerFull`],
    /// [`LifecycleError::DatabaseTaken`] on the target, [`LifecycleError::NoTenantMigrations`].
    /// Abandoned with the tenant where it was and the clone dropped:
    /// [`LifecycleError::SchemasDiffer`], [`LifecycleError::MoveUnderWay`],
    /// [`LifecycleError::CountsDiffer`],
    /// [`LifecycleError::RegistryChanged`], a database error. After the move:
    /// [`LifecycleError::OldDatabaseKept`] when the old copy could not be dropped.
    ///
    /// ```no_run
    /// # use rls_tenancy::TenantLifecycle;
    /// # async fn demo(lifecycle: TenantLifecycle) -> Result<(), Box<dyn std::error::Error>> {
    /// let report = lifecycle.move_tenant(&"acme".parse()?, &"eu2".parse()?, &()).await?;
    /// println!("{report}");
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(skip_all, fields(slug = slug.as_str(), to = to.as_str()))]
    pub async fn move_tenant(
        &self,
        slug: &TenantSlug,
        to: &ServerName,
        progress: &dyn MoveProgress,
    ) -> Result<MoveReport> {
        let started = Instant::now();
        if self.decl.strategy() != Strategy::Database {
            return Err(LifecycleError::MoveNeedsDatabases);
        }
        self.refuse_static(slug, "move")?;
        let tenant = self.find(slug).await?;
        let (from, database) = self
            .placed(&tenant)?
            .ok_or_else(|| LifecycleError::NoDatabase {
                slug: slug.to_string(),
            })?;
        let databases = self.tenant_databases()?;
        let target = databases.server(to)?;
        if target.name() == from.name() {
            return Err(LifecycleError::SameServer {
                slug: slug.to_string(),
                server: to.to_string(),
            });
        }
        let mut room = self.pool.begin().await?;
        self.reserve(&mut room, to).await?;
        room.rollback().await?;
        self.provision(target, &database).await?;
        tracing::info!(
            from = from.name().as_str(),
            database = database.as_str(),
            "cloned the target's template"
        );
        let job = Move {
            tenant: &tenant,
            from,
            to: target,
            database: &database,
            tables: copy::tenant_tables(&self.decl),
        };
        let (counts, replayed, write_pause) = match self.copy_and_switch(&job, progress).await {
            Ok(done) => done,
            Err(err) => {
                if let Err(cleanup) = drop_tenant_database(target, &database).await {
                    tracing::error!(error = %cleanup, database = database.as_str(), "could not drop the abandoned copy");
                }
                return Err(err);
            }
        };
        tracing::info!(
            write_pause_ms = write_pause.as_millis() as u64,
            "the registry names the copy"
        );
        self.retire(from, &database).await?;
        Ok(MoveReport {
            slug: slug.clone(),
            from: from.name().to_string(),
            to: to.to_string(),
            database: database.as_str().to_owned(),
            tables: counts
                .into_iter()
                .map(|c| (c.table, u64::try_from(c.rows).unwrap_or(0)))
                .collect(),
            replayed,
            total: started.elapsed(),
            write_pause,
        })
    }

    /// Steps 3 to 6: logs the tenant's writes, copies from a snapshot, then under the write
    /// lock replays the log, checks the counts and flips the registry behind the fence. The
    /// log is removed again when the move fails. Returns the counts, the rows replayed and
    /// the write pause.
    async fn copy_and_switch(
        &self,
        job: &Move<'_>,
        progress: &dyn MoveProgress,
    ) -> Result<(Vec<TableCount>, u64, Duration)> {
        let tables = &job.tables;
        let database = job.database.as_str();
        let mut source_conn = connect::connect(&job.from.url().with_database(database)).await?;
        let mut target_conn = connect::connect(&job.to.url().with_database(database)).await?;
        let mut columns = Vec::with_capacity(tables.len());
        for table in tables {
            let theirs = copy::columns(&mut source_conn, table).await?;
            let ours = copy::columns(&mut target_conn, table).await?;
            copy::same_columns(table, &theirs, &ours)?;
            columns.push(theirs);
        }
        let logged = changes::tables(&mut source_conn, tables, &columns).await?;
        changes::lock(&mut source_conn, job.tenant.slug.as_str()).await?;
        let switched = match changes::install(
            &mut source_conn,
            &logged,
            self.options.runtime_role(),
            LOCK_TIMEOUT,
        )
        .await
        {
            Ok(()) => {
                tracing::info!("the tenant's writes are logged; copying from a snapshot");
                let switched = self
                    .copy_then_switch(job, &logged, &mut source_conn, &mut target_conn, progress)
                    .await;
                if switched.is_err()
                    && let Err(err) = changes::remove(&mut source_conn, LOCK_TIMEOUT).await
                {
                    tracing::warn!(error = %err, "could not remove the move's change log from the tenant's database; the next move removes it");
                }
                switched
            }
            Err(err) => Err(err),
        };
        if let Err(err) = changes::unlock(&mut source_conn).await {
            tracing::debug!(error = %err, "could not let go of the move lock; it goes with the connection");
        }
        switched
    }

    /// Steps 4 to 6 on the two connections, the log installed.
    async fn copy_then_switch(
        &self,
        job: &Move<'_>,
        logged: &[changes::Table],
        source_conn: &mut PgConnection,
        target_conn: &mut PgConnection,
        progress: &dyn MoveProgress,
    ) -> Result<(Vec<TableCount>, u64, Duration)> {
        let (tables, id) = (&job.tables, job.tenant.id);
        let snapshot_options = TxOptions::default()
            .read_only()
            .isolation(IsolationLevel::RepeatableRead);
        let mut snapshot =
            copy::begin_tenant(source_conn, &self.context, id, snapshot_options).await?;
        let snapshot_counts = copy::count_rows(&mut snapshot, tables).await?;
        progress.started(
            snapshot_counts
                .iter()
                .map(|c| u64::try_from(c.rows).unwrap_or(0))
                .sum(),
        );
        let mut fill = target_conn.begin().await?;
        copy::force_row_security(&mut fill, tables, false).await?;
        for table in logged {
            let rows =
                copy::copy_table(&mut snapshot, &mut fill, &table.name, &table.columns).await?;
            progress.copied(&table.name, rows);
        }
        copy::force_row_security(&mut fill, tables, true).await?;
        fill.commit().await?;
        snapshot.commit().await?;

        let mut source =
            copy::begin_tenant(source_conn, &self.context, id, TxOptions::default()).await?;
        sqlx::query("SELECT set_config('lock_timeout', $1, true)")
            .bind(LOCK_TIMEOUT)
            .execute(&mut *source)
            .await?;
        let blocked = Instant::now();
        sqlx::raw_sql(AssertSqlSafe(format!(
            "LOCK TABLE {} IN EXCLUSIVE MODE",
            tables.join(", ")
        )))
        .execute(&mut *source)
        .await?;
        tracing::info!("writes blocked; replaying the writes made during the copy");
        let counts = copy::count_rows(&mut source, tables).await?;
        let positions = copy::sequences(&mut source, &self.decl).await?;
        let mut replay =
            copy::begin_tenant(target_conn, &self.context, id, TxOptions::default()).await?;
        let (written, deleted) = changes::replay(&mut source, &mut replay, logged).await?;
        copy::set_sequences(&mut replay, &positions).await?;
        let copied = copy::count_rows(&mut replay, tables).await?;
        replay.commit().await?;
        let differ: Vec<String> = counts
            .iter()
            .zip(&copied)
            .filter(|(ours, theirs)| ours.rows != theirs.rows)
            .map(|(ours, theirs)| {
                format!(
                    "{} ({} rows, the copy {})",
                    ours.table, ours.rows, theirs.rows
                )
            })
            .collect();
        if !differ.is_empty() {
            return Err(LifecycleError::CountsDiffer {
                tables: differ.join(", "),
            });
        }
        let mut control = self.pool.begin().await?;
        self.reserve(&mut control, job.to.name()).await?;
        self.replace_place(&mut control, job).await?;
        self.fence(&mut source, tables).await?;
        source.commit().await?;
        if let Err(err) = control.commit().await {
            if let Err(unfence) = self.unfence(job).await {
                tracing::error!(error = %unfence, "could not give the runtime role its writes back on the old copy: run rls-migrate --strategy database");
            }
            return Err(err.into());
        }
        Ok((counts, written + deleted, blocked.elapsed()))
    }

    /// Step 7: the old copy closed to the runtime role and dropped ([`retire::retire`]).
    async fn retire(&self, from: &Server, database: &DatabaseName) -> Result<()> {
        retire::retire(from, database, self.options.runtime_role())
            .await
            .map_err(|err| LifecycleError::OldDatabaseKept {
                server: from.name().to_string(),
                database: database.as_str().to_owned(),
                reason: err.to_string(),
            })
    }

    /// The registry row names the copy, if it still names the old place.
    async fn replace_place(&self, conn: &mut PgConnection, job: &Move<'_>) -> Result<()> {
        let registry = self.decl.registry();
        let sql = format!(
            "UPDATE {shared}.{table} SET {server} = $2, {database} = $3
              WHERE {id} = $1 AND {server} = $4 AND {database} = $3",
            shared = self.decl.schema(),
            table = registry.table,
            server = registry.server_column,
            database = registry.database_column,
            id = registry.id_column,
        );
        let done = bind_id(sqlx::query(AssertSqlSafe(sql)), job.tenant.id)
            .bind(job.to.name().as_str())
            .bind(job.database.as_str())
            .bind(job.from.name().as_str())
            .execute(conn)
            .await?;
        if done.rows_affected() != 1 {
            return Err(LifecycleError::RegistryChanged {
                slug: job.tenant.slug.to_string(),
            });
        }
        Ok(())
    }

    /// Revokes the runtime role's writes on the old copy's tenant tables.
    async fn fence(&self, conn: &mut PgConnection, tables: &[String]) -> Result<()> {
        sqlx::raw_sql(AssertSqlSafe(format!(
            "REVOKE INSERT, UPDATE, DELETE ON {} FROM {}",
            tables.join(", "),
            self.options.runtime_role()
        )))
        .execute(conn)
        .await?;
        Ok(())
    }

    /// Gives the runtime role its grants on the old copy back (the registry still names it).
    async fn unfence(&self, job: &Move<'_>) -> Result<()> {
        let url = job.from.url().with_database(job.database.as_str());
        let mut conn = connect::connect(&url).await?;
        let mut tx = conn.begin().await?;
        grants::grant_tenant_tables(
            &mut tx,
            self.decl.schema(),
            &self.decl,
            self.options.runtime_role(),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
