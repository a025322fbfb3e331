//! [`WritePinning`]: after a write, the same user agent's reads go where the write is
//! visible, through a signed cookie that carries the primary's WAL position.
//!
//! As django-multidb-router does, a request *writes* when its method is not safe (anything
//! but GET, HEAD, OPTIONS, TRACE) or its route is marked with [`writing_route`]: its own
//! reads go to the primary, and its response sets the pinning cookie (default
//! `multidb_pin_writes`, 15 s). A response marked with [`PinNext`] sets the cookie too, and
//! so pins only the *next* requests. Beyond the router, the cookie holds the primary's WAL
//! position after the write, signed with HMAC-SHA256: a later request carrying it reads
//! from a replica that has replayed that position, from the primary otherwise, so the pin
//! ends as soon as replication has caught up rather than after a fixed time. A cookie that
//! does not verify, or is past its expiry, is ignored.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponseParts, Response, ResponseParts};
use cookie::Cookie;
pub use cookie::SameSite;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::route::{Lsn, RoutingPool, read_at_least, use_primary};

/// The key the pinning cookie is signed with: at least 32 bytes of secret. Its `Debug`
/// shows nothing of it.
///
/// ```
/// use rls_tenancy::http::PinKey;
/// let key = PinKey::new(b"0123456789abcdef0123456789abcdef")?;
/// assert_eq!(format!("{key:?}"), "PinKey(***)");
/// assert!(PinKey::new(b"short").is_err());
/// # Ok::<(), rls_tenancy::http::PinKeyError>(())
/// ```
#[derive(Clone)]
pub struct PinKey(std::sync::Arc<[u8]>);

/// A pinning key shorter than 32 bytes.
///
/// ```
/// assert!(rls_tenancy::http::PinKey::new(b"x").unwrap_err().to_string().contains("32 bytes"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the pinning key has {len} bytes: give at least 32 bytes of secret (for example `openssl rand -hex 32`)"
)]
pub struct PinKeyError {
    len: usize,
}

impl PinKey {
    /// A key from secret bytes.
    ///
    /// # Errors
    /// [`PinKeyError`] when `secret` is shorter than 32 bytes.
    ///
    /// ```
    /// let key = rls_tenancy::http::PinKey::new(&[7u8; 32])?;
    /// # Ok::<(), rls_tenancy::http::PinKeyError>(())
    /// ```
    pub fn new(secret: &[u8]) -> Result<Self, PinKeyError> {
        if secret.len() < 32 {
            return Err(PinKeyError { len: secret.len() });
        }
        Ok(Self(secret.into()))
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        // HMAC takes keys of any length; `new` made sure this one is long enough.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of every length"));
        mac.update(payload.as_bytes());
        mac
    }
}

impl std::fmt::Debug for PinKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinKey(***)")
    }
}

/// The pinning cookie's settings and key; [`WritePinning::apply`] puts the layer on a
/// router.
///
/// ```
/// use std::time::Duration;
/// use rls_tenancy::http::{PinKey, SameSite, WritePinning};
/// let pinning = WritePinning::new(PinKey::new(&[7u8; 32])?)
///     .cookie_name("pin")
///     .max_age(Duration::from_secs(30))
///     .secure(true)
///     .same_site(SameSite::Strict);
/// assert_eq!(pinning.get_cookie_name(), "pin");
/// # Ok::<(), rls_tenancy::http::PinKeyError>(())
/// ```
#[derive(Debug, Clone)]
pub struct WritePinning {
    key: PinKey,
    cookie_name: String,
    max_age: Duration,
    secure: bool,
    http_only: bool,
    same_site: SameSite,
}

impl WritePinning {
    /// The router's defaults: cookie `multidb_pin_writes`, 15 s, not `Secure` (set it when
    /// serving over HTTPS), `HttpOnly`, `SameSite=Lax`.
    ///
    /// ```
    /// # use rls_tenancy::http::{PinKey, WritePinning};
    /// let pinning = WritePinning::new(PinKey::new(&[7u8; 32])?);
    /// assert_eq!(pinning.get_cookie_name(), "multidb_pin_writes");
    /// # Ok::<(), rls_tenancy::http::PinKeyError>(())
    /// ```
    pub fn new(key: PinKey) -> Self {
        Self {
            key,
            cookie_name: "multidb_pin_writes".into(),
            max_age: Duration::from_secs(15),
            secure: false,
            http_only: true,
            same_site: SameSite::Lax,
        }
    }

