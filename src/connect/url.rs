//! Connection strings that never print their password.

use std::fmt;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

use super::ConnectError;
use super::hosts::HostList;

/// A validated `postgres://` URL. `Display` and `Debug` hide the password, so it is safe in
/// logs and error messages.
///
/// `?pgbouncer=true` says a pooler in transaction mode (pgbouncer, or one like it) sits in
/// front of the server: connections then send only the startup parameters pgbouncer
/// accepts (no `extra_float_digits`), keep no prepared statements between transactions, and
/// the tenant pool runs every statement either inside a transaction or in the simple
/// protocol (see the README's pgbouncer section). The parameter is ours: it is never passed
/// on to the driver.
///
/// ```
/// use rls_tenancy::DatabaseUrl;
/// let url: DatabaseUrl = "postgres://app:s3cret@127.0.0.1:5432/app".parse()?;
/// assert_eq!(url.to_string(), "postgres://app:***@127.0.0.1:5432/app");
/// assert!("mysql://x@y/z".parse::<DatabaseUrl>().is_err());
/// // One server: a host list is a [`rls_tenancy::DatabaseHosts`].
/// assert!("postgres://app@h1,h2/app".parse::<DatabaseUrl>().is_err());
/// # Ok::<(), rls_tenancy::ConnectError>(())
/// ```
#[derive(Clone)]
pub struct DatabaseUrl {
    url: url::Url,
    pooler: bool,
}

/// The URL parameter saying a transaction-mode pooler sits in front of the server.
const POOLER_PARAM: &str = "pgbouncer";

impl DatabaseUrl {
    /// The connect options for sqlx.
    ///
    /// # Errors
    /// [`ConnectError::InvalidUrl`] if sqlx rejects an option in the URL.
    ///
    /// ```
    /// # use rls_tenancy::DatabaseUrl;
    /// let url: DatabaseUrl = "postgres://app@localhost/app".parse()?;
    /// assert_eq!(url.connect_options()?.get_database(), Some("app"));
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    ///
    /// With `?pgbouncer=true` the options send no `extra_float_digits` (pgbouncer refuses
    /// unknown startup parameters) and cache no prepared statements:
    ///
    /// ```
    /// # use rls_tenancy::DatabaseUrl;
    /// let url: DatabaseUrl = "postgres://app@localhost:6432/app?pgbouncer=true".parse()?;
    /// assert!(url.pgbouncer());
    /// assert_eq!(url.connect_options()?.get_database(), Some("app"));
    /// assert!("postgres://app@localhost/app?pgbouncer=yes".parse::<DatabaseUrl>().is_err());
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn connect_options(&self) -> Result<PgConnectOptions, ConnectError> {
        let mut driver_url = self.url.clone();
        let driver_pairs: Vec<(String, String)> = self
            .url
            .query_pairs()
            .filter(|(key, _)| key != POOLER_PARAM)
            .map(|(key, value)| (key.into_owned(), value.into_owned()))
            .collect();
        if driver_pairs.is_empty() {
            driver_url.set_query(None);
        } else {
            driver_url
                .query_pairs_mut()
                .clear()
                .extend_pairs(driver_pairs);
        }
        let options = PgConnectOptions::from_str(driver_url.as_str()).map_err(|e| {
            ConnectError::InvalidUrl {
                reason: RedactedUrl::scrub(&e.to_string(), &self.url),
            }
        })?;
        if !self.pooler {
            return Ok(options);
        }
        if options.get_options().is_some() {
            return Err(ConnectError::InvalidUrl {
                reason: "pgbouncer refuses the `options` startup parameter: drop it from the URL and set those settings on the role (ALTER ROLE ... SET) instead".into(),
            });
        }
        Ok(options.extra_float_digits(None).statement_cache_capacity(0))
    }

    /// Whether the URL says a transaction-mode pooler sits in front of the server
    /// (`?pgbouncer=true`).
    ///
    /// ```
    /// # use rls_tenancy::DatabaseUrl;
    /// let url: DatabaseUrl = "postgres://app@localhost:6432/app?pgbouncer=true".parse()?;
    /// assert!(url.pgbouncer());
    /// assert!(!"postgres://app@localhost/app".parse::<DatabaseUrl>()?.pgbouncer());
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn pgbouncer(&self) -> bool {
        self.pooler
    }

    /// The user name in the URL, if any.
    ///
    /// ```
    /// # use rls_tenancy::DatabaseUrl;
    /// let url: DatabaseUrl = "postgres://app_runtime:pw@localhost/app".parse()?;
    /// assert_eq!(url.username(), Some("app_runtime"));
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn username(&self) -> Option<&str> {
        Some(self.url.username()).filter(|u| !u.is_empty())
    }

