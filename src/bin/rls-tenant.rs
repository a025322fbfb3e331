//! `rls-tenant`: the tenant lifecycle (create, list, suspend/resume, rename, drop, run SQL per
//! tenant, move between servers) in every strategy.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rls_tenancy::cli::{self, CliError, DeclarationArg, DeployArgs};
use rls_tenancy::{
    BaseDomain, MoveProgress, NewTenant, SchemaSelector, Strategy, TenantKey, TenantLifecycle,
    TenantSlug, list_text, migrator_from_dir,
};

/// Create, list, suspend, resume, rename and drop tenants, run SQL in each tenant's
/// context, move a tenant's database to another server. Run as the deploy role.
///
/// In the RLS mode a tenant is a registry row; in the schema mode (--strategy schema) also a
/// schema of its own, made with the tenant migrations, policies and grants in the same
/// transaction as its registry row; in the database mode (--strategy database) a database of
/// its own on one of the servers (the one with the fewest tenants, or create --server NAME),
/// cloned from that server's template database, the registry row committed once it is made.
/// --database-url is then the control database that holds the registry.
///
/// Exit codes: 0 ok, 1 failed (nothing half-done; for `run`, the SQL failed in some
/// tenant), 2 usage, connection, unknown or taken names, drop without --yes.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    deploy: DeployArgs,

    /// The tenant key file rls-migrate wrote: `run` and an RLS-mode `drop` sign their
    /// tenant transactions with it (signed context).
    #[arg(long, env = "RLS_TENANT_KEY_FILE", value_name = "PATH")]
    tenant_key_file: Option<PathBuf>,

    #[command(flatten)]
    tenant_migrations: cli::TenantMigrationsArg,

    /// The domain the servers route tenants' subdomains under (as rls-demo's): a domain
    /// `<other-slug>.<base-domain>` is refused for a tenant, subdomain routing gives it to
    /// the tenant `other-slug`.
    #[arg(long, env = "RLS_BASE_DOMAIN", default_value = "localhost")]
    base_domain: String,

    #[command(flatten)]
    servers: cli::ServersArg,

    #[command(flatten)]
    database_pattern: cli::DatabasePatternArg,

    #[command(flatten)]
    declaration: DeclarationArg,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a tenant (in the schema mode: its schema, tables, policies and grants too).
    Create {
        /// The new tenant's slug.
        slug: String,
        /// Its display name (the registry's `name` column, when it has one) [default: the slug].
        #[arg(long)]
        name: Option<String>,
        /// Its schema in the schema mode [default: the slug with `-` written `_`].
        #[arg(long, value_name = "NAME")]
        schema: Option<String>,
        /// A domain of its own (repeatable; the first is its primary).
        #[arg(long = "domain", value_name = "DOMAIN")]
        domains: Vec<String>,
        /// The server its database goes to in the database mode, by name [default: the one
        /// with the fewest tenants]. (The servers themselves, NAME=URL, come before the
        /// command: rls-tenant --server eu1=URL create acme --server eu1.)
        #[arg(long = "server", value_name = "NAME")]
        server: Option<String>,
    },
    /// List the tenants: slug, id, schema (or server/database), state, domains.
    List {
        /// text (columns) or json.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Stop serving a tenant at once (its requests get 404); its data stays.
    Suspend {
        /// The tenant's slug.
        slug: String,
    },
    /// Serve a suspended tenant again.
    Resume {
        /// The tenant's slug.
        slug: String,
    },
    /// Give a tenant a new slug (its id and schema stay).
    Rename {
        /// The tenant's slug.
        slug: String,
        /// The new slug.
        new: String,
    },
    /// Add or remove a tenant's own domain (routed at once).
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Drop a tenant: its schema (schema mode) or its rows (RLS mode), and its registry row.
    Drop {
        /// The tenant's slug.
        slug: String,
        /// Really drop; without it, say what would be dropped and exit 2.
        #[arg(long)]
        yes: bool,
    },
    /// Move a tenant's database to another server (--strategy database): the tenant stays
    /// readable throughout; its writes wait (then fail on the old copy, or succeed on the
    /// new one) only while the copy is made and counted and the registry switched; the
    /// output says how long. The old database is dropped once every table's rows were
    /// counted equal in the copy; on any failure before the switch the tenant stays where
    /// it was and the copy is dropped. A suspended tenant moves too and stays suspended.
    ///
    /// Example: rls-tenant --strategy database --server eu1=URL --server eu2=URL move acme --to eu2
    Move {
        /// The tenant's slug.
        slug: String,
        /// The server to move it to, by name.
        #[arg(long, value_name = "SERVER")]
        to: String,
    },
    /// Run SQL as the deploy role in each selected tenant's context, one transaction each.
    Run {
        /// Which tenants, as `rls-migrate --schemas` selects schemas: all, :static:,
        /// :dynamic:, a schema name, a slug or domain prefix, or a comma-separated list.
        #[arg(long, value_name = "SELECTOR")]
        tenants: String,
        /// The SQL to run.
        #[arg(
            short = 'c',
            long = "command",
            value_name = "SQL",
            conflicts_with = "file",
            required_unless_present = "file"
        )]
        command: Option<String>,
        /// A file of SQL to run.
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum DomainCommand {
    /// Give a tenant a domain (its primary when it is the first).
    Add {
        /// The tenant's slug.
        slug: String,
        /// The domain, e.g. crm.acme.example.
        domain: String,
    },
    /// Take a domain from whichever tenant has it.
    Remove {
        /// The domain.
        domain: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// The copy's progress bar, on a terminal only.
struct CopyBar(ProgressBar);

impl CopyBar {
    fn new() -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr_with_hz(4)
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        // The template is a constant; should it ever fail to parse, the default style remains.
        if let Ok(style) =
            ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} rows copied · {msg}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        Self(bar)
    }
}

