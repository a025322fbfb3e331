//! [`ServerName`], [`Server`] and [`ServerSet`]: the named PostgreSQL servers the database
//! strategy spreads tenant databases over.
//!
//! Servers come from `--server NAME=URL` (repeatable), the environment variable
//! `RLS_SERVERS` (`NAME=URL` entries separated by commas), or `[[server]]` entries in a
//! configuration file (`name`, `url`, optional `max_connections` and `max_tenants`). A URL's
//! role is the role the binary runs as; its database part is ignored (each tenant database
//! is named by the registry). Passwords are never printed: every `Display` and `Debug` here
//! goes through [`DatabaseUrl`]'s redaction, and no error quotes a URL.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use serde::Deserialize;

use super::{ConnectError, DatabaseUrl};
use crate::tenant::echo;

/// The name of a server: 1 to 63 bytes of lowercase ASCII letters, digits, `-` and `_`,
/// starting with a letter or digit (`[a-z0-9][a-z0-9_-]{0,62}`).
///
/// ```
/// use rls_tenancy::ServerName;
/// let name: ServerName = "eu-1".parse()?;
/// assert_eq!(name.as_str(), "eu-1");
/// for refused in ["", "-eu", "EU1", "eu 1", "eu=1", "eu;drop", &"a".repeat(64)] {
///     assert!(refused.parse::<ServerName>().is_err(), "{refused}");
/// }
/// # Ok::<(), rls_tenancy::ConnectError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerName(String);

impl ServerName {
    /// The name.
    ///
    /// ```
    /// # use rls_tenancy::ServerName;
    /// assert_eq!("eu1".parse::<ServerName>()?.as_str(), "eu1");
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ServerName {
    type Err = ConnectError;

    fn from_str(s: &str) -> Result<Self, ConnectError> {
        let bytes = s.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_'));
        if first_ok && rest_ok && bytes.len() <= 63 {
            Ok(Self(s.to_owned()))
        } else {
            Err(ConnectError::InvalidServerName { name: echo(s) })
        }
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One server: its name, the URL the binary connects to it with, and its limits.
///
/// ```
/// use rls_tenancy::Server;
/// let server: Server = "eu1=postgres://app_deploy:s3cret@10.0.0.1:5432/postgres".parse()?;
/// assert_eq!(server.name().as_str(), "eu1");
/// assert_eq!(server.to_string(), "eu1=postgres://app_deploy:***@10.0.0.1:5432/postgres");
/// assert!(!format!("{server:?}").contains("s3cret"));
/// assert_eq!(server.tenant_limit(), None);
/// # Ok::<(), rls_tenancy::ConnectError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Server {
    name: ServerName,
    url: DatabaseUrl,
    max_connections: Option<u32>,
    max_tenants: Option<u32>,
}

impl Server {
    /// A server named `name` at `url`, without limits.
    ///
    /// ```
    /// # use rls_tenancy::Server;
    /// let server = Server::new("eu1".parse()?, "postgres://app@db1/postgres".parse()?)
    ///     .max_tenants(500)
    ///     .max_connections(40);
    /// assert_eq!(server.tenant_limit(), Some(500));
    /// assert_eq!(server.connection_limit(), Some(40));
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn new(name: ServerName, url: DatabaseUrl) -> Self {
        Self {
            name,
            url,
            max_connections: None,
            max_tenants: None,
        }
    }

    /// At most `n` connections to this server (the pool set's per-server budget).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = Some(n);
        self
    }

    /// At most `n` tenant databases on this server (`rls-tenant create` refuses more).
    pub fn max_tenants(mut self, n: u32) -> Self {
        self.max_tenants = Some(n);
        self
    }

    /// The name.
    pub fn name(&self) -> &ServerName {
        &self.name
    }

    /// The URL as given (its database part is not the tenant's: replace it with
    /// [`DatabaseUrl::with_database`]).
    ///
    /// ```
    /// # use rls_tenancy::Server;
    /// let server: Server = "eu1=postgres://app@db1/postgres".parse()?;
    /// assert_eq!(server.url().with_database("app_tenant_acme").database(), Some("app_tenant_acme"));
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The per-server connection budget, if one is configured.
    pub fn connection_limit(&self) -> Option<u32> {
        self.max_connections
    }

    /// The most tenant databases this server may hold, if a limit is configured.
    ///
    /// ```
    /// # use rls_tenancy::Server;
    /// let server: Server = "eu1=postgres://app@db1/postgres".parse()?;
    /// assert_eq!(server.tenant_limit(), None);
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn tenant_limit(&self) -> Option<u32> {
        self.max_tenants
    }
}

impl FromStr for Server {
    type Err = ConnectError;

