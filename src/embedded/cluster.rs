//! [`LocalCluster`]: a throwaway PostgreSQL cluster started from the local binaries.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::unistd::{Uid, User};

use super::binaries::find_bindir;
use super::{HarnessError, Result};
use crate::connect::DatabaseUrl;

/// A private PostgreSQL cluster in a temporary directory, listening on a free loopback port,
/// with a `postgres` superuser and trust authentication for loopback only.
///
/// Dropping it stops the server and removes the directory. A watchdog process does the same
/// if this process dies without dropping it (killed, or a cluster held in a `static`).
/// When running as root, `initdb` and the server run as the `postgres` OS user.
///
/// ```no_run
/// use rls_tenancy::LocalCluster;
/// let cluster = LocalCluster::start()?;
/// println!("admin URL: {}", cluster.admin_url());
/// drop(cluster); // stopped and removed
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug)]
pub struct LocalCluster {
    bindir: PathBuf,
    dir: tempfile::TempDir,
    run_as: Option<User>,
    port: u16,
    admin_url: DatabaseUrl,
}

impl LocalCluster {
    /// Initialises and starts a new cluster.
    ///
    /// # Errors
    /// [`HarnessError::NoPostgres`] when no server binaries are installed, or `initdb` or the server
    /// fails (its log is quoted in the message).
    ///
    /// ```no_run
    /// let cluster = rls_tenancy::LocalCluster::start()?;
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn start() -> Result<Self> {
        let cluster = Self::prepare()?;
        let data = cluster.data_dir();
        cluster.initdb(&data)?;
        cluster.configure(&data, "shared_buffers = 256MB\n")?;
        cluster.launch()?;
        tracing::info!(port = cluster.port, dir = %cluster.dir.path().display(), "started a local PostgreSQL cluster");
        Ok(cluster)
    }

