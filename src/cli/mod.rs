//! What every binary shares: logging set-up and the mapping of errors to exit codes.
//!
//! Exit codes: 0 ok, 1 the work failed or found problems, 2 usage or connection error.

mod servers;

use std::io::IsTerminal;
use std::process::ExitCode;

use crate::db::DbError;
use crate::error::Error;
use crate::guard::GuardError;
use crate::resolve::ResolveError;
use crate::route::RouteError;

pub use servers::{DatabasePatternArg, ServersArg};

/// A binary's failure: a flag or environment variable missing, or the toolkit's error.
///
/// ```
/// use rls_tenancy::cli::{CliError, exit_code};
/// let err = CliError::MissingDatabaseUrl { env_var: "DATABASE_URL" };
/// assert_eq!(exit_code(&err), std::process::ExitCode::from(2));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// No connection string was given at all.
    #[error("no database URL given: pass --database-url or set {env_var}")]
    MissingDatabaseUrl {
        /// The environment variable that would have supplied it.
        env_var: &'static str,
    },

    /// A flag's value is not usable; the message says which and why.
    #[error("{0}")]
    Usage(String),

    /// The toolkit's error.
    #[error(transparent)]
    Toolkit(#[from] Error),
}

/// Every toolkit error converts, through [`enum@Error`], so `?` works in a binary's `run`.
macro_rules! from_toolkit {
    ($($error:ty),* $(,)?) => {$(
        impl From<$error> for CliError {
            fn from(err: $error) -> Self {
                Self::Toolkit(err.into())
            }
        }
    )*};
}

from_toolkit!(
    sqlx::Error,
    std::io::Error,
    crate::TenantError,
    crate::IdentError,
    crate::DeclarationError,
    crate::ConnectError,
    ResolveError,
    crate::DomainError,
    GuardError,
    DbError,
    crate::PlacementError,
    RouteError,
    crate::QueryError,
    crate::StatementError,
);
#[cfg(feature = "migrate")]
from_toolkit!(crate::MigrateError, crate::LifecycleError);
#[cfg(feature = "seed")]
from_toolkit!(crate::SeedError);
#[cfg(feature = "testing")]
from_toolkit!(crate::HarnessError);

/// Installs a `tracing` subscriber writing to stderr, filtered by `RUST_LOG`
/// (default `warn,rls_tenancy=info`). Only binaries call this; the library never does.
///
/// ```no_run
/// rls_tenancy::cli::init_tracing();
/// ```
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,rls_tenancy=info"));
    // A second installation (tests calling a main twice) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// The exit code for an error: 2 for usage and connection errors, 1 for the rest.
///
/// ```
/// use rls_tenancy::cli::{CliError, exit_code};
/// let err = CliError::from("0".parse::<rls_tenancy::TenantId>().unwrap_err());
/// assert_eq!(exit_code(&err), std::process::ExitCode::from(2));
/// ```
pub fn exit_code(err: &CliError) -> ExitCode {
    let usage = match err {
        CliError::MissingDatabaseUrl { .. } | CliError::Usage(_) => true,
        CliError::Toolkit(err) => is_usage(err),
    };
    ExitCode::from(if usage { 2 } else { 1 })
}

/// Whether a toolkit error is the caller's input or environment (a flag, a URL, a
/// declaration, an unreachable server, a missing role) rather than a failure of the work.
fn is_usage(err: &Error) -> bool {
    match err {
        Error::Tenant(_)
        | Error::Ident(_)
        | Error::Declaration(_)
        | Error::Connect(_)
        | Error::TenantKey(_)
        | Error::Route(RouteError::ReplicaMismatch { .. } | RouteError::NoPrimary { .. }) => true,
        // The demo opens its tenant pool through the routing pool: the primary's errors
        // are judged as the tenant pool's own.
        Error::Db(err) | Error::Route(RouteError::Primary(err)) => db_is_usage(err),
        Error::Placement(err) => placement_is_usage(err),
        Error::Resolve(err) => !matches!(err, ResolveError::Registry(_)),
        Error::Domain(err) => err.is_usage(),
        Error::Guard(err) => guard_is_usage(err),
        #[cfg(feature = "migrate")]
        Error::Migrate(err) => err.is_usage(),
        #[cfg(feature = "migrate")]
        Error::Lifecycle(err) => err.is_usage(),
        #[cfg(feature = "seed")]
        Error::Seed(err) => err.is_usage(),
        #[cfg(feature = "testing")]
        Error::Harness(crate::HarnessError::NoPostgres { .. }) => true,
        _ => false,
    }
}

