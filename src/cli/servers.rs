//! [`ServersArg`]: the database strategy's servers, as every binary takes them.

use std::path::PathBuf;

use crate::connect::{ConnectError, ServerSet};
use crate::policy::Strategy;

/// The servers flags every binary shares: `--server NAME=URL` (repeatable; env
/// `RLS_SERVERS`, entries separated by commas) and `--config PATH` (env `RLS_CONFIG`), a
/// file whose `[[server]]` entries (`name`, `url`, `max_connections`, `max_tenants`) the
/// command line's servers override by name (URL replaced, limits kept). Each URL carries the
/// role the binary runs as; its database part is ignored.
///
/// ```
/// use clap::Parser;
/// use rls_tenancy::Strategy;
/// use rls_tenancy::cli::ServersArg;
/// #[derive(Parser)]
/// struct Args {
///     #[command(flatten)]
///     servers: ServersArg,
/// }
/// let args = Args::parse_from([
///     "prog",
///     "--server", "eu1=postgres://app:pw@10.0.0.1/postgres",
///     "--server", "us1=postgres://app:pw@10.0.1.1/postgres",
/// ]);
/// assert_eq!(args.servers.load(Strategy::Database)?.len(), 2);
/// let none = Args::parse_from(["prog"]);
/// assert!(none.servers.load(Strategy::Rls)?.is_empty());
/// assert!(none.servers.load(Strategy::Database).is_err());
/// # Ok::<(), rls_tenancy::ConnectError>(())
/// ```
#[derive(Debug, Clone, clap::Args)]
pub struct ServersArg {
    /// A server of the database strategy, NAME=URL (repeatable); the URL's role is this
    /// binary's, its database part is ignored.
    #[arg(
        long = "server",
        value_name = "NAME=URL",
        env = "RLS_SERVERS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub servers: Vec<String>,

    /// A configuration file listing servers as [[server]] entries (name, url,
    /// max_connections, max_tenants).
    #[arg(long = "config", env = "RLS_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
}

impl ServersArg {
    /// The servers the flags, environment and configuration file name; under
    /// [`Strategy::Database`] at least one.
    ///
    /// # Errors
    /// [`ConnectError::NoServers`] under the database strategy with none; a malformed entry
    /// or file as [`ServerSet::parse_list`] and [`ServerSet::from_config_file`].
    pub fn load(&self, strategy: Strategy) -> Result<ServerSet, ConnectError> {
        let from_file = match &self.config {
            Some(path) => ServerSet::from_config_file(path)?,
            None => ServerSet::default(),
        };
        // clap split the values on every comma; a URL's own commas are put back by
        // splitting again where an entry starts.
        let given = ServerSet::parse_list(&self.servers.join(","))?;
        let servers = from_file.overridden_by(given);
        match strategy {
            Strategy::Database => servers.non_empty(),
            _ => Ok(servers),
        }
    }
}

/// The tenant database names flag of the binaries that create tenant databases:
/// `--database-pattern` (env `RLS_DATABASE_PATTERN`, default `<base>_tenant_<slug>`).
///
/// ```
/// use clap::Parser;
/// use rls_tenancy::cli::DatabasePatternArg;
/// #[derive(Parser)]
/// struct Args {
///     #[command(flatten)]
///     pattern: DatabasePatternArg,
/// }
/// let args = Args::parse_from(["prog"]);
/// assert_eq!(args.pattern.pattern.to_string(), "<base>_tenant_<slug>");
/// assert!(Args::try_parse_from(["prog", "--database-pattern", "x\"<slug>"]).is_err());
/// ```
#[derive(Debug, Clone, clap::Args)]
pub struct DatabasePatternArg {
    /// How a tenant's database is named: <slug> once (its '-' written '_'), optionally
    /// <base> (the control database's name).
    #[arg(
        long = "database-pattern",
        env = "RLS_DATABASE_PATTERN",
        value_name = "PATTERN",
        default_value = crate::DatabasePattern::DEFAULT
    )]
    pub pattern: crate::DatabasePattern,
}
