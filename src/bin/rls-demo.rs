//! `rls-demo`: the subtask list per tenant by subdomain, with an embedded PostgreSQL when no
//! database is given.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use rls_tenancy::demo::{Demo, DemoOptions, shutdown_signal};
use rls_tenancy::http::{PinKey, RequestLimits, WritePinning};
use rls_tenancy::{BaseDomain, ServerSet, Strategy, TxTimeouts, cli};

/// Serve each tenant's subtasks on its own subdomain: http://tenant-1.localhost:8080/.
///
/// Without a database URL it starts an embedded PostgreSQL (the local server binaries),
/// creates the roles, migrates, seeds five tenants (tenant-0 .. tenant-4) with rls-seed's
/// small profile and a fixed seed, and removes it all on Ctrl-C or SIGTERM.
///
/// With --strategy database each tenant has a database of its own on one of several servers:
/// --database-url is then the control database holding the registry, and the servers come
/// from --server NAME=URL (the runtime role), RLS_SERVERS or --config ([[server]] entries,
/// whose max_connections bound each server's share of --max-connections). Without a database
/// URL it starts two embedded servers and seeds the five tenants over both.
///
/// Durations are written like 15s, 500ms or 1m.
///
/// Exit codes: 0 stopped cleanly, 1 failed, 2 usage or connection error.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The runtime role's connection URL; without one, an embedded database is started.
    /// Several hosts in libpq's form (postgres://u:p@h1:5432,h2:5433/db): writes go to the
    /// one not in recovery, and follow a promotion.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,

    /// The tenant key file `rls-migrate --tenant-key-file` installed, for a database with
    /// the signed tenant context (the default). Not needed with the embedded database.
    #[arg(long, env = "RLS_TENANT_KEY_FILE", value_name = "PATH")]
    tenant_key_file: Option<PathBuf>,

    /// The address to listen on.
    #[arg(long, env = "RLS_DEMO_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// The domain tenants live under: tenant-1.<base-domain>.
    #[arg(long, env = "RLS_BASE_DOMAIN", default_value = "localhost")]
    base_domain: String,

    /// The most database connections to open; with --strategy database, the budget of
    /// connections to tenant databases over all servers (the control database's pool of 4
    /// comes on top).
    #[arg(long, env = "RLS_DEMO_MAX_CONNECTIONS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,

    /// How long a request waits for a free database connection before it gets a 503.
    #[arg(long, env = "RLS_DEMO_ACQUIRE_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    acquire_timeout: Duration,

    /// The longest one statement may run (statement_timeout); past it, a 503.
    #[arg(long, env = "RLS_DEMO_STATEMENT_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    statement_timeout: Duration,

    /// The longest a statement waits for a lock (lock_timeout); past it, a 503.
    #[arg(long, env = "RLS_DEMO_LOCK_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    lock_timeout: Duration,

    /// The longest a transaction may sit idle (idle_in_transaction_session_timeout).
    #[arg(long, env = "RLS_DEMO_IDLE_IN_TRANSACTION_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    idle_in_transaction_timeout: Duration,

    /// The deadline of a request; past it the request is cut and answered with a 503.
    #[arg(long, env = "RLS_DEMO_REQUEST_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    request_timeout: Duration,

    /// The most page requests in flight at once; more are answered with a 503 at once.
    #[arg(long, env = "RLS_DEMO_MAX_IN_FLIGHT", default_value_t = 64)]
    max_in_flight: usize,

    /// A read replica of the database (repeatable; the env variable takes a comma-separated
    /// list): same role and database as --database-url, another host or port. The pages
    /// (/subtasks, /api/subtasks, /api/subtasks/{id}) read there, round-robin, unless pinned
    /// to the primary by a recent write.
    #[arg(
        long = "replica-url",
        env = "DATABASE_REPLICA_URLS",
        value_delimiter = ',',
        hide_env_values = true,
        requires = "database_url"
    )]
    replica_urls: Vec<String>,

    /// Skip replicas lagging further behind the primary than this.
    #[arg(long, env = "RLS_DEMO_MAX_REPLICA_LAG", value_parser = humantime::parse_duration)]
    max_replica_lag: Option<Duration>,

    /// How long a replica, or a host of the primary, found down stays out before it is
    /// checked again.
    #[arg(long, env = "RLS_DEMO_CHECK_INTERVAL", default_value = "30s", value_parser = humantime::parse_duration)]
    check_interval: Duration,

    /// How long a replica, or a host of the primary, may take to give a new connection or
    /// to answer a BEGIN before it is marked down and another is tried (as ProxySQL's
    /// connect_timeout_server). Above zero.
    #[arg(long, env = "RLS_DEMO_PEER_TIMEOUT", default_value = "1s", value_parser = cli::positive_duration)]
    peer_timeout: Duration,

    /// With several hosts in --database-url: how long a write waits for one of them to be
    /// found primary (after a failover) before it gets a 503.
    #[arg(long, env = "RLS_DEMO_FAILOVER_WAIT", default_value = "5s", value_parser = humantime::parse_duration)]
    failover_wait: Duration,

    /// The key the write-pinning cookie is signed with (at least 32 bytes); without one, a
    /// key is drawn at start, so pins do not survive a restart.
    #[arg(long, env = "RLS_DEMO_PIN_KEY", hide_env_values = true)]
    pin_key: Option<String>,

    /// Name the server that served each page and subtask API response in `x-served-by`.
    #[arg(long)]
    debug_routing: bool,

    /// On SIGTERM or SIGINT, how long requests in flight may still run before they are cut.
    #[arg(long, env = "RLS_DEMO_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    shutdown_timeout: Duration,

    #[command(flatten)]
    strategy: cli::StrategyArg,

    #[command(flatten)]
    servers: cli::ServersArg,
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::init_tracing();
    let args: Args = match cli::parse_args("rls-demo") {
        Ok(args) => args,
        Err(code) => return code,
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => cli::report_error("rls-demo", &e),
    }
}

