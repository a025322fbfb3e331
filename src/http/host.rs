//! Which host a request was sent to: the one string tenant resolution starts from.
//!
//! Read strictly: one `Host` header (several are a 400), which must agree with the HTTP/2
//! `:authority` (or an absolute-form request target) when both are present. `Forwarded` and
//! `X-Forwarded-Host` are read only with [`HostSource::TrustedProxy`], and then must name
//! exactly one host between them. The string is checked here only for being readable; its
//! shape is judged by [`crate::subdomain_slug`].

use axum::http::header::{FORWARDED, HOST};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::{AppError, HostSource};

/// `X-Forwarded-Host`, the de-facto header older proxies set.
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The host `parts` was sent to, as the client (or the trusted proxy) wrote it.
pub(super) fn request_host(parts: &Parts, source: HostSource) -> Result<String, AppError> {
    if source == HostSource::TrustedProxy
        && let Some(host) = forwarded_host(&parts.headers)?
    {
        return Ok(host);
    }
    let header = single(&parts.headers, &HOST, "Host")?;
    let authority = parts.uri.authority().map(|a| a.as_str());
    match (header, authority) {
        (Some(header), Some(authority)) if header != authority => Err(AppError::bad_request(
            "the Host header and the request target name different hosts: send one host",
        )),
        (Some(host), _) => Ok(host.to_owned()),
        (None, Some(authority)) => Ok(authority.to_owned()),
        (None, None) => Err(AppError::bad_request(
            "the request has no Host header: send the tenant's domain name in it",
        )),
    }
}

/// The value of a header that may appear at most once, as text.
fn single<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    shown: &str,
) -> Result<Option<&'h str>, AppError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AppError::bad_request(format!(
            "the request has several {shown} headers: send exactly one"
        )));
    }
    text(value, shown).map(Some)
}

fn text<'h>(value: &'h HeaderValue, shown: &str) -> Result<&'h str, AppError> {
    value.to_str().map_err(|_| {
        AppError::bad_request(format!(
            "the {shown} header is not plain ASCII: send the domain name as is"
        ))
    })
}

/// The host a trusted proxy reports, from `Forwarded: host=...` and `X-Forwarded-Host`.
/// `None` when neither is present; an error when they name several hosts between them.
fn forwarded_host(headers: &HeaderMap) -> Result<Option<String>, AppError> {
    let mut hosts = Vec::new();
    for value in headers.get_all(FORWARDED) {
        for element in text(value, "Forwarded")?.split(',') {
            for pair in element.split(';') {
                if let Some((key, value)) = pair.split_once('=')
                    && key.trim().eq_ignore_ascii_case("host")
                {
                    hosts.push(unquote(value.trim())?);
                }
            }
        }
    }
    if let Some(value) = single(headers, &X_FORWARDED_HOST, "X-Forwarded-Host")? {
        hosts.extend(value.split(',').map(|h| h.trim().to_owned()));
    }
    hosts.dedup();
    match hosts.len() {
        0 => Ok(None),
        1 => Ok(hosts.pop()),
        _ => Err(AppError::bad_request(
            "the forwarding headers name several hosts: have the proxy overwrite Forwarded and X-Forwarded-Host",
        )),
    }
}

/// A `Forwarded` parameter value: a token, or a quoted string without escapes.
fn unquote(value: &str) -> Result<String, AppError> {
    let unquoted = match value.strip_prefix('"') {
        Some(rest) => rest
            .strip_suffix('"')
            .filter(|inner| !inner.contains(['"', '\\'])),
        None => Some(value),
    };
    unquoted.map(str::to_owned).ok_or_else(|| {
        AppError::bad_request("the Forwarded header's host is not a plain or simply quoted value")
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn host(uri: &str, headers: &[(&str, &str)], source: HostSource) -> Result<String, u16> {
        request_host(&parts(uri, headers), source).map_err(|e| e.status().as_u16())
    }

    #[test]
    fn the_requests_own_host_is_read_and_forwarding_headers_are_ignored_by_default() {
        let direct = HostSource::Request;
        assert_eq!(
            host("/", &[("host", "a.localhost")], direct),
            Ok("a.localhost".into())
        );
        assert_eq!(
            host(
                "/",
                &[("host", "a.localhost"), ("x-forwarded-host", "b.localhost")],
                direct
            ),
            Ok("a.localhost".into())
        );
        assert_eq!(
            host(
                "/",
                &[("host", "a.localhost"), ("forwarded", "host=b.localhost")],
                direct
            ),
            Ok("a.localhost".into())
        );
        assert_eq!(
            host("http://a.localhost/", &[], direct),
            Ok("a.localhost".into())
        );
    }

    #[test]
    fn ambiguous_or_missing_hosts_are_bad_requests() {
        let direct = HostSource::Request;
        assert_eq!(host("/", &[], direct), Err(400));
        assert_eq!(
            host(
                "/",
                &[("host", "a.localhost"), ("host", "b.localhost")],
                direct
            ),
            Err(400)
        );
        assert_eq!(
            host(
                "/",
                &[("host", "a.localhost"), ("host", "a.localhost")],
                direct
            ),
            Err(400)
        );
        assert_eq!(
            host("http://b.localhost/", &[("host", "a.localhost")], direct),
            Err(400)
        );
    }

    #[test]
    fn a_trusted_proxy_is_believed_only_when_it_names_one_host() {
        let proxy = HostSource::TrustedProxy;
        let own = ("host", "proxy.internal");
        assert_eq!(host("/", &[own], proxy), Ok("proxy.internal".into()));
        assert_eq!(
            host("/", &[own, ("x-forwarded-host", "a.localhost")], proxy),
            Ok("a.localhost".into())
        );
        assert_eq!(
            host(
                "/",
                &[
                    own,
                    (
                        "forwarded",
                        "for=10.0.0.1;host=\"a.localhost:8080\";proto=http"
                    )
                ],
                proxy
            ),
            Ok("a.localhost:8080".into())
        );
        assert_eq!(
            host(
                "/",
                &[
                    own,
                    ("forwarded", "host=a.localhost"),
                    ("x-forwarded-host", "a.localhost")
                ],
                proxy
            ),
            Ok("a.localhost".into())
        );
        for bad in [
            vec![own, ("x-forwarded-host", "a.localhost, b.localhost")],
            vec![
                own,
                ("x-forwarded-host", "a.localhost"),
                ("x-forwarded-host", "b.localhost"),
            ],
            vec![own, ("forwarded", "host=a.localhost, host=b.localhost")],
            vec![
                own,
                ("forwarded", "host=a.localhost"),
                ("x-forwarded-host", "b.localhost"),
            ],
            vec![own, ("forwarded", "host=\"a.localhost")],
            vec![own, ("forwarded", "host=\"a\\\".localhost\"")],
        ] {
            assert_eq!(host("/", &bad, proxy), Err(400), "{bad:?}");
        }
    }
}