    /// The database name in the URL, if any.
    ///
    /// ```
    /// # use rls_tenancy::DatabaseUrl;
    /// let url: DatabaseUrl = "postgres://app@localhost/appdb".parse()?;
    /// assert_eq!(url.database(), Some("appdb"));
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn database(&self) -> Option<&str> {
        Some(self.url.path().trim_start_matches('/')).filter(|d| !d.is_empty())
    }

    /// The same server and credentials, another database.
    ///
    /// ```
    /// # use rls_tenancy::DatabaseUrl;
    /// let url: DatabaseUrl = "postgres://app@localhost/postgres".parse()?;
    /// assert_eq!(url.with_database("other").database(), Some("other"));
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn with_database(&self, database: &str) -> Self {
        let mut url = self.url.clone();
        url.set_path(database);
        Self {
            url,
            pooler: self.pooler,
        }
    }

    /// The same login and database on another port of the same host (a standby, a peer).
    ///
    /// ```
    /// # use rls_tenancy::DatabaseUrl;
    /// let url: DatabaseUrl = "postgres://app:pw@127.0.0.1:5432/app".parse()?;
    /// assert_eq!(url.with_port(5433)?.to_string(), "postgres://app:***@127.0.0.1:5433/app");
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    ///
    /// # Errors
    /// [`ConnectError::InvalidUrl`] if the URL has no host to carry a port.
    pub fn with_port(&self, port: u16) -> Result<Self, ConnectError> {
        let mut url = self.url.clone();
        url.set_port(Some(port))
            .map_err(|()| ConnectError::InvalidUrl {
                reason: "this URL has no host to carry a port".into(),
            })?;
        Ok(Self {
            url,
            pooler: self.pooler,
        })
    }

    /// The same server and database, another user and password.
    ///
    /// ```
    /// # use rls_tenancy::DatabaseUrl;
    /// let url: DatabaseUrl = "postgres://admin@localhost/app".parse()?;
    /// let runtime = url.with_credentials("app_runtime", "pw")?;
    /// assert_eq!(runtime.to_string(), "postgres://app_runtime:***@localhost/app");
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    ///
    /// # Errors
    /// [`ConnectError::InvalidUrl`] if the URL cannot carry credentials.
    pub fn with_credentials(&self, user: &str, password: &str) -> Result<Self, ConnectError> {
        let mut url = self.url.clone();
        let cannot = |_| ConnectError::InvalidUrl {
            reason: "this URL cannot carry a user name".into(),
        };
        url.set_username(user).map_err(cannot)?;
        url.set_password(Some(password)).map_err(cannot)?;
        Ok(Self {
            url,
            pooler: self.pooler,
        })
    }

    /// The full URL, password included, for handing to another program. Never log it.
    ///
    /// ```
    /// # use rls_tenancy::DatabaseUrl;
    /// let url: DatabaseUrl = "postgres://a:pw@localhost/app".parse()?;
    /// assert_eq!(url.expose_secret(), "postgres://a:pw@localhost/app");
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn expose_secret(&self) -> &str {
        self.url.as_str()
    }

    /// A printable form without the password.
    ///
    /// ```
    /// # use rls_tenancy::DatabaseUrl;
    /// let url: DatabaseUrl = "postgres://a:pw@localhost/app".parse()?;
    /// assert!(!url.redacted().to_string().contains("pw"));
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn redacted(&self) -> RedactedUrl {
        RedactedUrl::new(&self.url)
    }
}

impl FromStr for DatabaseUrl {
    type Err = ConnectError;

    fn from_str(s: &str) -> Result<Self, ConnectError> {
        if let Some(list) = HostList::find(s).filter(|list| list.count() > 1) {
            return Err(ConnectError::SeveralHosts {
                count: list.count(),
            });
        }
        let url = url::Url::parse(s).map_err(|e| ConnectError::InvalidUrl {
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(ConnectError::InvalidUrl {
                reason: format!("the scheme is {:?}, not postgres", url.scheme()),
            });
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(ConnectError::InvalidUrl {
                reason: "it names no host".into(),
            });
        }
        let pooler = pooler_flag(&url)?;
        Ok(Self { url, pooler })
    }
}

/// The value of `?pgbouncer=`: absent is false; it must be `true` or `false`, given once.
fn pooler_flag(url: &url::Url) -> Result<bool, ConnectError> {
    let mut values = url
        .query_pairs()
        .filter(|(key, _)| key == POOLER_PARAM)
        .map(|(_, value)| value.into_owned());
    let invalid = |reason: &str| ConnectError::InvalidUrl {
        reason: reason.into(),
    };
    match (values.next(), values.next()) {
        (None, _) => Ok(false),
        (Some(_), Some(_)) => Err(invalid("give the pgbouncer parameter once")),
        (Some(value), None) => match value.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(invalid("the pgbouncer parameter must be true or false")),
        },
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.redacted(), f)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&self.redacted().0)
            .finish()
    }
}