async fn run(args: Args) -> Result<(), cli::CliError> {
    let strategy = args.strategy.strategy.unwrap_or_default();
    let given_url = args
        .database_url
        .as_deref()
        .filter(|u| !u.trim().is_empty());
    let servers = match (strategy, given_url) {
        (Strategy::Database, None)
            if !args.servers.servers.is_empty() || args.servers.config.is_some() =>
        {
            return Err(cli::CliError::Usage(
                "--server and --config need --database-url (the control database); without one the demo starts two embedded servers of its own".into(),
            ));
        }
        (Strategy::Database, None) => ServerSet::default(),
        (_, _) => args.servers.load(strategy)?,
    };
    if strategy == Strategy::Database && !args.replica_urls.is_empty() {
        return Err(cli::CliError::Usage(
            "--replica-url is not available with --strategy database: each tenant database is on its own server".into(),
        ));
    }
    let base: BaseDomain = args.base_domain.parse()?;
    let limits = RequestLimits::default()
        .timeout(args.request_timeout)
        .max_in_flight(args.max_in_flight);
    let mut options = DemoOptions::new(args.listen, base)
        .max_connections(args.max_connections)
        .acquire_timeout(args.acquire_timeout)
        .timeouts(
            TxTimeouts::default()
                .statement(args.statement_timeout)
                .lock(args.lock_timeout)
                .idle_in_transaction(args.idle_in_transaction_timeout),
        )
        .limits(limits)
        .shutdown_timeout(args.shutdown_timeout)
        .debug_routing(args.debug_routing)
        .strategy(strategy)
        .servers(servers);
    let replicas = args
        .replica_urls
        .iter()
        .map(|url| cli::database_url(Some(url), "DATABASE_REPLICA_URLS"))
        .collect::<Result<Vec<_>, _>>()?;
    options = options
        .replicas(replicas, args.max_replica_lag, args.check_interval)
        .peer_timeout(args.peer_timeout)
        .failover_wait(args.failover_wait);
    if let Some(key) = &args.pin_key {
        let key = PinKey::new(key.as_bytes())
            .map_err(|err| cli::CliError::Usage(format!("--pin-key: {err}")))?;
        options = options.pinning(WritePinning::new(key));
    }
    if let Some(url) = args
        .database_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    {
        // libpq's multi-host form names the primary's hosts: h1:5432,h2:5433.
        options = options.database_hosts(url.parse()?);
        if let Some(path) = args.tenant_key_file {
            options = options.tenant_key_file(path);
        }
    }
    let demo = Demo::start(options).await?;
    println!("rls-demo listening on http://{}", demo.local_addr());
    if let Some(dir) = demo.cluster_dir() {
        println!(
            "embedded PostgreSQL in {} (removed on Ctrl-C)",
            dir.display()
        );
    }
    if let Some(dir) = demo.second_cluster_dir() {
        println!(
            "second embedded PostgreSQL in {} (removed on Ctrl-C)",
            dir.display()
        );
    }
    println!("landing page: {}", demo.landing_url());
    if demo.tenant_urls().is_empty() {
        println!(
            "tenant pages: http://<tenant-slug>.{}",
            demo.landing_url().trim_start_matches("http://")
        );
    }
    let servers = demo.tenant_servers();
    for (n, url) in demo.tenant_urls().iter().enumerate() {
        match servers.get(n) {
            Some(server) => println!("open {url} (its own database, on server {server})"),
            None => println!("open {url}"),
        }
    }
    Ok(demo.serve(shutdown_signal()).await?)
}