/// Whether the tenant pool failed on the caller's input or environment (an unreachable
/// server, a missing or wrong tenant key, a declaration the guard cannot use).
fn db_is_usage(err: &DbError) -> bool {
    match err {
        DbError::Connect(_)
        | DbError::TenantKey(_)
        | DbError::TenantContext { .. }
        | DbError::ReleaseCheck { .. } => true,
        DbError::Placement(err) => placement_is_usage(err),
        DbError::Guard(err) => guard_is_usage(err),
        _ => false,
    }
}

fn placement_is_usage(err: &crate::PlacementError) -> bool {
    !matches!(err, crate::PlacementError::Registry(_))
}

fn guard_is_usage(err: &GuardError) -> bool {
    !matches!(err, GuardError::Refused { .. } | GuardError::Database(_))
}

/// Parses the command line into `T`; a usage error (an unknown flag, a bad value such as
/// `--strategy database`) is printed as one line naming `program`, and gives exit code 2.
/// `--help` and `--version` print and exit as clap does.
///
/// ```no_run
/// use clap::Parser;
/// #[derive(Parser)]
/// struct Args {
///     #[command(flatten)]
///     strategy: rls_tenancy::cli::StrategyArg,
/// }
/// let args: Args = match rls_tenancy::cli::parse_args("rls-demo") {
///     Ok(args) => args,
///     Err(code) => std::process::exit(if code == std::process::ExitCode::from(2) { 2 } else { 1 }),
/// };
/// ```
///
/// # Errors
/// Exit code 2 once the line is printed.
pub fn parse_args<T: clap::Parser>(program: &str) -> Result<T, ExitCode> {
    match T::try_parse() {
        Ok(args) => Ok(args),
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            let message = e.to_string();
            let line: Vec<&str> = message
                .lines()
                .take_while(|l| !l.starts_with("Usage:"))
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .collect();
            eprintln!("{program}: {} (see {program} --help)", line.join(" "));
            Err(ExitCode::from(2))
        }
    }
}

/// Prints `err` as one line on stderr and returns its exit code.
///
/// ```
/// use rls_tenancy::cli::{CliError, report_error};
/// let code = report_error("rls-migrate", &CliError::MissingDatabaseUrl { env_var: "DEPLOY_DATABASE_URL" });
/// assert_eq!(code, std::process::ExitCode::from(2));
/// ```
pub fn report_error(program: &str, err: &CliError) -> ExitCode {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let cause = cause.to_string();
        if !message.contains(&cause) {
            message.push_str(": ");
            message.push_str(&cause);
        }
        source = cause_of(source);
    }
    eprintln!("{program}: error: {message}");
    exit_code(err)
}

fn cause_of<'a>(
    err: Option<&'a (dyn std::error::Error + 'static)>,
) -> Option<&'a (dyn std::error::Error + 'static)> {
    err.and_then(std::error::Error::source)
}

/// Parses a duration flag that must be above zero (`250ms`, `1s`, `1m`): clap's value
/// parser for a timeout where zero would fail every attempt at once.
///
/// # Errors
/// What to write instead, when `given` is not a duration or is zero.
///
/// ```
/// use std::time::Duration;
/// use rls_tenancy::cli::positive_duration;
/// assert_eq!(positive_duration("250ms")?, Duration::from_millis(250));
/// assert!(positive_duration("0s").is_err());
/// assert!(positive_duration("fast").is_err());
/// # Ok::<(), String>(())
/// ```
pub fn positive_duration(given: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(given) {
        Ok(duration) if !duration.is_zero() => Ok(duration),
        _ => Err("expected a duration above zero, such as 250ms or 1s".to_owned()),
    }
}