/// A URL with its passwords (user-info and a `?password=` parameter, which the driver also
/// accepts) replaced by `***`, for messages and logs.
///
/// ```
/// use rls_tenancy::DatabaseUrl;
/// let url: DatabaseUrl = "postgres://u:hunter2@db/app".parse()?;
/// assert_eq!(url.redacted().to_string(), "postgres://u:***@db/app");
/// let url: DatabaseUrl = "postgres://u@db/app?sslmode=disable&password=hunter2".parse()?;
/// assert_eq!(url.redacted().to_string(), "postgres://u@db/app?sslmode=disable&password=***");
/// assert!(!format!("{url:?}").contains("hunter2"));
/// # Ok::<(), rls_tenancy::ConnectError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactedUrl(String);

impl RedactedUrl {
    fn new(url: &url::Url) -> Self {
        let mut shown = url.clone();
        if shown.password().is_some() {
            // Setting a password only fails for URLs that cannot have one, which have none.
            let _ = shown.set_password(Some("***"));
        }
        if url.query_pairs().any(|(key, _)| key == "password") {
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(key, value)| {
                    let value = if key == "password" {
                        "***".into()
                    } else {
                        value
                    };
                    (key.into_owned(), value.into_owned())
                })
                .collect();
            shown.query_pairs_mut().clear().extend_pairs(pairs);
        }
        Self(shown.to_string())
    }

    /// Removes the URL's passwords (user-info and `?password=`) from a message that may
    /// quote them.
    fn scrub(message: &str, url: &url::Url) -> String {
        let query_passwords = url
            .query_pairs()
            .filter(|(key, _)| key == "password")
            .map(|(_, value)| value.into_owned());
        url.password()
            .map(str::to_owned)
            .into_iter()
            .chain(query_passwords)
            .filter(|pw| !pw.is_empty())
            .fold(message.to_owned(), |text, pw| text.replace(&pw, "***"))
    }
}

impl fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use sqlx::ConnectOptions;

    use super::*;

    #[test]
    fn the_pooler_parameter_is_ours_and_never_reaches_the_driver() {
        let url: DatabaseUrl =
            "postgres://app:pw@127.0.0.1:6432/app?sslmode=disable&pgbouncer=true"
                .parse()
                .unwrap();
        assert!(url.pgbouncer());
        let options = url.connect_options().unwrap();
        // The driver's URL form of the options lists every parameter it took.
        let driver = options.to_url_lossy().to_string();
        assert!(!driver.contains("pgbouncer"), "{driver}");
        assert!(driver.contains("statement-cache-capacity=0"), "{driver}");
        let debug = format!("{options:?}");
        assert!(debug.contains("extra_float_digits: None"), "{debug}");
        let direct: DatabaseUrl = "postgres://app@127.0.0.1/app".parse().unwrap();
        let driver = direct.connect_options().unwrap().to_url_lossy().to_string();
        assert!(driver.contains("statement-cache-capacity=100"), "{driver}");
        assert!(url.with_database("other").pgbouncer());
        assert!(url.with_credentials("u", "p").unwrap().pgbouncer());
    }

    #[test]
    fn a_pooler_url_refuses_startup_options_pgbouncer_would_refuse() {
        let url: DatabaseUrl =
            "postgres://app@127.0.0.1:6432/app?pgbouncer=true&options=-c%20search_path%3Dapp"
                .parse()
                .unwrap();
        let err = url.connect_options().unwrap_err().to_string();
        assert!(err.contains("ALTER ROLE"), "{err}");
        let direct: DatabaseUrl = "postgres://app@127.0.0.1/app?options=-c%20search_path%3Dapp"
            .parse()
            .unwrap();
        assert!(direct.connect_options().is_ok());
    }

    #[test]
    fn a_malformed_pooler_parameter_is_refused() {
        for bad in ["yes", "1", "TRUE", ""] {
            let err = format!("postgres://app@h/app?pgbouncer={bad}")
                .parse::<DatabaseUrl>()
                .unwrap_err();
            assert!(err.to_string().contains("true or false"), "{bad}: {err}");
        }
        let err = "postgres://app@h/app?pgbouncer=true&pgbouncer=true"
            .parse::<DatabaseUrl>()
            .unwrap_err();
        assert!(err.to_string().contains("once"), "{err}");
        assert!(
            !"postgres://app@h/app?pgbouncer=false"
                .parse::<DatabaseUrl>()
                .unwrap()
                .pgbouncer()
        );
    }
}