    /// The cookie's name.
    ///
    /// ```
    /// # use rls_tenancy::http::{PinKey, WritePinning};
    /// let pinning = WritePinning::new(PinKey::new(&[7u8; 32])?).cookie_name("pinned");
    /// # Ok::<(), rls_tenancy::http::PinKeyError>(())
    /// ```
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// The configured cookie name.
    ///
    /// ```
    /// # use rls_tenancy::http::{PinKey, WritePinning};
    /// assert_eq!(WritePinning::new(PinKey::new(&[7u8; 32])?).get_cookie_name(), "multidb_pin_writes");
    /// # Ok::<(), rls_tenancy::http::PinKeyError>(())
    /// ```
    pub fn get_cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// How long a pin may last at most (the cookie's `Max-Age`, and the signed expiry).
    ///
    /// ```
    /// # use rls_tenancy::http::{PinKey, WritePinning};
    /// let pinning = WritePinning::new(PinKey::new(&[7u8; 32])?).max_age(std::time::Duration::from_secs(5));
    /// # Ok::<(), rls_tenancy::http::PinKeyError>(())
    /// ```
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Whether the cookie is `Secure` (sent over HTTPS only).
    ///
    /// ```
    /// # use rls_tenancy::http::{PinKey, WritePinning};
    /// let pinning = WritePinning::new(PinKey::new(&[7u8; 32])?).secure(true);
    /// # Ok::<(), rls_tenancy::http::PinKeyError>(())
    /// ```
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Whether the cookie is `HttpOnly` (hidden from scripts).
    ///
    /// ```
    /// # use rls_tenancy::http::{PinKey, WritePinning};
    /// let pinning = WritePinning::new(PinKey::new(&[7u8; 32])?).http_only(false);
    /// # Ok::<(), rls_tenancy::http::PinKeyError>(())
    /// ```
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// The cookie's `SameSite`.
    ///
    /// ```
    /// # use rls_tenancy::http::{PinKey, SameSite, WritePinning};
    /// let pinning = WritePinning::new(PinKey::new(&[7u8; 32])?).same_site(SameSite::Strict);
    /// # Ok::<(), rls_tenancy::http::PinKeyError>(())
    /// ```
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// Puts the pinning layer around `router`, reading the primary's WAL position from
    /// `pool`. Apply it outside [`crate::http::TenantTxLayer`], so a write is committed
    /// before its position is taken.
    ///
    /// ```no_run
    /// # use rls_tenancy::http::{PinKey, TenantTxLayer, WritePinning};
    /// # fn demo(routes: axum::Router, pool: rls_tenancy::RoutingPool) -> Result<(), rls_tenancy::http::PinKeyError> {
    /// let app = WritePinning::new(PinKey::new(&[7u8; 32])?).apply(routes.layer(TenantTxLayer), pool);
    /// # Ok(()) }
    /// ```
    pub fn apply<S>(self, router: Router<S>, pool: RoutingPool) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        router.layer(from_fn_with_state((self, pool), pin_writes))
    }

    /// The cookie value for a pin at `lsn` that expires at `expires` (seconds since the
    /// epoch): `LSN.EXPIRES.SIGNATURE`.
    fn sign(&self, lsn: Lsn, expires: u64) -> String {
        let payload = format!("{lsn}.{expires}");
        let signature = hex::encode(
            self.key
                .mac(&self.signed_text(&payload))
                .finalize()
                .into_bytes(),
        );
        format!("{payload}.{signature}")
    }

    /// What the signature covers: the payload and the cookie's name.
    fn signed_text(&self, payload: &str) -> String {
        format!("{}={payload}", self.cookie_name)
    }

    /// The position a cookie value pins to, if its signature verifies and it has not
    /// expired at `now` (seconds since the epoch).
    fn verify(&self, value: &str, now: u64) -> Option<Lsn> {
        let (payload, signature) = value.rsplit_once('.')?;
        let signature = hex::decode(signature).ok()?;
        self.key
            .mac(&self.signed_text(payload))
            .verify_slice(&signature)
            .ok()?;
        let (lsn, expires) = payload.split_once('.')?;
        let expires: u64 = expires.parse().ok()?;
        (now < expires).then_some(())?;
        lsn.parse().ok()
    }

    /// The `Set-Cookie` value pinning to `lsn` from `now` on.
    fn set_cookie(&self, lsn: Lsn, now: u64) -> String {
        let max_age = self.max_age.as_secs();
        Cookie::build((self.cookie_name.clone(), self.sign(lsn, now + max_age)))
            .path("/")
            .max_age(cookie::time::Duration::seconds(
                i64::try_from(max_age).unwrap_or(i64::MAX),
            ))
            .secure(self.secure)
            .http_only(self.http_only)
            .same_site(self.same_site)
            .build()
            .to_string()
    }

    /// The position the request's pinning cookie pins to, if it carries a valid one.
    fn pinned(&self, request: &Request, now: u64) -> Option<Lsn> {
        request
            .headers()
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .filter(|cookie| cookie.name() == self.cookie_name)
            .find_map(|cookie| self.verify(cookie.value(), now))
    }
}

/// Marks a response as having written: the pinning cookie is set, so the user agent's
/// *next* requests read where the write is visible (this request's reads are done).
///
/// ```no_run
/// use rls_tenancy::http::PinNext;
/// async fn import() -> (PinNext, &'static str) {
///     // ... wrote through a connection of its own ...
///     (PinNext, "imported")
/// }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PinNext;