    /// `NAME=URL`.
    fn from_str(s: &str) -> Result<Self, ConnectError> {
        let (name, url) = match s.split_once('=') {
            Some((name, url)) if !name.contains("://") => (name, url),
            // Never echoed: what was given may be a URL with its password.
            _ => return Err(ConnectError::ServerEntry),
        };
        let name: ServerName = name.trim().parse()?;
        let url = url.trim().parse().map_err(|err| match err {
            ConnectError::InvalidUrl { reason } => ConnectError::InvalidUrl {
                reason: format!("server {name}: {reason}"),
            },
            other => other,
        })?;
        Ok(Self::new(name, url))
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.url)
    }
}

/// The servers of the database strategy, in the order given, each name once.
///
/// ```
/// use rls_tenancy::ServerSet;
/// let servers = ServerSet::parse_list(
///     "eu1=postgres://app:pw@10.0.0.1/postgres?application_name=a,b,us1=postgres://app:pw@10.0.1.1/postgres",
/// )?;
/// let names: Vec<&str> = servers.iter().map(|s| s.name().as_str()).collect();
/// assert_eq!(names, ["eu1", "us1"]);
/// assert!(!servers.to_string().contains("pw"));
/// assert!(ServerSet::parse_list("eu1=postgres://a@h/db,eu1=postgres://a@h2/db").is_err());
/// # Ok::<(), rls_tenancy::ConnectError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ServerSet {
    servers: Vec<Server>,
}

/// A configuration file's shape: `[[server]]` entries; other tables are other parts' business.
#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    server: Vec<RawServer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    name: String,
    url: String,
    max_connections: Option<u32>,
    max_tenants: Option<u32>,
}

impl ServerSet {
    /// The servers `servers` lists, in that order.
    ///
    /// # Errors
    /// [`ConnectError::DuplicateServer`] when a name comes twice.
    ///
    /// ```
    /// # use rls_tenancy::{Server, ServerSet};
    /// let one: Server = "eu1=postgres://app@db1/postgres".parse()?;
    /// assert_eq!(ServerSet::new(vec![one.clone()])?.len(), 1);
    /// assert!(ServerSet::new(vec![one.clone(), one]).is_err());
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn new(servers: Vec<Server>) -> Result<Self, ConnectError> {
        let mut set = Self::default();
        for server in servers {
            if set.get(server.name()).is_some() {
                return Err(ConnectError::DuplicateServer {
                    name: server.name.to_string(),
                });
            }
            set.servers.push(server);
        }
        Ok(set)
    }

    /// Parses `NAME=URL` entries separated by commas (`RLS_SERVERS`). A comma inside a URL
    /// (a host list `h1:5432,h2:5433`, a parameter) stays in it: an entry starts only where a
    /// comma is followed by `NAME=scheme://`.
    ///
    /// # Errors
    /// [`ConnectError::ServerEntry`] for an entry without `NAME=`,
    /// [`ConnectError::InvalidServerName`], [`ConnectError::InvalidUrl`],
    /// [`ConnectError::DuplicateServer`].
    ///
    /// ```
    /// # use rls_tenancy::ServerSet;
    /// assert!(ServerSet::parse_list("")?.is_empty());
    /// assert!(ServerSet::parse_list("postgres://app:pw@db1/postgres").is_err());
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn parse_list(text: &str) -> Result<Self, ConnectError> {
        Self::new(
            split_entries(text)
                .into_iter()
                .map(str::parse)
                .collect::<Result<_, _>>()?,
        )
    }

    /// Reads the `[[server]]` entries of the configuration file at `path` (none: an empty set).
    ///
    /// # Errors
    /// [`ConnectError::Config`] when the file cannot be read or is malformed (the message
    /// names the line, never quotes it); else as [`ServerSet::parse_config`].
    ///
    /// ```no_run
    /// let servers = rls_tenancy::ServerSet::from_config_file("rls.toml")?;
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn from_config_file(path: impl AsRef<Path>) -> Result<Self, ConnectError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConnectError::Config {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::parse_config(&text).map_err(|err| match err {
            ConnectError::Config { reason, .. } => ConnectError::Config {
                path: path.display().to_string(),
                reason,
            },
            other => other,
        })
    }

