//! Connection strings that never print their password.

use std::fmt;
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;

use super::ConnectError;

/// A validated `postgres://` URL. `Display` and `Debug` hide the password, so it is safe in
/// logs and error messages.
///
/// ```
/// use rls_tenancy::DatabaseUrl;
/// let url: DatabaseUrl = "postgres://app:s3cret@127.0.0.1:5432/app".parse()?;
/// assert_eq!(url.to_string(), "postgres://app:***@127.0.0.1:5432/app");
/// assert!("mysql://x@y/z".parse::<DatabaseUrl>().is_err());
/// # Ok::<(), rls_tenancy::ConnectError>(())
/// ```
#[derive(Clone)]
pub struct DatabaseUrl {
    url: url::Url,
}

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
    pub fn connect_options(&self) -> Result<PgConnectOptions, ConnectError> {
        PgConnectOptions::from_str(self.url.as_str()).map_err(|e| ConnectError::InvalidUrl {
            reason: RedactedUrl::scrub(&e.to_string(), &self.url),
        })
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
        Self { url }
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
        Ok(Self { url })
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
        Ok(Self { url })
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