impl IntoResponseParts for PinNext {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        res.extensions_mut().insert(PinNext);
        Ok(res)
    }
}

/// Marks a route as writing (Django's `db_write`), whatever its method: its reads go to the
/// primary and its response sets the pinning cookie. A middleware for one route.
///
/// ```no_run
/// use axum::{Router, middleware::from_fn, routing::get};
/// use rls_tenancy::http::writing_route;
/// async fn report() -> &'static str { "done" }
/// let app: Router = Router::new().route("/report", get(report).layer(from_fn(writing_route)));
/// ```
pub async fn writing_route(mut request: Request, next: Next) -> Response {
    request.extensions_mut().insert(WritingRoute);
    let mut response = use_primary(next.run(request)).await;
    response.extensions_mut().insert(PinNext);
    response
}

/// What [`writing_route`] puts in its request's extensions: the request's [`super::Tx`]
/// begins read-write on the primary whatever the method ([`use_primary`] alone only sends
/// the reads there: it sets no pinning cookie, so a write behind it would go unpinned).
#[derive(Debug, Clone, Copy)]
pub(super) struct WritingRoute;

/// Whether a request with `method` writes: any method but the safe ones (GET, HEAD,
/// OPTIONS, TRACE), as django-multidb-router decides.
pub(super) fn writes(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Seconds since the epoch.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The pinning middleware.
async fn pin_writes(
    State((pinning, pool)): State<(WritePinning, RoutingPool)>,
    request: Request,
    next: Next,
) -> Response {
    let writes = writes(request.method());
    let pin = pinning.pinned(&request, now());
    let mut response = match (writes, pin) {
        (true, _) => use_primary(next.run(request)).await,
        (false, Some(lsn)) => read_at_least(lsn, next.run(request)).await,
        (false, None) => next.run(request).await,
    };
    if writes || response.extensions().get::<PinNext>().is_some() {
        let lsn = pool.primary_position().await.unwrap_or_else(|err| {
            // Unknown position: pin to the primary itself for the cookie's lifetime.
            tracing::warn!(error = %err, "could not read the primary's WAL position; the pin sends reads to the primary until it expires");
            Lsn::from_u64(u64::MAX)
        });
        match HeaderValue::from_str(&pinning.set_cookie(lsn, now())) {
            Ok(value) => {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            Err(err) => {
                tracing::error!(error = %err, "the pinning cookie is not a valid header value; check the cookie name");
            }
        }
    }
    response
}

#[cfg(test)]
#[allow(clippy::expect_used, reason = "a test fails by panicking")]
mod tests {
    use super::*;

    fn pinning() -> WritePinning {
        WritePinning::new(PinKey::new(&[7u8; 32]).expect("key"))
    }

    #[test]
    fn a_signed_pin_verifies_until_it_expires() {
        let lsn: Lsn = "16/B374D848".parse().expect("lsn");
        let value = pinning().sign(lsn, 1_000);
        assert_eq!(pinning().verify(&value, 999), Some(lsn));
        assert_eq!(pinning().verify(&value, 1_000), None, "expired");
    }

    #[test]
    fn a_tampered_or_foreign_pin_is_ignored() {
        let lsn: Lsn = "16/B374D848".parse().expect("lsn");
        let value = pinning().sign(lsn, 1_000);
        let later = value.replacen("16/B374D848", "16/B374D849", 1);
        assert_eq!(pinning().verify(&later, 0), None, "another position");
        let longer = value.replacen(".1000.", ".9999.", 1);
        assert_eq!(pinning().verify(&longer, 0), None, "another expiry");
        let other_key = WritePinning::new(PinKey::new(&[8u8; 32]).expect("key"));
        assert_eq!(other_key.verify(&value, 0), None, "another key");
        let other_name = pinning().cookie_name("other");
        assert_eq!(other_name.verify(&value, 0), None, "another cookie");
        assert_eq!(pinning().verify("garbage", 0), None);
    }

    #[test]
    fn the_cookie_carries_the_configured_attributes() {
        let lsn: Lsn = "0/10".parse().expect("lsn");
        let cookie = pinning().set_cookie(lsn, 100);
        assert!(
            cookie.starts_with("multidb_pin_writes=0/10.115."),
            "{cookie}"
        );
        for part in ["Max-Age=15", "HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(part), "{part} in {cookie}");
        }
        assert!(!cookie.contains("Secure"), "{cookie}");
        let strict = pinning()
            .secure(true)
            .http_only(false)
            .same_site(SameSite::Strict)
            .max_age(Duration::from_secs(5))
            .set_cookie(lsn, 100);
        for part in ["Max-Age=5", "Secure", "SameSite=Strict"] {
            assert!(strict.contains(part), "{part} in {strict}");
        }
        assert!(!strict.contains("HttpOnly"), "{strict}");
    }
}