impl MoveProgress for CopyBar {
    fn started(&self, rows: u64) {
        self.0.set_length(rows);
        self.0.set_message("writes blocked");
    }

    fn copied(&self, table: &str, rows: u64) {
        self.0.inc(rows);
        self.0.set_message(format!("{table} done"));
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::init_tracing();
    let args = Args::parse();
    match run(&args).await {
        Ok(failed) if failed => ExitCode::from(1),
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => cli::report_error("rls-tenant", &e),
    }
}

/// Runs the command and prints its result; `true` when `run` failed in some tenant.
async fn run(args: &Args) -> Result<bool, CliError> {
    let declaration = args.declaration.load()?;
    let strategy = declaration.strategy();
    let servers = args.servers.load(strategy)?;
    let mut options = args.deploy.options()?;
    if let Some(path) = &args.tenant_key_file {
        options = options
            .tenant_key(TenantKey::from_file(path).map_err(rls_tenancy::MigrateError::from)?);
    }
    let creates_schema = matches!(args.command, Command::Create { .. })
        && matches!(strategy, Strategy::Schema | Strategy::Database)
        || matches!(args.command, Command::Move { .. }) && strategy == Strategy::Database;
    let base: BaseDomain = args.base_domain.parse()?;
    let mut lifecycle = TenantLifecycle::connect(declaration, options)
        .await?
        .base_domain(base);
    if strategy == Strategy::Database {
        lifecycle = lifecycle.servers(servers, args.database_pattern.pattern.clone());
    }
    if creates_schema {
        lifecycle =
            lifecycle.tenant_migrations(migrator_from_dir(&args.tenant_migrations.path).await?);
    }
    let failed = command(&lifecycle, &args.command).await;
    lifecycle.close().await;
    failed
}

async fn command(lifecycle: &TenantLifecycle, command: &Command) -> Result<bool, CliError> {
    match command {
        Command::Create {
            slug,
            name,
            schema,
            domains,
            server,
        } => {
            let mut new = NewTenant::new(slug.parse()?);
            if let Some(server) = server {
                new = new.server(server.parse()?);
            }
            for domain in domains {
                new = new.domain(domain.parse()?);
            }
            if let Some(name) = name {
                new = new.name(name);
            }
            if let Some(schema) = schema {
                new = new.schema(schema);
            }
            let tenant = lifecycle.create(&new).await?;
            match (&tenant.schema, &tenant.server, &tenant.database) {
                (_, Some(server), Some(database)) => println!(
                    "created tenant {} (id {}, database {database} on server {server})",
                    tenant.slug, tenant.id
                ),
                (Some(schema), _, _) => println!(
                    "created tenant {} (id {}, schema {schema})",
                    tenant.slug, tenant.id
                ),
                _ => println!("created tenant {} (id {})", tenant.slug, tenant.id),
            }
        }
        Command::List { format } => {
            let tenants = lifecycle.list().await?;
            match format {
                Format::Text => print!("{}", list_text(&tenants)),
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&tenants)
                        .map_err(|e| CliError::Usage(format!("cannot write JSON: {e}")))?
                ),
            }
        }
        Command::Suspend { slug } => {
            let tenant = lifecycle.suspend(&slug.parse()?).await?;
            println!("suspended tenant {}: its requests get 404", tenant.slug);
        }
        Command::Resume { slug } => {
            let tenant = lifecycle.resume(&slug.parse()?).await?;
            println!("resumed tenant {}", tenant.slug);
        }
        Command::Rename { slug, new } => {
            let new: TenantSlug = new.parse()?;
            lifecycle.rename(&slug.parse()?, &new).await?;
            println!("renamed tenant {slug} to {new}");
        }
        Command::Domain(DomainCommand::Add { slug, domain }) => {
            let tenant = lifecycle
                .add_domain(&slug.parse()?, &domain.parse()?)
                .await?;
            println!(
                "tenant {} has domains {}",
                tenant.slug,
                tenant.domains.join(", ")
            );
        }
        Command::Domain(DomainCommand::Remove { domain }) => {
            let tenant = lifecycle.remove_domain(&domain.parse()?).await?;
            println!("removed {domain} from tenant {}", tenant.slug);
        }
        Command::Drop { slug, yes } => {
            let slug: TenantSlug = slug.parse()?;
            if !yes {
                let plan = lifecycle.drop_plan(&slug).await?;
                return Err(CliError::Usage(format!(
                    "refusing to drop without --yes; it would drop {plan}"
                )));
            }
            println!("dropped {}", lifecycle.drop_tenant(&slug).await?);
        }
        Command::Move { slug, to } => {
            let bar = CopyBar::new();
            let report = lifecycle
                .move_tenant(&slug.parse()?, &to.parse()?, &bar)
                .await;
            bar.0.finish_and_clear();
            println!("{}", report?);
        }
        Command::Run {
            tenants,
            command,
            file,
        } => {
            let selector: SchemaSelector = tenants.parse()?;
            let sql = match (command, file) {
                (Some(sql), _) => sql.clone(),
                (None, Some(path)) => std::fs::read_to_string(path)
                    .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?,
                (None, None) => return Err(CliError::Usage("give -c SQL or -f FILE".to_owned())),
            };
            let report = lifecycle.run(&selector, &sql).await?;
            println!("{report}");
            return Ok(report.has_failures());
        }
    }
    Ok(false)
}
