//! `rls-migrate`: apply the application's migrations, install the RLS policies and grant the
//! runtime role.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rls_tenancy::cli::{self, CliError, DeclarationArg};
use rls_tenancy::{MigrateOptions, MigrateReport, TenantVariable, migrate_with, migrator_from_dir};

/// Apply your sqlx migrations, install the tenant isolation policies on every tenant table
/// your declaration names, and grant the runtime role exactly what the declaration says.
/// Run as the deploy role. Idempotent.
///
/// Exit codes: 0 ok, 1 a migration or grant failed (nothing half-applied), 2 usage,
/// declaration or connection error.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The deploy role's connection URL (owns the schema).
    #[arg(long, env = "DEPLOY_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,

    /// The role the application connects as; it is granted DML only.
    #[arg(long, env = "RLS_RUNTIME_ROLE", default_value = MigrateOptions::DEFAULT_RUNTIME_ROLE)]
    runtime_role: String,

    /// The setting the policies read the tenant id from.
    #[arg(long, env = "RLS_TENANT_VARIABLE", default_value = TenantVariable::DEFAULT)]
    tenant_variable: String,

    /// The directory of sqlx migrations to apply (the `sqlx migrate` format).
    #[arg(
        long,
        env = "RLS_MIGRATIONS",
        value_name = "DIR",
        default_value = "migrations"
    )]
    migrations: PathBuf,

    #[command(flatten)]
    declaration: DeclarationArg,
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::init_tracing();
    let args = Args::parse();
    match run(&args).await {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => cli::report_error("rls-migrate", &e),
    }
}

async fn run(args: &Args) -> Result<MigrateReport, CliError> {
    let url = cli::database_url(args.database_url.as_deref(), "DEPLOY_DATABASE_URL")?;
    let declaration = args.declaration.load()?;
    let migrator = migrator_from_dir(&args.migrations).await?;
    let options = MigrateOptions::new(url, &args.runtime_role)?
        .tenant_variable(TenantVariable::parse(&args.tenant_variable)?);
    Ok(migrate_with(&migrator, &declaration, &options).await?)
}
