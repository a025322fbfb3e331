//! [`DatabaseHosts`]: libpq's multi-host connection URL, `postgres://u:p@h1:5432,h2:5433/db`.

use std::fmt;
use std::str::FromStr;

use super::{ConnectError, DatabaseUrl};

/// One or more hosts serving the same database with the same login: the hosts of libpq's
/// multi-host URL (`postgres://app:pw@h1:5432,h2:5433/app?sslmode=disable`), each with its
/// own port (5432 when left out). The `url` crate does not parse a host list, so it is split
/// here: every host becomes a [`DatabaseUrl`] with the same user, password, database and
/// parameters. A URL with one host is a list of one.
///
/// What the hosts are is up to the pool given them: for the primary of a
/// [`crate::RoutingPool`], the servers among which the one not in recovery takes the
/// writes (as libpq's `target_session_attrs=read-write`), or equivalent frontends
/// (pgbouncer, HAProxy) in front of one primary, over which connections spread.
///
/// ```
/// use rls_tenancy::DatabaseHosts;
/// let hosts: DatabaseHosts = "postgres://app:pw@10.0.0.1:5432,10.0.0.2:5433,db3/app?sslmode=disable".parse()?;
/// let shown: Vec<String> = hosts.urls().iter().map(|url| url.to_string()).collect();
/// assert_eq!(shown, [
///     "postgres://app:***@10.0.0.1:5432/app?sslmode=disable",
///     "postgres://app:***@10.0.0.2:5433/app?sslmode=disable",
///     "postgres://app:***@db3/app?sslmode=disable",
/// ]);
/// assert_eq!(hosts.to_string(), "postgres://app:***@10.0.0.1:5432,10.0.0.2:5433,db3/app?sslmode=disable");
/// assert!("postgres://app@h1,,h2/app".parse::<DatabaseHosts>().is_err());
/// # Ok::<(), rls_tenancy::ConnectError>(())
/// ```
#[derive(Clone, Debug)]
pub struct DatabaseHosts {
    urls: Vec<DatabaseUrl>,
}

impl DatabaseHosts {
    /// The hosts `urls` name, for a list made in code rather than parsed.
    ///
    /// # Errors
    /// [`ConnectError::InvalidUrl`] when `urls` is empty.
    ///
    /// ```
    /// # use rls_tenancy::DatabaseHosts;
    /// let hosts = DatabaseHosts::new(vec!["postgres://app@h1/app".parse()?, "postgres://app@h2/app".parse()?])?;
    /// assert_eq!(hosts.to_string(), "postgres://app@h1,h2/app");
    /// assert!(DatabaseHosts::new(Vec::new()).is_err());
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn new(urls: Vec<DatabaseUrl>) -> Result<Self, ConnectError> {
        if urls.is_empty() {
            return Err(ConnectError::InvalidUrl {
                reason: "it names no host".into(),
            });
        }
        Ok(Self { urls })
    }

    /// The hosts, in the order given; never empty.
    ///
    /// ```
    /// # use rls_tenancy::DatabaseHosts;
    /// let hosts: DatabaseHosts = "postgres://app@h1,h2:5433/app".parse()?;
    /// assert_eq!(hosts.urls()[1].to_string(), "postgres://app@h2:5433/app");
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn urls(&self) -> &[DatabaseUrl] {
        &self.urls
    }

    /// The first host.
    ///
    /// ```
    /// # use rls_tenancy::DatabaseHosts;
    /// let hosts: DatabaseHosts = "postgres://app@h1,h2/app".parse()?;
    /// assert_eq!(hosts.first().to_string(), "postgres://app@h1/app");
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn first(&self) -> &DatabaseUrl {
        // `parse` and `From<DatabaseUrl>` make at least one.
        &self.urls[0]
    }
}

impl From<DatabaseUrl> for DatabaseHosts {
    fn from(url: DatabaseUrl) -> Self {
        Self { urls: vec![url] }
    }
}

/// A URL cut where its host list stands: `scheme://user:pw@`, the hosts, `/db?params`.
pub(super) struct HostList<'a> {
    head: &'a str,
    hosts: &'a str,
    tail: &'a str,
}

