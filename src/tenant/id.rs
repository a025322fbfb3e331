//! [`TenantId`]: a value that can only hold a valid tenant id, of either [`KeyType`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::TenantError;
use super::error::echo;

/// The SQL type of a schema's tenant keys: `bigint` (the default) or `uuid`.
///
/// It is named by the declaration (`key_type = "uuid"`); the policy casts the tenant setting to
/// it, and ids read from requests are parsed as it.
///
/// ```
/// use rls_tenancy::{KeyType, TenantId};
/// assert_eq!(KeyType::default(), KeyType::BigInt);
/// assert_eq!(KeyType::Uuid.sql_type(), "uuid");
/// let id = KeyType::Uuid.parse_id("6f1c2a1e-8a59-4a43-9d8c-0c6c2d7e9b10")?;
/// assert_eq!(id.key_type(), KeyType::Uuid);
/// assert!(KeyType::BigInt.parse_id("6f1c2a1e-8a59-4a43-9d8c-0c6c2d7e9b10").is_err());
/// # Ok::<(), rls_tenancy::TenantError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum KeyType {
    /// `bigint`: positive 64-bit integers.
    #[default]
    BigInt,
    /// `uuid`: any UUID but the nil one.
    Uuid,
}

impl KeyType {
    /// The type's name in SQL, as the policy casts to it.
    ///
    /// ```
    /// assert_eq!(rls_tenancy::KeyType::BigInt.sql_type(), "bigint");
    /// ```
    pub fn sql_type(self) -> &'static str {
        match self {
            KeyType::BigInt => "bigint",
            KeyType::Uuid => "uuid",
        }
    }

    /// Parses `input` strictly as an id of this key type.
    ///
    /// # Errors
    /// [`TenantError::InvalidTenantId`] when `input` is no canonical id at all,
    /// [`TenantError::WrongKeyType`] when it is one of the other type.
    ///
    /// ```
    /// use rls_tenancy::KeyType;
    /// assert_eq!(KeyType::BigInt.parse_id("42")?.as_i64(), Some(42));
    /// assert!(KeyType::Uuid.parse_id("42").is_err());
    /// # Ok::<(), rls_tenancy::TenantError>(())
    /// ```
    pub fn parse_id(self, input: &str) -> Result<TenantId, TenantError> {
        let id: TenantId = input.parse()?;
        if id.key_type() == self {
            Ok(id)
        } else {
            Err(TenantError::WrongKeyType {
                input: echo(input),
                expected: self,
            })
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sql_type())
    }
}

/// The id of a tenant: a positive `i64` or a non-nil UUID, parsed strictly.
///
/// Parsing accepts only canonical forms, so an id has exactly one spelling: ASCII digits
/// without sign, whitespace or leading zero, within `1..=i64::MAX`; or a UUID as 36
/// lowercase hyphenated hex digits. `"1 OR 1=1"`, `"-1"`, `"0"`, `"007"`, `"+7"`, `"0x1"` and
/// upper-case or braced UUIDs are all refused. Use [`KeyType::parse_id`] to insist on the
/// schema's key type.
///
/// ```
/// use rls_tenancy::TenantId;
/// let id: TenantId = "42".parse()?;
/// assert_eq!(id.as_i64(), Some(42));
/// assert!("042".parse::<TenantId>().is_err());
/// assert!("-1".parse::<TenantId>().is_err());
/// assert!(TenantId::new(0).is_err());
/// let uuid: TenantId = "6f1c2a1e-8a59-4a43-9d8c-0c6c2d7e9b10".parse()?;
/// assert!(uuid.as_uuid().is_some());
/// assert!("6F1C2A1E-8A59-4A43-9D8C-0C6C2D7E9B10".parse::<TenantId>().is_err());
/// # Ok::<(), rls_tenancy::TenantError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(Key);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    BigInt(i64),
    Uuid(Uuid),
}

impl TenantId {
    /// Wraps a `bigint` id that came from a trusted source (the database).
    ///
    /// # Errors
    /// [`TenantError::InvalidTenantId`] when `id` is not positive.
    ///
    /// ```
    /// use rls_tenancy::TenantId;
    /// assert_eq!(TenantId::new(7)?.as_i64(), Some(7));
    /// # Ok::<(), rls_tenancy::TenantError>(())
    /// ```
    pub fn new(id: i64) -> Result<Self, TenantError> {
        if id > 0 {
            Ok(Self(Key::BigInt(id)))
        } else {
            Err(TenantError::InvalidTenantId {
                input: id.to_string(),
            })
        }
    }

    /// Wraps a `uuid` id that came from a trusted source (the database).
    ///
    /// # Errors
    /// [`TenantError::InvalidTenantId`] for the nil UUID.
    ///
    /// ```
    /// use rls_tenancy::TenantId;
    /// let id = TenantId::from_uuid(uuid::Uuid::from_u128(7))?;
    /// assert_eq!(id.to_string(), "00000000-0000-0000-0000-000000000007");
    /// assert!(TenantId::from_uuid(uuid::Uuid::nil()).is_err());
    /// # Ok::<(), rls_tenancy::TenantError>(())
    /// ```
    pub fn from_uuid(id: Uuid) -> Result<Self, TenantError> {
        if id.is_nil() {
            Err(TenantError::InvalidTenantId {
                input: id.to_string(),
            })
        } else {
            Ok(Self(Key::Uuid(id)))
        }
    }

