//! `rls-check`: the guard's checks from the command line, for CI.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use rls_tenancy::cli::{self, CliError, DeclarationArg};
use rls_tenancy::guard::{self, GuardOptions, ServerVersion};
use rls_tenancy::{Ident, Strategy, TenantVariable};

/// Check that the role the application runs as cannot get around row-level security: not
/// superuser, no BYPASSRLS, owns nothing, no TRUNCATE, every tenant table forced with the
/// canonical policy, and the rest of the guard's rules. Prints a report grouped by severity,
/// each finding with the SQL that fixes it. Passwords are never printed.
///
/// With --strategy database, the URL is the control database's (the registry) and every
/// tenant database the registry places is checked too, through its server in the --server
/// list (the runtime role's URLs), each reported on its own.
///
/// Exit codes: 0 nothing refused (warnings allowed), 1 at least one `refuse` finding (in any
/// database), 2 usage or connection error, or a check that could not complete.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The runtime role's own connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,

    /// The schema that holds the tenant tables [default: the declaration's, `app`].
    #[arg(long)]
    schema: Option<String>,

    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// Inspect this role instead of the one the URL logs in as.
    #[arg(long, value_name = "NAME")]
    role: Option<String>,

    /// Allow this SECURITY DEFINER function (`schema.name`, or `name` in any schema);
    /// repeat for more.
    #[arg(long, value_name = "FN")]
    allow_security_definer: Vec<String>,

    /// Warn below this server release (MAJOR.MINOR), one per major version; repeat for more
    /// [default: 13.22, 14.19, 15.14, 16.10, 17.6, 18.0, the fix of CVE-2025-8713].
    #[arg(long, value_name = "MAJOR.MINOR")]
    min_server_version: Vec<String>,

    /// The setting the policies read the tenant id from.
    #[arg(long, env = "RLS_TENANT_VARIABLE", default_value = TenantVariable::DEFAULT)]
    tenant_variable: String,

    #[command(flatten)]
    servers: cli::ServersArg,

    #[command(flatten)]
    declaration: DeclarationArg,
}

/// How the report is printed.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// Grouped by severity, for people.
    Text,
    /// One JSON document, for tools.
    Json,
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::init_tracing();
    let args = Args::parse();
    match run(&args).await {
        Ok(Verdict {
            rendered,
            refused,
            unchecked,
        }) => {
            // A closed pipe (`rls-check | head`) is not an error of the check: the exit code
            // still tells the verdict.
            let _ = writeln!(std::io::stdout().lock(), "{rendered}");
            match (refused, unchecked) {
                (true, _) => ExitCode::from(1),
                (false, true) => ExitCode::from(2),
                (false, false) => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            // Exit 1 means "the role can get around RLS"; a check that could not run is 2.
            cli::report_error("rls-check", &e);
            ExitCode::from(2)
        }
    }
}

/// The rendered report and what it found.
struct Verdict {
    rendered: String,
    refused: bool,
    /// A tenant database could not be checked.
    unchecked: bool,
}

async fn run(args: &Args) -> Result<Verdict, CliError> {
    let url = cli::database_url(args.database_url.as_deref(), "DATABASE_URL")?;
    let declaration = args.declaration.load()?;
    let servers = args.servers.load(declaration.strategy())?;
    let strategy = declaration.strategy();
    let mut options = GuardOptions::new(declaration)
        .tenant_variable(TenantVariable::parse(&args.tenant_variable)?);
    if let Some(schema) = &args.schema {
        options = options.schema(Ident::parse("schema", schema)?);
    }
    if let Some(role) = &args.role {
        options = options.role(role);
    }
    for function in &args.allow_security_definer {
        options = options.allow_security_definer(function);
    }
    if !args.min_server_version.is_empty() {
        let floors = args
            .min_server_version
            .iter()
            .map(|v| v.parse::<ServerVersion>())
            .collect::<Result<Vec<_>, _>>()?;
        options = options.min_server_versions(floors);
    }
    if strategy == Strategy::Database {
        let check = guard::check_databases(&url, &servers, &options).await?;
        return Ok(Verdict {
            rendered: match args.format {
                Format::Text => check.to_string(),
                Format::Json => format!("{:#}", check.to_json()),
            },
            refused: check.is_refused(),
            unchecked: check.has_unchecked(),
        });
    }
    let report = guard::check_url(&url, &options).await?;
    Ok(Verdict {
        rendered: match args.format {
            Format::Text => report.to_string(),
            Format::Json => format!("{:#}", report.to_json()),
        },
        refused: report.is_refused(),
        unchecked: false,
    })
}