impl<'a> HostList<'a> {
    /// Finds the host list of `s`: after `://` and the user info (up to the last `@`), up to
    /// the path, query or fragment.
    pub(super) fn find(s: &'a str) -> Option<Self> {
        let after_scheme = s.find("://")? + 3;
        let rest = &s[after_scheme..];
        let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_len];
        let hosts_at = authority.rfind('@').map_or(0, |at| at + 1);
        let split = after_scheme + hosts_at;
        let end = after_scheme + authority_len;
        Some(Self {
            head: &s[..split],
            hosts: &s[split..end],
            tail: &s[end..],
        })
    }

    /// How many hosts the list names.
    pub(super) fn count(&self) -> usize {
        self.hosts.split(',').count()
    }
}

impl FromStr for DatabaseHosts {
    type Err = ConnectError;

    fn from_str(s: &str) -> Result<Self, ConnectError> {
        let Some(list) = HostList::find(s).filter(|list| list.count() > 1) else {
            return Ok(Self::from(s.parse::<DatabaseUrl>()?));
        };
        let urls = list
            .hosts
            .split(',')
            .enumerate()
            .map(|(n, host)| {
                if host.trim().is_empty() {
                    return Err(ConnectError::InvalidUrl {
                        reason: format!(
                            "host {} of the host list is empty; write the hosts as h1:5432,h2:5433",
                            n + 1
                        ),
                    });
                }
                format!("{}{host}{}", list.head, list.tail)
                    .parse::<DatabaseUrl>()
                    .map_err(|err| match err {
                        ConnectError::InvalidUrl { reason } => ConnectError::InvalidUrl {
                            reason: format!("host {} of the host list: {reason}", n + 1),
                        },
                        other => other,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { urls })
    }
}

impl fmt::Display for DatabaseHosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self.urls.iter().map(ToString::to_string).collect();
        let Some(first) = shown.first().and_then(|url| HostList::find(url)) else {
            return f.write_str(&shown.join(","));
        };
        let hosts: Vec<&str> = shown
            .iter()
            .filter_map(|url| HostList::find(url).map(|list| list.hosts))
            .collect();
        write!(f, "{}{}{}", first.head, hosts.join(","), first.tail)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    #[test]
    fn every_host_keeps_the_login_database_and_parameters() {
        let hosts: DatabaseHosts =
            "postgresql://app:s3cret@[::1]:5432,127.0.0.1:5433/appdb?pgbouncer=true"
                .parse()
                .unwrap();
        assert_eq!(hosts.urls().len(), 2);
        for url in hosts.urls() {
            assert_eq!(url.username(), Some("app"));
            assert_eq!(url.database(), Some("appdb"));
            assert!(url.pgbouncer());
            assert!(url.expose_secret().contains("s3cret"));
        }
        assert_eq!(
            hosts.urls()[0].connect_options().unwrap().get_host(),
            "[::1]"
        );
        assert_eq!(hosts.urls()[1].connect_options().unwrap().get_port(), 5433);
        assert!(!hosts.to_string().contains("s3cret"));
        assert!(!format!("{hosts:?}").contains("s3cret"));
    }

    #[test]
    fn a_malformed_host_list_is_refused_with_the_host_it_is_about() {
        for (bad, says) in [
            ("postgres://app@h1,/app", "host 2"),
            ("postgres://app@,h2/app", "host 1"),
            ("postgres://app@h1,h2:notaport/app", "host 2"),
            ("mysql://app@h1,h2/app", "not postgres"),
        ] {
            let err = bad.parse::<DatabaseHosts>().unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        let err = "postgres://app:pw@h1,h2:x/app"
            .parse::<DatabaseHosts>()
            .unwrap_err()
            .to_string();
        assert!(!err.contains("pw@"), "{err}");
    }

    #[test]
    fn a_single_url_is_a_list_of_one_and_a_user_may_contain_at_signs() {
        let hosts: DatabaseHosts = "postgres://a%40b:p@h1:6432/app".parse().unwrap();
        assert_eq!(hosts.urls().len(), 1);
        assert_eq!(hosts.first().username(), Some("a%40b"));
        let list = HostList::find("postgres://u:p@x@h1,h2/app?q=a,b").unwrap();
        assert_eq!(list.hosts, "h1,h2");
        assert_eq!(list.tail, "/app?q=a,b");
    }
}