    /// Parses a configuration file's text: `[[server]]` entries with `name`, `url` and
    /// optionally `max_connections` and `max_tenants`.
    ///
    /// # Errors
    /// [`ConnectError::Config`] for malformed TOML or an unknown field in an entry; else as
    /// [`ServerSet::parse_list`].
    ///
    /// ```
    /// # use rls_tenancy::ServerSet;
    /// let servers = ServerSet::parse_config(r#"
    ///     [[server]]
    ///     name = "eu1"
    ///     url = "postgres://app:pw@10.0.0.1/postgres"
    ///     max_tenants = 500
    /// "#)?;
    /// assert_eq!(servers.iter().next().and_then(|s| s.tenant_limit()), Some(500));
    /// assert!(ServerSet::parse_config("[[server]]\nname = \"eu1\"\nurl = \"postgres://a@h/d\"\nmax_tenant = 1").is_err());
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn parse_config(text: &str) -> Result<Self, ConnectError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConnectError::Config {
            path: "the configuration".into(),
            reason: toml_reason(text, &e),
        })?;
        let servers = raw
            .server
            .into_iter()
            .map(|entry| {
                let name: ServerName = entry.name.parse()?;
                let mut server: Server = format!("{name}={}", entry.url).parse()?;
                server.max_connections = entry.max_connections;
                server.max_tenants = entry.max_tenants;
                Ok(server)
            })
            .collect::<Result<Vec<_>, ConnectError>>()?;
        Self::new(servers)
    }

    /// These servers with `over`'s: a server both name takes `over`'s URL and keeps its
    /// limits unless `over` sets its own (a file gives the limits, the command line the
    /// binary's role); `over`'s other servers follow, in their order.
    ///
    /// ```
    /// # use rls_tenancy::ServerSet;
    /// let file = ServerSet::parse_config("[[server]]\nname = \"eu1\"\nurl = \"postgres://a@old/d\"\nmax_tenants = 9")?;
    /// let flags = ServerSet::parse_list("eu1=postgres://b@new/d,us1=postgres://b@us/d")?;
    /// let servers = file.overridden_by(flags);
    /// let eu1 = servers.get(&"eu1".parse()?).expect("eu1");
    /// assert_eq!(eu1.url().username(), Some("b"));
    /// assert_eq!(eu1.tenant_limit(), Some(9));
    /// assert_eq!(servers.len(), 2);
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn overridden_by(mut self, over: ServerSet) -> Self {
        for server in over.servers {
            match self.servers.iter_mut().find(|s| s.name == server.name) {
                Some(known) => {
                    known.url = server.url;
                    known.max_connections = server.max_connections.or(known.max_connections);
                    known.max_tenants = server.max_tenants.or(known.max_tenants);
                }
                None => self.servers.push(server),
            }
        }
        self
    }

    /// The server named `name`.
    ///
    /// # Errors
    /// [`ConnectError::UnknownServer`] naming the configured servers.
    ///
    /// ```
    /// # use rls_tenancy::ServerSet;
    /// let servers = ServerSet::parse_list("eu1=postgres://a@h/d")?;
    /// assert!(servers.server(&"eu1".parse()?).is_ok());
    /// assert!(servers.server(&"us1".parse()?).unwrap_err().to_string().contains("eu1"));
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn server(&self, name: &ServerName) -> Result<&Server, ConnectError> {
        self.get(name).ok_or_else(|| ConnectError::UnknownServer {
            name: name.to_string(),
            known: self.names(),
        })
    }

    /// The server named `name`, if configured.
    pub fn get(&self, name: &ServerName) -> Option<&Server> {
        self.servers.iter().find(|s| s.name == *name)
    }

    /// The servers, in the order given.
    pub fn iter(&self) -> std::slice::Iter<'_, Server> {
        self.servers.iter()
    }

    /// How many servers.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Whether no server is configured.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// Refuses an empty set: the database strategy needs at least one server.
    ///
    /// # Errors
    /// [`ConnectError::NoServers`] saying how to name one.
    ///
    /// ```
    /// # use rls_tenancy::ServerSet;
    /// assert!(ServerSet::default().non_empty().is_err());
    /// # Ok::<(), rls_tenancy::ConnectError>(())
    /// ```
    pub fn non_empty(self) -> Result<Self, ConnectError> {
        match self.servers.is_empty() {
            true => Err(ConnectError::NoServers),
            false => Ok(self),
        }
    }

    /// The names, comma-separated, for messages.
    fn names(&self) -> String {
        match self.servers.is_empty() {
            true => "none".into(),
            false => self
                .servers
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

impl<'a> IntoIterator for &'a ServerSet {
    type Item = &'a Server;
    type IntoIter = std::slice::Iter<'a, Server>;

    fn into_iter(self) -> Self::IntoIter {
        self.servers.iter()
    }
}

impl fmt::Display for ServerSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: Vec<String> = self.servers.iter().map(ToString::to_string).collect();
        f.write_str(&shown.join(","))
    }
}

/// Splits `NAME=URL,NAME=URL` where a comma is followed by `NAME=scheme://`.
fn split_entries(text: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    let mut start = 0;
    for (at, _) in text.match_indices(',') {
        if starts_entry(&text[at + 1..]) {
            entries.push(&text[start..at]);
            start = at + 1;
        }
    }
    entries.push(&text[start..]);
    entries
        .into_iter()
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect()
}

