//! Finds a PostgreSQL server with a superuser login, for tests, benchmarks and the demo.

use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tokio::sync::OnceCell;

use super::LocalCluster;
use super::{HarnessError, Result};
use crate::connect::{ConnectError, DatabaseUrl};

/// Where the superuser connection came from.
#[derive(Debug)]
enum Origin {
    /// `RLS_TEST_ADMIN_URL` or an already-running server on 127.0.0.1:5432.
    External,
    /// A cluster this process started; stopped when the last handle goes.
    Local {
        /// Held so the cluster lives as long as the server.
        _cluster: Box<LocalCluster>,
    },
    /// A container started through testcontainers.
    #[cfg(feature = "testcontainers")]
    Container {
        /// Held so the container lives as long as the server.
        _container: Box<
            testcontainers_modules::testcontainers::ContainerAsync<
                testcontainers_modules::postgres::Postgres,
            >,
        >,
    },
}

/// A PostgreSQL server this process may administer: the superuser URL, and whatever keeps
/// the server alive (a local cluster or a container) until the last clone is dropped.
///
/// [`AdminServer::discover`] tries, in order:
/// 1. `RLS_TEST_ADMIN_URL`, a superuser URL;
/// 2. a server on 127.0.0.1:5432 that accepts the `postgres` superuser without a password;
/// 3. a throwaway [`LocalCluster`] from the local server binaries;
/// 4. with the `testcontainers` feature and a reachable Docker daemon, a Postgres container.
///
/// ```no_run
/// # async fn demo() -> rls_tenancy::Result<()> {
/// let server = rls_tenancy::AdminServer::shared().await?;
/// println!("{}", server.admin_url()); // password hidden
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AdminServer {
    admin_url: DatabaseUrl,
    origin: Arc<Origin>,
}

static SHARED: OnceCell<AdminServer> = OnceCell::const_new();
static SECOND: OnceCell<AdminServer> = OnceCell::const_new();

