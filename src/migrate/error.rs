//! [`MigrateError`]: why `rls-migrate` changed nothing.

use crate::connect::ConnectError;
use crate::placement::PlacementError;
use crate::policy::{DeclarationError, IdentError, TenantKeyError};

/// Why a migration run failed. Every failure leaves the database as it was: migrations,
/// policies and grants are applied in one transaction.
///
/// ```
/// use rls_tenancy::{MigrateError, MigrateOptions};
/// let url = "postgres://app_deploy@localhost/app".parse()?;
/// let err = MigrateOptions::new(url, "bad role").map(|_| ()).map_err(MigrateError::from).unwrap_err();
/// assert!(err.is_usage());
/// # Ok::<(), rls_tenancy::Error>(())
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// The server could not be reached, or the URL is wrong.
    #[error(transparent)]
    Connect(#[from] ConnectError),

    /// The declaration is malformed or does not match the database.
    #[error(transparent)]
    Declaration(#[from] DeclarationError),

    /// A role or setting name is not a plain identifier.
    #[error(transparent)]
    Ident(#[from] IdentError),

    /// A tenant schema name the registry holds or a command names cannot be used.
    #[error(transparent)]
    Placement(#[from] PlacementError),

    /// `--schemas` names no selector this tool knows.
    #[error(
        "unknown schema selector {selector:?}: use all, :shared:, :static:, :dynamic:, a schema name, a slug or domain prefix, or a comma-separated list of them"
    )]
    UnknownSelector {
        /// What was given, truncated for display.
        selector: String,
    },

    /// `--schemas` names a schema, slug or domain prefix nothing matches.
    #[error(
        "no schema, tenant slug or domain matches {selector:?}: check the name (rls-tenant list shows them)"
    )]
    NoSchemaMatches {
        /// The name given.
        selector: String,
    },

    /// A tenant `--tenants` names has no database in the registry.
    #[error(
        "no tenant {slug} with a database in the registry: `rls-tenant list` shows the tenants"
    )]
    NoTenantMatches {
        /// The slug given.
        slug: String,
    },

    /// The tenant key file cannot be used.
    #[error(transparent)]
    TenantKey(#[from] TenantKeyError),

    /// The signed tenant context would have no key, or the key to keep was not named.
    #[error("{reason}")]
    NoTenantKey {
        /// What is missing and what to pass.
        reason: &'static str,
    },

    /// The runtime role named in the options does not exist.
    #[error("role {role:?} does not exist: create it first (see the README's one-time setup SQL)")]
    MissingRole {
        /// The role's name.
        role: String,
    },

    /// The migrations directory could not be read.
    #[error(
        "cannot read the migrations in {dir}: {source}; pass --migrations with your sqlx migrations directory"
    )]
    Source {
        /// The directory.
        dir: String,
        /// The migrator's error.
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    /// A migration failed; it was rolled back and nothing of it was applied.
    #[error("migration failed and was rolled back: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),

    /// A statement of the policies or grants failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

impl MigrateError {
    /// Whether the failure is the caller's input or environment (a bad flag, URL,
    /// declaration, a missing role or an unreachable server: exit code 2) rather than the
    /// migration itself (exit code 1).
    ///
    /// ```
    /// let err = rls_tenancy::MigrateError::MissingRole { role: "app_runtime".into() };
    /// assert!(err.is_usage());
    /// ```
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Self::Connect(_)
                | Self::Declaration(_)
                | Self::Ident(_)
                | Self::Placement(_)
                | Self::UnknownSelector { .. }
                | Self::NoSchemaMatches { .. }
                | Self::NoTenantMatches { .. }
                | Self::MissingRole { .. }
                | Self::Source { .. }
                | Self::TenantKey(_)
                | Self::NoTenantKey { .. }
        )
    }
}
