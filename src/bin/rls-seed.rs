//! `rls-seed`: fake tenant data, fast and deterministic, written through row-level security.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rls_tenancy::cli::{self, StrategyArg};
use rls_tenancy::{
    MigrateOptions, SeedLevel, SeedOptions, Strategy, TenantKey, migrator_from_dir, seed,
};

/// Create fake accounts (tenant-0, tenant-1, …) with users, projects, tasks and subtasks,
/// each account in its own tenant transaction so the RLS policies vet every row. Run as the
/// deploy role. The same --seed gives the same data.
///
/// With --strategy schema each account gets a schema of its own (tenant_0, tenant_1, …),
/// created and migrated with --tenant-migrations in the account's transaction.
///
/// With --strategy database each account gets a database of its own (--database-pattern,
/// default <base>_tenant_<slug>) on one of the servers (--server NAME=URL as the deploy role,
/// RLS_SERVERS or --config), cloned from the server's template database as `rls-tenant
/// create` does; --database-url is then the control database holding the registry.
/// Placement is deterministic: tenant-i goes to the (i mod S)-th server in the order given
/// (S servers), a server at its max_tenants passing its turn to the next one with room. At
/// most --jobs accounts load at once per server.
///
/// Exit codes: 0 ok, 1 loading failed (committed accounts are whole), 2 usage, connection,
/// or accounts already present.
#[derive(Debug, Parser)]
#[command(version, allow_negative_numbers = true)]
struct Args {
    /// The deploy role's connection URL.
    #[arg(long, env = "DEPLOY_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,

    /// How many accounts to create.
    #[arg(long, value_name = "N")]
    accounts: i64,

    /// The random seed; the same seed gives the same data.
    #[arg(long, value_name = "S", default_value_t = SeedOptions::DEFAULT_SEED)]
    seed: u64,

    /// The profile in seed/ that shapes each account: reference (the reference distribution)
    /// or small (a few rows per account, for demos).
    #[arg(long, value_name = "NAME", default_value = SeedOptions::DEFAULT_PROFILE)]
    profile: String,

    /// Fewest users per account (overrides the profile).
    #[arg(long, value_name = "N")]
    min_users: Option<i64>,
    /// Most users per account.
    #[arg(long, value_name = "N")]
    max_users: Option<i64>,
    /// Fewest projects per account.
    #[arg(long, value_name = "N")]
    min_projects: Option<i64>,
    /// Most projects per account.
    #[arg(long, value_name = "N")]
    max_projects: Option<i64>,
    /// Fewest tasks per project (one count drawn per account).
    #[arg(long, value_name = "N")]
    min_tasks: Option<i64>,
    /// Most tasks per project.
    #[arg(long, value_name = "N")]
    max_tasks: Option<i64>,
    /// Fewest subtasks per task (one count drawn per account).
    #[arg(long, value_name = "N")]
    min_subtasks: Option<i64>,
    /// Most subtasks per task.
    #[arg(long, value_name = "N")]
    max_subtasks: Option<i64>,

    /// Connections loading in parallel (default: the number of CPUs).
    #[arg(long, value_name = "N")]
    jobs: Option<i64>,

    /// When some of the accounts exist already, add only the missing ones.
    #[arg(long)]
    resume: bool,

    /// Generate and write everything, then roll it back.
    #[arg(long)]
    rollback: bool,

    #[command(flatten)]
    strategy: StrategyArg,

    #[command(flatten)]
    tenant_migrations: cli::TenantMigrationsArg,

    #[command(flatten)]
    servers: cli::ServersArg,

    /// The tenant key file rls-migrate installed (signed context): with --strategy database,
    /// a server's template database is made with it when it does not exist yet. The template
    /// gets the control database's tenant context (signed or plain), as rls-migrate left it.
    #[arg(long, env = "RLS_TENANT_KEY_FILE", value_name = "PATH")]
    tenant_key_file: Option<PathBuf>,

    #[command(flatten)]
    database_pattern: cli::DatabasePatternArg,

    /// The role the application connects as: granted DML on each new account's schema
    /// (schema strategy), or CONNECT on each new account's database (database strategy).
    #[arg(long, env = "RLS_RUNTIME_ROLE", default_value = MigrateOptions::DEFAULT_RUNTIME_ROLE)]
    runtime_role: String,
}

impl Args {
    fn options(&self) -> SeedOptions {
        let mut options = SeedOptions::new(self.accounts)
            .seed(self.seed)
            .profile(&self.profile)
            .resume(self.resume)
            .rollback(self.rollback)
            .progress(true);
        let bounds = [
            (SeedLevel::Users, self.min_users, self.max_users),
            (SeedLevel::Projects, self.min_projects, self.max_projects),
            (SeedLevel::Tasks, self.min_tasks, self.max_tasks),
            (SeedLevel::Subtasks, self.min_subtasks, self.max_subtasks),
        ];
        for (level, min, max) in bounds {
            if let Some(min) = min {
                options = options.min(level, min);
            }
            if let Some(max) = max {
                options = options.max(level, max);
            }
        }
        if let Some(jobs) = self.jobs {
            options = options.jobs(jobs);
        }
        options
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    cli::init_tracing();
    let args: Args = match cli::parse_args("rls-seed") {
        Ok(args) => args,
        Err(code) => return code,
    };
    let run = async {
        let strategy = args.strategy.strategy.unwrap_or_default();
        let servers = args.servers.load(strategy)?;
        let mut options = args.options();
        match strategy {
            Strategy::Schema => {
                let migrator = migrator_from_dir(&args.tenant_migrations.path).await?;
                options = options.in_tenant_schemas(&migrator, &args.runtime_role);
            }
            Strategy::Database => {
                if let Some(path) = &args.tenant_key_file {
                    options = options.tenant_key(
                        TenantKey::from_file(path).map_err(rls_tenancy::MigrateError::from)?,
                    );
                }
                let migrator = migrator_from_dir(&args.tenant_migrations.path).await?;
                options = options.in_tenant_databases(
                    servers,
                    args.database_pattern.pattern.clone(),
                    &migrator,
                    &args.runtime_role,
                );
            }
            _ => {}
        }
        options.validate()?;
        let url = cli::database_url(args.database_url.as_deref(), "DEPLOY_DATABASE_URL")?;
        Ok::<_, cli::CliError>(seed(&url, &options).await?)
    };
    match run.await {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => cli::report_error("rls-seed", &e),
    }
}
