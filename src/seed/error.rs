//! [`SeedError`]: why `rls-seed` wrote nothing (or only whole accounts).

use crate::connect::ConnectError;
use crate::db::DbError;
use crate::policy::DeclarationError;
use crate::query::StatementError;
use crate::tenant::TenantError;

/// Why seeding failed. Every account is written in its own transaction, so an account is
/// whole or absent whatever fails.
///
/// ```
/// use rls_tenancy::{SeedError, SeedProfile};
/// let err = SeedProfile::builtin("nope").unwrap_err();
/// assert!(matches!(err, SeedError::UnknownProfile { .. }));
/// assert!(err.is_usage());
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SeedError {
    /// An `rls-seed` option is out of range.
    #[error("invalid {option}: {reason}")]
    InvalidOption {
        /// The flag (or profile field) at fault, for example `--accounts`.
        option: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },

    /// No seed profile of that name exists in seed/.
    #[error("unknown seed profile {name:?}: use one of {known}")]
    UnknownProfile {
        /// The name given, truncated for display.
        name: String,
        /// The profiles that exist, comma-separated.
        known: String,
    },

    /// A seed profile in seed/ is malformed.
    #[error("invalid seed profile {name:?}: {reason}; fix seed/{name}.toml")]
    InvalidProfile {
        /// The profile's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Some of the accounts to seed already exist and `--resume` was not given.
    #[error(
        "the database already holds {existing} of the {requested} accounts to seed ({first} .. {last}): pass --resume to add only the missing ones, or seed an empty database"
    )]
    Conflict {
        /// How many of the requested slugs exist.
        existing: u64,
        /// How many accounts were requested.
        requested: u64,
        /// The lowest existing seeded slug.
        first: String,
        /// The highest existing seeded slug.
        last: String,
    },

    /// `--resume` found accounts that another seed or profile made.
    #[error(
        "{slug} was seeded with other options ({reason}): resume with the --seed and profile of the first run"
    )]
    Mismatch {
        /// The account that does not match.
        slug: String,
        /// What differs.
        reason: String,
    },

    /// The role rls-seed connected as cannot seed through row-level security.
    #[error(
        "rls-seed cannot run as role {role:?}: {reason}; connect as the deploy role (DEPLOY_DATABASE_URL)"
    )]
    Role {
        /// The role connected as.
        role: String,
        /// Why it is unfit.
        reason: String,
    },

    /// The database has not been migrated (the schema or a tenant table is missing).
    #[error("the database is not migrated: {what} is missing; run rls-migrate first")]
    NotMigrated {
        /// The missing object.
        what: String,
    },

    /// `--strategy schema` on a database migrated for the RLS strategy only.
    #[error(
        "the database is not migrated for the schema strategy ({what}): run rls-migrate --strategy schema first"
    )]
    NotMigratedForSchemas {
        /// What is missing.
        what: String,
    },

    /// The server could not be reached, or the URL is wrong.
    #[error(transparent)]
    Connect(#[from] ConnectError),

    /// The reference declaration could not be read.
    #[error(transparent)]
    Declaration(#[from] DeclarationError),

    /// A generated id or slug was refused (a bug in the generator).
    #[error(transparent)]
    Tenant(#[from] TenantError),

    /// A tenant schema could not be brought up to date (`--strategy schema`).
    #[error(transparent)]
    Migrate(#[from] crate::migrate::MigrateError),

    /// A tenant schema's name was refused (`--strategy schema`).
    #[error(transparent)]
    Placement(#[from] crate::placement::PlacementError),

    /// A tenant database could not be created or dropped (`--strategy database`).
    #[error(transparent)]
    Lifecycle(#[from] crate::lifecycle::LifecycleError),

    /// The loading pool or a tenant transaction failed.
    #[error(transparent)]
    Db(#[from] DbError),

    /// A statement was refused or failed.
    #[error(transparent)]
    Statement(#[from] StatementError),

    /// The database's error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// A loader task failed.
    #[error("a loader task failed: {0}")]
    Task(String),
}

impl SeedError {
    /// Whether the failure is the caller's input or environment (exit code 2) rather than
    /// the loading itself (exit code 1).
    ///
    /// ```
    /// use rls_tenancy::SeedError;
    /// assert!(SeedError::NotMigrated { what: "schema app".into() }.is_usage());
    /// assert!(!SeedError::Task("panicked".into()).is_usage());
    /// ```
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::InvalidOption { .. }
                | Self::UnknownProfile { .. }
                | Self::InvalidProfile { .. }
                | Self::Conflict { .. }
                | Self::Mismatch { .. }
                | Self::Role { .. }
                | Self::NotMigrated { .. }
                | Self::NotMigratedForSchemas { .. }
                | Self::Connect(_)
                | Self::Declaration(_)
        ) || matches!(self, Self::Lifecycle(err) if err.is_usage())
    }
}

/// The seeder's `Result`.
pub(crate) type Result<T, E = SeedError> = std::result::Result<T, E>;