/// Reads a database URL given by flag or environment, or says which to set.
///
/// # Errors
/// [`CliError::MissingDatabaseUrl`] when absent, [`crate::ConnectError::InvalidUrl`] when
/// malformed.
///
/// ```
/// use rls_tenancy::cli::database_url;
/// assert!(database_url(None, "DATABASE_URL").is_err());
/// assert!(database_url(Some("postgres://a@localhost/app"), "DATABASE_URL").is_ok());
/// ```
pub fn database_url(
    given: Option<&str>,
    env_var: &'static str,
) -> Result<crate::DatabaseUrl, CliError> {
    Ok(given
        .filter(|s| !s.trim().is_empty())
        .ok_or(CliError::MissingDatabaseUrl { env_var })?
        .parse()?)
}

/// The declaration flag every binary shares: `--declaration FILE` (env `RLS_DECLARATION`,
/// default `./policies/tenancy.toml`, as sqlx-cli users expect files relative to the
/// project), with `--strategy` ([`StrategyArg`]) overriding the file's strategy.
///
/// ```
/// use clap::Parser;
/// use rls_tenancy::cli::DeclarationArg;
/// #[derive(Parser)]
/// struct Args {
///     #[command(flatten)]
///     declaration: DeclarationArg,
/// }
/// let args = Args::parse_from(["prog", "--declaration", "crm/tenancy.toml"]);
/// assert_eq!(args.declaration.path.to_str(), Some("crm/tenancy.toml"));
/// ```
#[derive(Debug, Clone, clap::Args)]
pub struct DeclarationArg {
    /// The declaration of the schema's tenancy (tenant tables, global tables, registry, key
    /// type).
    #[arg(
        long = "declaration",
        env = "RLS_DECLARATION",
        value_name = "FILE",
        default_value = "policies/tenancy.toml"
    )]
    pub path: std::path::PathBuf,

    /// `--strategy`, overriding the file's.
    #[command(flatten)]
    pub strategy: StrategyArg,
}

impl DeclarationArg {
    /// Reads and parses the declaration, under `--strategy` when given.
    ///
    /// # Errors
    /// [`crate::DeclarationError`] when the file cannot be read or is malformed.
    ///
    /// ```no_run
    /// # use rls_tenancy::cli::{DeclarationArg, StrategyArg};
    /// let arg = DeclarationArg {
    ///     path: "policies/tenancy.toml".into(),
    ///     strategy: StrategyArg { strategy: Some(rls_tenancy::Strategy::Schema) },
    /// };
    /// let decl = arg.load()?;
    /// # Ok::<(), rls_tenancy::DeclarationError>(())
    /// ```
    pub fn load(&self) -> Result<crate::TenancyDeclaration, crate::DeclarationError> {
        let declaration = crate::TenancyDeclaration::from_file(&self.path)?;
        Ok(match self.strategy.strategy {
            Some(strategy) => declaration.with_strategy(strategy),
            None => declaration,
        })
    }
}

/// The strategy flag every binary shares: `--strategy rls|schema|database` (env `RLS_STRATEGY`),
/// overriding the declaration's `strategy` (default `rls`).
///
/// ```
/// use clap::Parser;
/// use rls_tenancy::Strategy;
/// use rls_tenancy::cli::StrategyArg;
/// #[derive(Parser)]
/// struct Args {
///     #[command(flatten)]
///     strategy: StrategyArg,
/// }
/// let args = Args::parse_from(["prog", "--strategy", "schema"]);
/// assert_eq!(args.strategy.strategy, Some(Strategy::Schema));
/// assert_eq!(Args::parse_from(["prog", "--strategy", "database"]).strategy.strategy, Some(Strategy::Database));
/// assert!(Args::try_parse_from(["prog", "--strategy", "databases"]).is_err());
/// ```
#[derive(Debug, Clone, clap::Args)]
pub struct StrategyArg {
    /// Where tenants' rows live: rls (one schema, row-level security), schema (a schema per
    /// tenant) or database (a database per tenant, over the --server list) [default: the
    /// declaration's, else rls].
    #[arg(
        long = "strategy",
        env = "RLS_STRATEGY",
        value_name = "rls|schema|database"
    )]
    pub strategy: Option<crate::Strategy>,
}