impl AdminServer {
    /// The server shared by everything in this process, discovered on first use.
    ///
    /// # Errors
    /// [`HarnessError::NoPostgres`] saying what was tried; [`Error::InvalidDatabaseUrl`] when
    /// `RLS_TEST_ADMIN_URL` is set but malformed.
    ///
    /// ```no_run
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let server = rls_tenancy::AdminServer::shared().await?;
    /// # Ok(()) }
    /// ```
    pub async fn shared() -> Result<&'static AdminServer> {
        SHARED.get_or_try_init(Self::discover).await
    }

    /// A second server, distinct from [`AdminServer::shared`], shared by everything in this
    /// process: a throwaway [`LocalCluster`] on a loopback port, started on first use and
    /// removed when the process ends (by its watchdog). For tests of the database strategy,
    /// which spreads tenant databases over several servers.
    ///
    /// # Errors
    /// [`HarnessError::NoPostgres`] when no cluster can be started from the local binaries.
    ///
    /// ```no_run
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let first = rls_tenancy::AdminServer::shared().await?;
    /// let second = rls_tenancy::AdminServer::second().await?;
    /// assert_ne!(first.admin_url().to_string(), second.admin_url().to_string());
    /// # Ok(()) }
    /// ```
    pub async fn second() -> Result<&'static AdminServer> {
        SECOND.get_or_try_init(Self::start_local).await
    }

    /// Finds or starts a server, as described on [`AdminServer`].
    ///
    /// # Errors
    /// As for [`AdminServer::shared`].
    ///
    /// ```no_run
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let server = rls_tenancy::AdminServer::discover().await?;
    /// # Ok(()) }
    /// ```
    pub async fn discover() -> Result<Self> {
        if let Ok(raw) = std::env::var("RLS_TEST_ADMIN_URL") {
            let admin_url: DatabaseUrl = raw.parse()?;
            check_superuser(&admin_url).await?;
            return Ok(Self::external(admin_url));
        }
        let default: DatabaseUrl = "postgres://postgres@127.0.0.1:5432/postgres".parse()?;
        let default_err = match check_superuser(&default).await {
            Ok(()) => return Ok(Self::external(default)),
            Err(e) => e,
        };
        let local_err = match Self::start_local().await {
            Ok(server) => return Ok(server),
            Err(e) => e,
        };
        #[cfg(feature = "testcontainers")]
        if let Ok(server) = Self::start_container().await {
            return Ok(server);
        }
        Err(HarnessError::NoPostgres {
            reason: format!("127.0.0.1:5432: {default_err}; local cluster: {local_err}"),
        })
    }

    /// Starts a private [`LocalCluster`] and waits until it accepts the superuser.
    ///
    /// # Errors
    /// [`HarnessError::NoPostgres`] when the cluster cannot be started.
    ///
    /// ```no_run
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let server = rls_tenancy::AdminServer::start_local().await?;
    /// # Ok(()) }
    /// ```
    pub async fn start_local() -> Result<Self> {
        let cluster = tokio::task::spawn_blocking(LocalCluster::start)
            .await
            .map_err(|e| HarnessError::NoPostgres {
                reason: format!("the cluster start-up task failed: {e}"),
            })??;
        Self::over(cluster).await
    }

    /// The server of a cluster this process started, once it accepts the superuser; the
    /// cluster is stopped and removed when the last handle goes.
    pub(crate) async fn over(cluster: LocalCluster) -> Result<Self> {
        let admin_url = cluster.admin_url().clone();
        check_superuser(&admin_url).await?;
        Ok(Self {
            admin_url,
            origin: Arc::new(Origin::Local {
                _cluster: Box::new(cluster),
            }),
        })
    }

    #[cfg(feature = "testcontainers")]
    async fn start_container() -> Result<Self> {
        use testcontainers_modules::testcontainers::runners::AsyncRunner;
        let unavailable = |e: &dyn std::fmt::Display| HarnessError::NoPostgres {
            reason: format!("testcontainers: {e}"),
        };
        let container = testcontainers_modules::postgres::Postgres::default()
            .start()
            .await
            .map_err(|e| unavailable(&e))?;
        let port = container
            .get_host_port_ipv4(5432)
            .await
            .map_err(|e| unavailable(&e))?;
        let admin_url: DatabaseUrl =
            format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres").parse()?;
        check_superuser(&admin_url).await?;
        Ok(Self {
            admin_url,
            origin: Arc::new(Origin::Container {
                _container: Box::new(container),
            }),
        })
    }

    fn external(admin_url: DatabaseUrl) -> Self {
        Self {
            admin_url,
            origin: Arc::new(Origin::External),
        }
    }

    /// The superuser URL (database `postgres`).
    ///
    /// ```no_run
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let url = rls_tenancy::AdminServer::shared().await?.admin_url();
    /// # Ok(()) }
    /// ```
    pub fn admin_url(&self) -> &DatabaseUrl {
        &self.admin_url
    }

    /// Whether this server is a cluster this process started (and will remove).
    ///
    /// ```no_run
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// assert!(rls_tenancy::AdminServer::start_local().await?.is_local_cluster());
    /// # Ok(()) }
    /// ```
    pub fn is_local_cluster(&self) -> bool {
        matches!(*self.origin, Origin::Local { .. })
    }

    /// The directory of the cluster this process started, removed when the last handle
    /// goes; `None` for a server found elsewhere.
    ///
    /// ```no_run
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let server = rls_tenancy::AdminServer::start_local().await?;
    /// assert!(server.cluster_dir().is_some_and(|dir| dir.exists()));
    /// # Ok(()) }
    /// ```
    pub fn cluster_dir(&self) -> Option<&std::path::Path> {
        self.local_cluster().map(LocalCluster::dir)
    }

    /// The cluster this process started, to stop and resume in outage tests; `None` for a
    /// server found elsewhere (never stop a server you did not start).
    ///
    /// ```no_run
    /// # async fn demo() -> rls_tenancy::Result<()> {
    /// let server = rls_tenancy::AdminServer::start_local().await?;
    /// if let Some(cluster) = server.local_cluster() {
    ///     cluster.stop()?;
    ///     cluster.resume()?;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn local_cluster(&self) -> Option<&LocalCluster> {
        match &*self.origin {
            Origin::Local { _cluster: cluster } => Some(cluster),
            _ => None,
        }
    }
}

/// Connects to `url` and checks the role is a superuser.
async fn check_superuser(url: &DatabaseUrl) -> Result<()> {
    let options = url.connect_options()?;
    let connect = PgConnection::connect_with(&options);
    let mut conn = tokio::time::timeout(Duration::from_secs(5), connect)
        .await
        .map_err(|_| HarnessError::NoPostgres {
            reason: format!("{url} did not answer within 5 s"),
        })?
        .map_err(|source| ConnectError::Unreachable {
            url: url.redacted(),
            source,
        })?;
    let is_super: bool =
        sqlx::query_scalar("SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user")
            .fetch_one(&mut conn)
            .await?;
    if is_super {
        Ok(())
    } else {
        Err(HarnessError::NoPostgres {
            reason: format!("{url} does not log in as a superuser"),
        })
    }
}
