//! What every binary shares: logging set-up and the mapping of errors to exit codes.
//!
//! Exit codes: 0 ok, 1 the work failed or found problems, 2 usage or connection error.

use std::io::IsTerminal;
use std::process::ExitCode;

use crate::error::Error;

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
/// use rls_tenancy::{Error, cli::exit_code};
/// let err = Error::MissingDatabaseUrl { env_var: "DATABASE_URL" };
/// assert_eq!(exit_code(&err), std::process::ExitCode::from(2));
/// ```
pub fn exit_code(err: &Error) -> ExitCode {
    if err.is_usage() {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    }
}

/// Prints `err` as one line on stderr and returns its exit code.
///
/// ```
/// use rls_tenancy::{Error, cli::report_error};
/// let code = report_error("rls-migrate", &Error::MissingDatabaseUrl { env_var: "DEPLOY_DATABASE_URL" });
/// assert_eq!(code, std::process::ExitCode::from(2));
/// ```
pub fn report_error(program: &str, err: &Error) -> ExitCode {
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

/// Reads a database URL given by flag or environment, or says which to set.
///
/// # Errors
/// [`Error::MissingDatabaseUrl`] when absent, [`Error::InvalidDatabaseUrl`] when malformed.
///
/// ```
/// use rls_tenancy::cli::database_url;
/// assert!(database_url(None, "DATABASE_URL").is_err());
/// assert!(database_url(Some("postgres://a@localhost/app"), "DATABASE_URL").is_ok());
/// ```
pub fn database_url(
    given: Option<&str>,
    env_var: &'static str,
) -> Result<crate::DatabaseUrl, Error> {
    given
        .filter(|s| !s.trim().is_empty())
        .ok_or(Error::MissingDatabaseUrl { env_var })?
        .parse()
}
