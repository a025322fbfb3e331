//! [`ReplicatedCluster`]: a throwaway primary with streaming standbys, for tests and
//! benchmarks of replica routing.

use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::{AdminServer, HarnessError, LocalCluster, Result};
use crate::connect::{ConnectError, DatabaseUrl};

/// A primary [`LocalCluster`] (as an [`AdminServer`], so scratch databases can be made on it)
/// and streaming standbys of it, each on its own loopback port and in its own directory.
/// A standby may replay with a delay (`recovery_min_apply_delay`), to make lag visible.
/// Everything a scratch database on the primary holds (its roles, its rows, its policies)
/// reaches the standbys by replication; dropping the cluster stops and removes them all.
///
/// ```no_run
/// use std::time::Duration;
/// use rls_tenancy::{ReplicatedCluster, ScratchDatabase};
/// # async fn demo() -> rls_tenancy::Result<()> {
/// let cluster = ReplicatedCluster::start(&[None, Some(Duration::from_secs(3))]).await?;
/// let db = ScratchDatabase::migrated_on(cluster.primary().clone()).await?;
/// cluster.wait_replayed(&cluster.standbys()[0], Duration::from_secs(30)).await?;
/// let on_standby = cluster.standbys()[0].url_for(db.runtime_url())?; // same login, the standby
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ReplicatedCluster {
    primary: AdminServer,
    standbys: Vec<LocalCluster>,
}

impl ReplicatedCluster {
    /// Starts a primary and one standby per entry of `apply_delays` (`None`: replays at
    /// once; `Some(d)`: replays each commit `d` after it happened).
    ///
    /// # Errors
    /// [`HarnessError::NoPostgres`] when a server or `pg_basebackup` fails.
    ///
    /// ```no_run
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let cluster = rls_tenancy::ReplicatedCluster::start(&[None, None]).await?;
    /// assert_eq!(cluster.standbys().len(), 2);
    /// # Ok(()) }
    /// ```
    pub async fn start(apply_delays: &[Option<Duration>]) -> Result<Self> {
        let delays = apply_delays.to_vec();
        let (primary, standbys) = tokio::task::spawn_blocking(move || {
            let primary = LocalCluster::start()?;
            let standbys = delays
                .into_iter()
                .map(|delay| primary.start_standby(delay))
                .collect::<Result<Vec<_>>>()?;
            Ok::<_, HarnessError>((primary, standbys))
        })
        .await
        .map_err(|e| HarnessError::NoPostgres {
            reason: format!("the cluster start-up task failed: {e}"),
        })??;
        Ok(Self {
            primary: AdminServer::over(primary).await?,
            standbys,
        })
    }

    /// The primary, to create scratch databases on
    /// ([`crate::ScratchDatabase::migrated_on`]).
    ///
    /// ```no_run
    /// # async fn demo(cluster: rls_tenancy::ReplicatedCluster) {
    /// println!("{}", cluster.primary().admin_url());
    /// # }
    /// ```
    pub fn primary(&self) -> &AdminServer {
        &self.primary
    }

    /// The standbys, in the order of `apply_delays`.
    ///
    /// ```no_run
    /// # async fn demo(cluster: rls_tenancy::ReplicatedCluster) -> rls_tenancy::Result<()> {
    /// cluster.standbys()[0].stop()?; // a standby lost
    /// # Ok(()) }
    /// ```
    pub fn standbys(&self) -> &[LocalCluster] {
        &self.standbys
    }

    /// Waits until `standby` has replayed everything the primary had written when called.
    ///
    /// # Errors
    /// [`HarnessError::Replication`] when it has not within `timeout`; a connection error.
    ///
    /// ```no_run
    /// # async fn demo(cluster: rls_tenancy::ReplicatedCluster) -> rls_tenancy::Result<()> {
    /// cluster.wait_replayed(&cluster.standbys()[0], std::time::Duration::from_secs(10)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_replayed(&self, standby: &LocalCluster, timeout: Duration) -> Result<()> {
        let mut primary = connect(self.primary.admin_url()).await?;
        // The insert position: with asynchronous commit, the last commit may not be written yet.
        let target: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
            .fetch_one(&mut primary)
            .await?;
        let mut conn = connect(standby.admin_url()).await?;
        let started = Instant::now();
        loop {
            let replayed: Option<bool> =
                sqlx::query_scalar("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn")
                    .bind(&target)
                    .fetch_one(&mut conn)
                    .await?;
            if replayed == Some(true) {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(HarnessError::Replication {
                    port: standby.port(),
                    waited_ms: timeout.as_millis(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl LocalCluster {
    /// `url`'s login and database on this cluster: how a scratch database made on a
    /// primary is reached on its standby.
    ///
    /// # Errors
    /// [`ConnectError::InvalidUrl`] if `url` has no host.
    ///
    /// ```no_run
    /// # async fn demo(db: rls_tenancy::ScratchDatabase, standby: &rls_tenancy::LocalCluster) -> rls_tenancy::Result<()> {
    /// let runtime_on_standby = standby.url_for(db.runtime_url())?;
    /// # Ok(()) }
    /// ```
    pub fn url_for(&self, url: &DatabaseUrl) -> Result<DatabaseUrl, ConnectError> {
        url.with_port(self.port())
    }
}

async fn connect(url: &DatabaseUrl) -> Result<PgConnection> {
    PgConnection::connect_with(&url.connect_options()?)
        .await
        .map_err(|source| {
            ConnectError::Unreachable {
                url: url.redacted(),
                source,
            }
            .into()
        })
}