    /// Which key type this id is of.
    ///
    /// ```
    /// use rls_tenancy::{KeyType, TenantId};
    /// assert_eq!(TenantId::new(1)?.key_type(), KeyType::BigInt);
    /// # Ok::<(), rls_tenancy::TenantError>(())
    /// ```
    pub fn key_type(self) -> KeyType {
        match self.0 {
            Key::BigInt(_) => KeyType::BigInt,
            Key::Uuid(_) => KeyType::Uuid,
        }
    }

    /// The id as an integer, for a `bigint` key.
    ///
    /// ```
    /// # use rls_tenancy::TenantId;
    /// assert_eq!(TenantId::new(3)?.as_i64(), Some(3));
    /// # Ok::<(), rls_tenancy::TenantError>(())
    /// ```
    pub fn as_i64(self) -> Option<i64> {
        match self.0 {
            Key::BigInt(id) => Some(id),
            Key::Uuid(_) => None,
        }
    }

    /// The id as a UUID, for a `uuid` key.
    ///
    /// ```
    /// # use rls_tenancy::TenantId;
    /// assert_eq!(TenantId::new(3)?.as_uuid(), None);
    /// # Ok::<(), rls_tenancy::TenantError>(())
    /// ```
    pub fn as_uuid(self) -> Option<Uuid> {
        match self.0 {
            Key::BigInt(_) => None,
            Key::Uuid(id) => Some(id),
        }
    }

    /// The id as a sea-query value, for binding: `bigint` or `uuid`.
    ///
    /// ```
    /// # use rls_tenancy::TenantId;
    /// assert_eq!(TenantId::new(3)?.value(), rls_tenancy::sea_query::Value::from(3_i64));
    /// # Ok::<(), rls_tenancy::TenantError>(())
    /// ```
    pub fn value(self) -> sea_query::Value {
        match self.0 {
            Key::BigInt(id) => id.into(),
            Key::Uuid(id) => id.into(),
        }
    }
}

impl FromStr for TenantId {
    type Err = TenantError;

    fn from_str(s: &str) -> Result<Self, TenantError> {
        let invalid = || TenantError::InvalidTenantId { input: echo(s) };
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            if s.starts_with('0') {
                return Err(invalid());
            }
            let id: i64 = s.parse().map_err(|_| invalid())?;
            return Self::new(id).map_err(|_| invalid());
        }
        let canonical = s.len() == 36
            && s.bytes().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
            });
        if !canonical {
            return Err(invalid());
        }
        let id = Uuid::parse_str(s).map_err(|_| invalid())?;
        Self::from_uuid(id).map_err(|_| invalid())
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Key::BigInt(id) => fmt::Display::fmt(&id, f),
            Key::Uuid(id) => fmt::Display::fmt(&id.hyphenated(), f),
        }
    }
}

/// A `bigint` id serializes as a JSON number, a `uuid` id as its string.
impl Serialize for TenantId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Key::BigInt(id) => serializer.serialize_i64(id),
            Key::Uuid(id) => serializer.collect_str(&id.hyphenated()),
        }
    }
}

/// Accepts what [`Serialize`] writes, held to the same strict rules as parsing.
impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Wire {
            Number(i64),
            Text(String),
        }
        match Wire::deserialize(deserializer)? {
            Wire::Number(id) => TenantId::new(id),
            Wire::Text(text) => text.parse(),
        }
        .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test fails by panicking"
)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_ids_parse() {
        for ok in [
            "1",
            "42",
            "9223372036854775807",
            "6f1c2a1e-8a59-4a43-9d8c-0c6c2d7e9b10",
        ] {
            let id: TenantId = ok.parse().unwrap_or_else(|e| panic!("{ok}: {e}"));
            assert_eq!(id.to_string(), ok, "one spelling only");
        }
        for bad in [
            "",
            "0",
            "00",
            "01",
            "-1",
            "+1",
            " 1",
            "1 ",
            "1 OR 1=1",
            "9223372036854775808",
            "99999999999999999999999",
            "1e3",
            "0x10",
            "0x1",
            "١",
            "00000000-0000-0000-0000-000000000000",
            "6F1C2A1E-8A59-4A43-9D8C-0C6C2D7E9B10",
            "{6f1c2a1e-8a59-4a43-9d8c-0c6c2d7e9b10}",
            "6f1c2a1e8a594a439d8c0c6c2d7e9b10",
            "6f1c2a1e-8a59-4a43-9d8c-0c6c2d7e9b1g",
        ] {
            assert!(
                bad.parse::<TenantId>().is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn ids_round_trip_through_json_and_refuse_junk() {
        for text in ["42", "\"6f1c2a1e-8a59-4a43-9d8c-0c6c2d7e9b10\""] {
            let id: TenantId = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(serde_json::to_string(&id).ok().as_deref(), Some(text));
        }
        for junk in ["0", "-3", "\"007\"", "\"1 OR 1=1\"", "1.5", "null"] {
            assert!(serde_json::from_str::<TenantId>(junk).is_err(), "{junk}");
        }
    }
}
