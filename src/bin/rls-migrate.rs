//! `rls-migrate`: apply the application's migrations, install the RLS policies and grant the
//! runtime role.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rls_tenancy::cli::{self, CliError, DeclarationArg};
use rls_tenancy::{
    MigrateOptions, MigrateReport, TenantContextMode, TenantKey, TenantVariable, migrate_with,
    migrator_from_dir,
};

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

    /// How the policies learn the tenant: `signed` (the application signs it with the tenant
    /// key; SQL inside a transaction cannot switch tenants) or `plain` (the policies trust the
    /// tenant setting; no key).
    #[arg(long, env = "RLS_TENANT_CONTEXT", default_value = "signed", value_parser = clap::value_parser!(TenantContextMode))]
    tenant_context: TenantContextMode,

    /// The tenant key file: created there (mode 0600) with a fresh key when absent, and
    /// its key installed in the database; the application reads the same file. Keys
    /// installed before stay accepted (a rotation) until --retire-old-keys.
    #[arg(long, env = "RLS_TENANT_KEY_FILE", value_name = "PATH")]
    tenant_key_file: Option<PathBuf>,

    /// Removes every installed tenant key but the one in --tenant-key-file: the end of a
    /// key rotation, once every application reads the new file.
    #[arg(long, requires = "tenant_key_file")]
    retire_old_keys: bool,

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
    let mut options = MigrateOptions::new(url, &args.runtime_role)?
        .tenant_variable(TenantVariable::parse(&args.tenant_variable)?)
        .tenant_context(args.tenant_context);
    if let Some(path) = &args.tenant_key_file {
        let (key, created) =
            TenantKey::load_or_create(path).map_err(rls_tenancy::MigrateError::from)?;
        if created {
            tracing::info!(path = %path.display(), key_id = %key.id(), "created a tenant key file");
        }
        options = options.tenant_key(key);
    }
    if args.retire_old_keys {
        options = options.retire_old_keys();
    }
    Ok(migrate_with(&migrator, &declaration, &options).await?)
}