/// The schema strategy's tenant migrations directory, shared by the binaries that apply them:
/// `--tenant-migrations DIR` (env `RLS_TENANT_MIGRATIONS`, default `migrations/tenant`).
///
/// ```
/// use clap::Parser;
/// use rls_tenancy::cli::TenantMigrationsArg;
/// #[derive(Parser)]
/// struct Args {
///     #[command(flatten)]
///     tenant_migrations: TenantMigrationsArg,
/// }
/// let args = Args::parse_from(["prog"]);
/// assert_eq!(args.tenant_migrations.path.to_str(), Some("migrations/tenant"));
/// ```
#[derive(Debug, Clone, clap::Args)]
pub struct TenantMigrationsArg {
    /// The schema mode's tenant migrations, applied to each tenant schema.
    #[arg(
        id = "tenant_migrations",
        long = "tenant-migrations",
        env = "RLS_TENANT_MIGRATIONS",
        value_name = "DIR",
        default_value = "migrations/tenant"
    )]
    pub path: std::path::PathBuf,
}

/// The deploy role's flags `rls-migrate` and `rls-tenant` share: `--database-url` (env
/// `DEPLOY_DATABASE_URL`), `--runtime-role`, `--tenant-variable` and `--tenant-context`, which
/// must be the same for both (a new tenant schema gets the policies and grants `rls-migrate`
/// installs).
///
/// ```
/// use clap::Parser;
/// use rls_tenancy::cli::DeployArgs;
/// #[derive(Parser)]
/// struct Args {
///     #[command(flatten)]
///     deploy: DeployArgs,
/// }
/// let args = Args::parse_from(["prog", "--database-url", "postgres://d@localhost/app", "--tenant-context", "plain"]);
/// let options = args.deploy.options()?;
/// assert_eq!(options.mode(), rls_tenancy::TenantContextMode::Plain);
/// assert_eq!(options.runtime_role().as_str(), "app_runtime");
/// # Ok::<(), rls_tenancy::cli::CliError>(())
/// ```
#[cfg(feature = "migrate")]
#[derive(Debug, Clone, clap::Args)]
pub struct DeployArgs {
    /// The deploy role's connection URL (owns the schema).
    #[arg(long, env = "DEPLOY_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// The role the application connects as; it is granted DML only.
    #[arg(long, env = "RLS_RUNTIME_ROLE", default_value = crate::MigrateOptions::DEFAULT_RUNTIME_ROLE)]
    pub runtime_role: String,

    /// The setting the policies read the tenant id from.
    #[arg(long, env = "RLS_TENANT_VARIABLE", default_value = crate::TenantVariable::DEFAULT)]
    pub tenant_variable: String,

    /// How the policies learn the tenant: `signed` (the application signs it with the tenant
    /// key; SQL inside a transaction cannot switch tenants) or `plain` (the policies trust the
    /// tenant setting; no key).
    #[arg(long, env = "RLS_TENANT_CONTEXT", default_value = "signed", value_parser = clap::value_parser!(crate::TenantContextMode))]
    pub tenant_context: crate::TenantContextMode,
}

#[cfg(feature = "migrate")]
impl DeployArgs {
    /// The deploy URL.
    ///
    /// # Errors
    /// As [`database_url`].
    pub fn url(&self) -> Result<crate::DatabaseUrl, CliError> {
        database_url(self.database_url.as_deref(), "DEPLOY_DATABASE_URL")
    }

    /// The migration options the flags give (no tenant key: the caller adds its own).
    ///
    /// # Errors
    /// As [`database_url`]; [`crate::IdentError`] for a malformed role or variable name.
    pub fn options(&self) -> Result<crate::MigrateOptions, CliError> {
        Ok(crate::MigrateOptions::new(self.url()?, &self.runtime_role)?
            .tenant_variable(crate::TenantVariable::parse(&self.tenant_variable)?)
            .tenant_context(self.tenant_context))
    }
}
