//! `rls-migrate`: apply the application's migrations, install the RLS policies and grant the
//! runtime role; in the schema mode, the tenant migrations across every tenant schema too; in
//! the database mode, across every tenant database.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rls_tenancy::cli::{self, CliError, DeclarationArg, DeployArgs};
use rls_tenancy::{
    SchemaSelector, Strategy, TenantKey, migrate_databases, migrate_selected, migrate_with,
    migrator_from_dir, select_databases, select_schemas,
};

/// Apply your sqlx migrations, install the tenant isolation policies on every tenant table
/// your declaration names, and grant the runtime role exactly what the declaration says.
/// Run as the deploy role. Idempotent.
///
/// With --strategy schema, then apply the tenant migrations to every tenant schema the
/// registry names and every static tenant's (or those --schemas selects), each in its own
/// transaction, in parallel: one schema's failure stops no other, and a rerun applies only
/// what each schema lacks. A progress bar shows on a terminal.
///
/// With --strategy database, --database-url is the control database (the registry), migrated
/// as above; then the tenant migrations go to every tenant database the registry places (or
/// those --tenants selects) on the --server list, each in its own transaction, at most --jobs
/// at once per server, continuing past failures; a rerun applies only what each lacks.
///
/// Exit codes: 0 ok, 1 a migration or grant failed (nothing half-applied; in the schema and
/// database modes, any tenant schema or database failed), 2 usage, declaration or connection
/// error.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    deploy: DeployArgs,

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
    tenant_migrations: cli::TenantMigrationsArg,

    /// Which schemas to migrate, in the schema mode: all (the shared schema, then every
    /// tenant's), :shared:, :static:, :dynamic:, an exact schema name, or a domain prefix
    /// (every tenant one of whose domains, or whose slug, starts with it).
    #[arg(long, value_name = "SELECTOR", default_value = "all")]
    schemas: String,

    /// How many tenant schemas migrate at once (connections), in the schema mode; how many
    /// tenant databases at once per server, in the database mode.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    jobs: u32,

    /// Which tenants' databases to migrate, in the database mode: all, or a
    /// comma-separated list of tenant slugs.
    #[arg(long, value_name = "SELECTOR", default_value = "all")]
    tenants: String,

    #[command(flatten)]
    servers: cli::ServersArg,

    #[command(flatten)]
    declaration: DeclarationArg,
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::init_tracing();
    let args = Args::parse();
    match run(&args).await {
        Ok(failed) if failed => ExitCode::from(1),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => cli::report_error("rls-migrate", &e),
    }
}

/// Migrates, prints the reports; `true` when a tenant schema failed.
async fn run(args: &Args) -> Result<bool, CliError> {
    let url = args.deploy.url()?;
    let declaration = args.declaration.load()?;
    let servers = args.servers.load(declaration.strategy())?;
    let migrator = migrator_from_dir(&args.migrations).await?;
    let mut options = args.deploy.options()?;
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
    if declaration.strategy() == Strategy::Database {
        // The one selector type; the database mode takes `all` or tenant slugs.
        let slugs = match args.tenants.parse::<SchemaSelector>()? {
            SchemaSelector::All => None,
            SchemaSelector::Name(slug) => Some(vec![slug]),
            SchemaSelector::Any(parts)
                if parts.iter().all(|p| matches!(p, SchemaSelector::Name(_))) =>
            {
                Some(parts.iter().map(ToString::to_string).collect::<Vec<_>>())
            }
            other => {
                return Err(CliError::Usage(format!(
                    "--tenants {other}: the database mode selects all or tenant slugs"
                )));
            }
        };
        println!("{}", migrate_with(&migrator, &declaration, &options).await?);
        let tenant_migrator = migrator_from_dir(&args.tenant_migrations.path).await?;
        let mut conn = rls_tenancy::connect(&url).await?;
        let selection = select_databases(&mut conn, &declaration, slugs.as_deref()).await?;
        drop(conn);
        let bar = progress(selection.len(), "databases");
        let report = migrate_databases(
            &tenant_migrator,
            &declaration,
            &options,
            &servers,
            &selection,
            args.jobs,
            &|_| bar.inc(1),
        )
        .await;
        bar.finish_and_clear();
        println!("{report}");
        return Ok(report.has_failures());
    }
    if args.tenants != "all" {
        return Err(CliError::Usage(
            "--tenants selects tenant databases: it needs --strategy database (the schema mode selects with --schemas)".into(),
        ));
    }
    let selector: SchemaSelector = args.schemas.parse()?;
    if declaration.strategy() != Strategy::Schema {
        if selector != SchemaSelector::All {
            return Err(CliError::Usage(format!(
                "--schemas {selector} needs --strategy schema: the RLS mode has one schema"
            )));
        }
        println!("{}", migrate_with(&migrator, &declaration, &options).await?);
        return Ok(false);
    }
    let tenant_migrator = migrator_from_dir(&args.tenant_migrations.path).await?;
    // Everything a selector names is known before anything changes; `all` is read after the
    // shared schema migrated, which may have created the registry.
    let mut conn = rls_tenancy::connect(&url).await?;
    let selection = if selector == SchemaSelector::All {
        println!("{}", migrate_with(&migrator, &declaration, &options).await?);
        select_schemas(&mut conn, &declaration, &selector).await?
    } else {
        let selection = select_schemas(&mut conn, &declaration, &selector).await?;
        if selection.shared {
            println!("{}", migrate_with(&migrator, &declaration, &options).await?);
        }
        selection
    };
    drop(conn);
    let bar = progress(selection.tenants.len(), "schemas");
    let report = migrate_selected(
        &tenant_migrator,
        &declaration,
        &options,
        &selection,
        args.jobs,
        &|_| bar.inc(1),
    )
    .await?;
    bar.finish_and_clear();
    println!("{report}");
    Ok(report.has_failures())
}

/// Schemas (or databases: `what`) done and the time left, on a terminal only (hidden in logs
/// and pipes).
fn progress(items: usize, what: &str) -> ProgressBar {
    let target = if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr_with_hz(4)
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(items as u64), target);
    // The template is a constant; should it ever fail to parse, the default style remains.
    let template = format!("{{elapsed:>4}} [{{bar:30}}] {{pos}}/{{len}} {what} · ETA {{eta}}");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