/// Whether `rest` begins `NAME=scheme://` (a name of any case, so a wrong one is refused by
/// name rather than glued to the URL before it).
fn starts_entry(rest: &str) -> bool {
    let Some((name, url)) = rest.split_once('=') else {
        return false;
    };
    let name_like = !name.trim().is_empty()
        && name
            .trim()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    let scheme_like = url
        .trim_start()
        .split_once("://")
        .is_some_and(|(scheme, _)| {
            !scheme.is_empty() && scheme.bytes().all(|b| b.is_ascii_alphabetic())
        });
    name_like && scheme_like
}

/// A TOML error as its message and line number, without the quoted source line (which may
/// hold a password).
fn toml_reason(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim_end_matches('\n');
    match err.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    const SECRET: &str = "hunter2-s3cret";

    fn refused(input: &str) -> ConnectError {
        ServerSet::parse_list(input).unwrap_err()
    }

    #[test]
    fn no_error_or_debug_output_shows_a_password() {
        let inputs = [
            format!("eu1=postgres://app:{SECRET}@db1/postgres,eu1=postgres://app:{SECRET}@db2/x"),
            format!("EU1=postgres://app:{SECRET}@db1/postgres"),
            format!("postgres://app:{SECRET}@db1/postgres"),
            format!("postgres://app:{SECRET}@db1/postgres?sslmode=disable"),
            format!("eu1=mysql://app:{SECRET}@db1/postgres"),
            format!("eu1=postgres://app:{SECRET}@/postgres"),
            format!("eu1=postgres://app:{SECRET}@db1:notaport/postgres"),
            format!(
                "eu1=postgres://app@db1/postgres?password={SECRET}&sslmode=x,eu1=postgres://a@h/d"
            ),
        ];
        for input in &inputs {
            let err = refused(input);
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains(SECRET), "{input}: {shown}");
        }
        let set = ServerSet::parse_list(&format!(
            "eu1=postgres://app:{SECRET}@db1/postgres,us1=postgres://app@db2/p?password={SECRET}"
        ))
        .unwrap();
        let shown = format!("{set} {set:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(set.iter().all(|s| s.url().expose_secret().contains(SECRET)));
    }

    #[test]
    fn a_configuration_error_names_the_line_but_never_quotes_it() {
        let text = format!(
            "[[server]]\nname = \"eu1\"\nurl = \"postgres://app:{SECRET}@db1/postgres\"\nmax_tenants = \"many\"\n"
        );
        let err = ServerSet::parse_config(&text).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(shown.contains("line 4"), "{shown}");
        let unclosed = format!("[[server]]\nurl = \"postgres://app:{SECRET}@db1/postgres");
        let shown = ServerSet::parse_config(&unclosed).unwrap_err().to_string();
        assert!(!shown.contains(SECRET), "{shown}");
    }

    #[test]
    fn each_bad_entry_gets_its_own_typed_error() {
        assert!(matches!(
            refused("eu1=postgres://a@h/d,eu1=postgres://a@h2/d"),
            ConnectError::DuplicateServer { name } if name == "eu1"
        ));
        assert!(matches!(
            refused("Eu1=postgres://a@h/d"),
            ConnectError::InvalidServerName { .. }
        ));
        assert!(matches!(
            refused("postgres://a@h/d"),
            ConnectError::ServerEntry
        ));
        assert!(matches!(
            refused("eu1=mysql://a@h/d"),
            ConnectError::InvalidUrl { reason } if reason.starts_with("server eu1:")
        ));
        assert!(matches!(
            refused("eu1=postgres://a@h/d,eu2=mysql://a@h/d"),
            ConnectError::InvalidUrl { reason } if reason.starts_with("server eu2:")
        ));
        assert!(matches!(
            ServerSet::default().non_empty().unwrap_err(),
            ConnectError::NoServers
        ));
    }

    #[test]
    fn commas_inside_a_url_stay_in_it() {
        let set = ServerSet::parse_list(
            "a=postgres://u@h1:5432,h2:5433/d?options=-c%20x%3D1,b = postgresql://u@h3/d, ",
        );
        // The first URL lists two hosts: one server takes one host, so it is refused as such.
        assert!(matches!(
            set.unwrap_err(),
            ConnectError::SeveralHosts { count: 2 }
        ));
        let set =
            ServerSet::parse_list("a=postgres://u@h1/d?application_name=x,y,b=postgres://u@h3/d")
                .unwrap();
        let names: Vec<&str> = set.iter().map(|s| s.name().as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert!(
            set.iter()
                .next()
                .unwrap()
                .url()
                .expose_secret()
                .ends_with("x,y")
        );
    }
}