    /// Starts a streaming standby of `primary`: a copy taken with `pg_basebackup -R` (which
    /// writes `primary_conninfo` and `standby.signal`), on a port and in a directory of its
    /// own, read-only (hot standby). With `apply_delay`, the standby receives the primary's
    /// WAL at once but replays each commit only that long after it happened
    /// (`recovery_min_apply_delay`): replication lag on demand, for tests.
    ///
    /// # Errors
    /// [`HarnessError::NoPostgres`] when `pg_basebackup` or the server fails (the message
    /// quotes them).
    ///
    /// ```no_run
    /// let primary = rls_tenancy::LocalCluster::start()?;
    /// let lagging = primary.start_standby(Some(std::time::Duration::from_secs(3)))?;
    /// assert_ne!(lagging.port(), primary.port());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn start_standby(&self, apply_delay: Option<Duration>) -> Result<Self> {
        let standby = Self::prepare()?;
        let data = standby.data_dir();
        let output = standby
            .command("pg_basebackup")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-X",
                "stream",
                "-R",
                "-p",
            ])
            .arg(self.port.to_string())
            .arg("-D")
            .arg(&data)
            .output()?;
        if !output.status.success() {
            return Err(HarnessError::NoPostgres {
                reason: format!(
                    "pg_basebackup failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            });
        }
        let delay = apply_delay.map_or_else(String::new, |delay| {
            format!("recovery_min_apply_delay = '{}ms'\n", delay.as_millis())
        });
        standby.configure(&data, &format!("shared_buffers = 32MB\n{delay}"))?;
        standby.launch()?;
        tracing::info!(
            port = standby.port,
            primary = self.port,
            "started a streaming standby"
        );
        Ok(standby)
    }

    /// A directory owned by the server's OS user, a free port, no data yet.
    fn prepare() -> Result<Self> {
        let bindir = find_bindir().ok_or_else(|| HarnessError::NoPostgres {
            reason: "no initdb/pg_ctl found in $RLS_PG_BINDIR, /usr/lib/postgresql/*/bin or PATH"
                .into(),
        })?;
        let run_as = if Uid::effective().is_root() {
            Some(User::from_name("postgres").ok().flatten().ok_or_else(|| {
                HarnessError::NoPostgres {
                    reason: "running as root, and there is no `postgres` OS user to run initdb as"
                        .into(),
                }
            })?)
        } else {
            None
        };
        let dir = tempfile::Builder::new().prefix("rls-pg-").tempdir()?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data)?;
        // The server refuses a data directory others can read.
        std::fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o700))?;
        if let Some(user) = &run_as {
            for path in [dir.path(), data.as_path()] {
                std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))?;
            }
        }
        let port = free_port()?;
        let admin_url: DatabaseUrl =
            format!("postgres://postgres@127.0.0.1:{port}/postgres").parse()?;
        Ok(Self {
            bindir,
            dir,
            run_as,
            port,
            admin_url,
        })
    }

    /// Starts the server, with a watchdog that removes it if this process dies.
    fn launch(&self) -> Result<()> {
        let data = self.data_dir();
        self.spawn_watchdog(&data);
        self.pg_ctl(
            &data,
            &["start", "-w", "-t", "60", "-l"],
            Some("server.log"),
        )
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The loopback port the server listens on.
    ///
    /// ```no_run
    /// let cluster = rls_tenancy::LocalCluster::start()?;
    /// assert!(cluster.admin_url().to_string().contains(&format!(":{}/", cluster.port())));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser URL of this cluster (`postgres://postgres@127.0.0.1:PORT/postgres`).
    ///
    /// ```no_run
    /// let cluster = rls_tenancy::LocalCluster::start()?;
    /// assert!(cluster.admin_url().to_string().starts_with("postgres://postgres@127.0.0.1:"));
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn admin_url(&self) -> &DatabaseUrl {
        &self.admin_url
    }

    /// The directory holding the cluster; removed on drop.
    ///
    /// ```no_run
    /// let cluster = rls_tenancy::LocalCluster::start()?;
    /// assert!(cluster.dir().exists());
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server (fast shutdown: sessions are ended, transactions rolled back) and
    /// keeps its data: an outage, for tests of what clients do meanwhile. [`LocalCluster::resume`]
    /// starts it again on the same port.
    ///
    /// # Errors
    /// [`HarnessError::NoPostgres`] when `pg_ctl stop` fails.
    ///
    /// ```no_run
    /// let cluster = rls_tenancy::LocalCluster::start()?;
    /// cluster.stop()?;
    /// cluster.resume()?;
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn stop(&self) -> Result<()> {
        self.pg_ctl(
            &self.data_dir(),
            &["stop", "-m", "fast", "-w", "-t", "30"],
            None,
        )
    }

    /// Starts a cluster stopped by [`LocalCluster::stop`] again, on the same port.
    ///
    /// # Errors
    /// [`HarnessError::NoPostgres`] when the server does not start (its log is quoted).
    ///
    /// ```no_run
    /// # let cluster = rls_tenancy::LocalCluster::start()?;
    /// cluster.resume()?;
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn resume(&self) -> Result<()> {
        self.pg_ctl(
            &self.data_dir(),
            &["start", "-w", "-t", "60", "-l"],
            Some("server.log"),
        )
    }

    /// Promotes this standby to a primary (`pg_ctl promote`, waiting until it takes
    /// writes): a failover, for tests of clients that must follow it.
    ///
    /// # Errors
    /// [`HarnessError::NoPostgres`] when `pg_ctl promote` fails (not a standby, not running).
    ///
    /// ```no_run
    /// let primary = rls_tenancy::LocalCluster::start()?;
    /// let standby = primary.start_standby(None)?;
    /// primary.stop()?;
    /// standby.promote()?;
    /// # Ok::<(), rls_tenancy::Error>(())
    /// ```
    pub fn promote(&self) -> Result<()> {
        self.pg_ctl(&self.data_dir(), &["promote", "-w", "-t", "60"], None)
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bindir.join(program));
        if let Some(user) = &self.run_as {
            cmd.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
        cmd.current_dir(self.dir.path())
            .stdin(Stdio::null())
            .env("LC_ALL", "C");
        cmd
    }

    fn initdb(&self, data: &Path) -> Result<()> {
        let output = self
            .command("initdb")
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "-D",
            ])
            .arg(data)
            .output()?;
        if output.status.success() {
            Ok(())
        } else {
            Err(HarnessError::NoPostgres {
                reason: format!(
                    "initdb failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            })
        }
    }

    /// Appends this cluster's settings to `postgresql.conf` (a standby's copy of the
    /// primary's file too: the later lines win), then `extra`.
    fn configure(&self, data: &Path, extra: &str) -> Result<()> {
        let settings = format!(
            "\n# rls-tenancy throwaway cluster\nlisten_addresses = '127.0.0.1'\nport = {}\n\
             unix_socket_directories = '{}'\nmax_connections = 300\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n{extra}",
            self.port,
            data.display()
        );
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)?;
        text.push_str(&settings);
        std::fs::write(&conf, text)?;
        Ok(())
    }

    fn pg_ctl(&self, data: &Path, args: &[&str], log: Option<&str>) -> Result<()> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D").arg(data).args(args);
        if let Some(log) = log {
            cmd.arg(self.dir.path().join(log));
        }
        let output = cmd.stdout(Stdio::null()).output()?;
        if output.status.success() {
            return Ok(());
        }
        let log_text = log
            .and_then(|l| std::fs::read_to_string(self.dir.path().join(l)).ok())
            .unwrap_or_default();
        Err(HarnessError::NoPostgres {
            reason: format!(
                "pg_ctl {} failed: {} {}",
                args.first().copied().unwrap_or_default(),
                String::from_utf8_lossy(&output.stderr).trim(),
                log_text
                    .lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
        })
    }

    /// Starts a detached shell that waits for this process to exit, then stops the server
    /// (SIGQUIT: immediate shutdown) and removes the directory.
    fn spawn_watchdog(&self, data: &Path) {
        let script = "while kill -0 \"$1\" 2>/dev/null; do sleep 1; done; \
                      pid=$(head -n 1 \"$2/postmaster.pid\" 2>/dev/null); \
                      [ -n \"$pid\" ] && kill -QUIT \"$pid\" 2>/dev/null; sleep 1; rm -rf \"$3\"";
        let spawned = Command::new("setsid")
            .args(["sh", "-c", script, "rls-pg-watchdog"])
            .arg(std::process::id().to_string())
            .arg(data)
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the cluster watchdog; a killed process may leave the cluster running");
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        if let Err(e) = self.pg_ctl(&data, &["stop", "-m", "fast", "-w", "-t", "30"], None) {
            tracing::warn!(error = %e, "could not stop the local cluster cleanly");
        }
        tracing::info!(dir = %self.dir.path().display(), "removed the local PostgreSQL cluster");
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
