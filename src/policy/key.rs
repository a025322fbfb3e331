//! [`TenantKey`]: the secret with which the application signs each transaction's tenant, and
//! the key file that carries it from `rls-migrate` to the application.

use std::fmt;
use std::io::Write;
use std::path::Path;

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::error::TenantKeyError;

/// HMAC-SHA256's block size: a key is padded to it.
#[cfg(any(feature = "migrate", test))]
const BLOCK: usize = 64;
/// A key's length in bytes (256 bits).
const KEY_BYTES: usize = 32;

/// A 256-bit secret, installed in the database by `rls-migrate --tenant-key-file` and read by
/// the application from the same file: the tenant pool signs every transaction's tenant with
/// it, and the database accepts the tenant only with a valid signature.
///
/// It is never printed: `Debug` shows only its [id](TenantKey::id), a fingerprint that
/// reveals nothing of the key.
///
/// ```
/// use rls_tenancy::TenantKey;
/// let key = TenantKey::generate();
/// assert_eq!(key.id().len(), 16);
/// assert!(!format!("{key:?}").contains(&key.to_hex()));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct TenantKey {
    bytes: [u8; KEY_BYTES],
}

impl TenantKey {
    /// A fresh random key from the operating system's generator.
    ///
    /// ```
    /// # use rls_tenancy::TenantKey;
    /// assert_ne!(TenantKey::generate(), TenantKey::generate());
    /// ```
    pub fn generate() -> Self {
        Self {
            bytes: rand::random(),
        }
    }

    /// Reads the key file at `path`: 64 hexadecimal digits (surrounding whitespace ignored).
    ///
    /// # Errors
    /// [`TenantKeyError::Read`] when the file cannot be read, [`TenantKeyError::Malformed`]
    /// when it does not hold a key.
    ///
    /// ```
    /// # use rls_tenancy::{TenantKey, TenantKeyError};
    /// let err = TenantKey::from_file("/nonexistent/tenant.key").unwrap_err();
    /// assert!(matches!(err, TenantKeyError::Read { .. }));
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, TenantKeyError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TenantKeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut bytes = [0u8; KEY_BYTES];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| TenantKeyError::Malformed {
            path: path.to_owned(),
        })?;
        Ok(Self { bytes })
    }

    /// Reads the key file at `path`, or, when there is none, creates it with a fresh key,
    /// readable and writable by its owner only (mode 0600). Returns the key and whether it
    /// was created.
    ///
    /// # Errors
    /// As [`TenantKey::from_file`]; [`TenantKeyError::Create`] when the file cannot be created.
    ///
    /// ```
    /// # use rls_tenancy::TenantKey;
    /// let dir = std::env::temp_dir().join(format!("rls-key-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("tenant.key");
    /// let (key, created) = TenantKey::load_or_create(&path)?;
    /// assert!(created);
    /// assert_eq!(TenantKey::load_or_create(&path)?, (key, false));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_or_create(path: impl AsRef<Path>) -> Result<(Self, bool), TenantKeyError> {
        use std::os::unix::fs::OpenOptionsExt;
        let path = path.as_ref();
        let key = Self::generate();
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        match created {
            Ok(mut file) => {
                let written = writeln!(file, "{}", key.to_hex()).and_then(|()| file.sync_all());
                written.map_err(|source| TenantKeyError::Create {
                    path: path.to_owned(),
                    source,
                })?;
                Ok((key, true))
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok((Self::from_file(path)?, false))
            }
            Err(source) => Err(TenantKeyError::Create {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// The key in hexadecimal, as the key file holds it. Handle with care: this is the secret.
    ///
    /// ```
    /// # use rls_tenancy::TenantKey;
    /// assert_eq!(TenantKey::generate().to_hex().len(), 64);
    /// ```
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    /// The key's id: the first 16 hex digits of its SHA-256. It names the key in the
    /// database and in reports; it reveals nothing of the key.
    ///
    /// ```
    /// # use rls_tenancy::TenantKey;
    /// let key = TenantKey::generate();
    /// assert!(key.id().chars().all(|c| c.is_ascii_hexdigit()));
    /// ```
    pub fn id(&self) -> String {
        hex::encode(&Sha256::digest(self.bytes)[..8])
    }

    /// HMAC-SHA256's inner and outer blocks (the key XOR ipad, the key XOR opad), which the
    /// database stores instead of the key: HMAC(m) = SHA-256(outer || SHA-256(inner || m)).
    #[cfg(any(feature = "migrate", test))]
    pub(crate) fn blocks(&self) -> ([u8; BLOCK], [u8; BLOCK]) {
        let mut inner = [0x36u8; BLOCK];
        let mut outer = [0x5cu8; BLOCK];
        for (i, byte) in self.bytes.iter().enumerate() {
            inner[i] ^= byte;
            outer[i] ^= byte;
        }
        (inner, outer)
    }

    /// The hex HMAC-SHA256 of `message` under this key.
    pub(crate) fn sign(&self, message: &str) -> String {
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&self.bytes)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(message.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

impl fmt::Debug for TenantKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantKey").field("id", &self.id()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_blocks_give_the_same_hmac_as_the_key() {
        let key = TenantKey::generate();
        let (inner, outer) = key.blocks();
        let message = "v1|app.tenant_id|7|42|1000";
        let inner_hash = Sha256::digest([&inner[..], message.as_bytes()].concat());
        let by_blocks = Sha256::digest([&outer[..], &inner_hash[..]].concat());
        assert_eq!(hex::encode(by_blocks), key.sign(message));
        assert_ne!(key.sign(message), TenantKey::generate().sign(message));
    }

    #[test]
    fn a_file_without_a_key_is_refused() {
        let dir = tempfile_dir();
        let path = dir.join("bad.key");
        std::fs::write(&path, "not a key")
            .map_err(|e| e.to_string())
            .ok();
        assert!(matches!(
            TenantKey::from_file(&path),
            Err(TenantKeyError::Malformed { .. })
        ));
        std::fs::write(&path, "ab".repeat(31)).ok();
        assert!(matches!(
            TenantKey::from_file(&path),
            Err(TenantKeyError::Malformed { .. })
        ));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn a_created_key_file_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile_dir();
        let path = dir.join("tenant.key");
        let created = TenantKey::load_or_create(&path).map(|(_, created)| created);
        assert!(matches!(created, Ok(true)));
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
        std::fs::remove_dir_all(dir).ok();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "rls-key-test-{}-{}",
            std::process::id(),
            TenantKey::generate().id()
        ));
        std::fs::create_dir_all(&dir).ok();
        dir
    }
}
