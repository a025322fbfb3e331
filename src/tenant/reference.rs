//! [`TenantRef`]: a tenant named in a job payload.

use serde::{Deserialize, Serialize};

use super::{TenantId, TenantScope};

/// A serializable reference to a tenant, for job payloads and messages: only the tenant's
/// id, which never changes (a slug may). It grants nothing by itself: a worker resolves it
/// through the registry again (`TenantRegistry::resolve_id`, which refuses an unknown or
/// inactive tenant), then runs the job in that scope.
///
/// Serialized as `{"id": 7}` (a UUID-keyed tenant as `{"id": "6f1c…"}`); deserializing
/// holds the id to the same strict rules as parsing.
///
/// ```
/// use rls_tenancy::{TenantId, TenantRef, TenantScope};
/// let scope = TenantScope::new(TenantId::new(7)?, "acme".parse()?);
/// let payload = serde_json::to_string(&TenantRef::from(&scope))?;
/// assert_eq!(payload, r#"{"id":7}"#);
/// let back: TenantRef = serde_json::from_str(&payload)?;
/// assert_eq!(back.id(), scope.id());
/// assert!(serde_json::from_str::<TenantRef>(r#"{"id":0}"#).is_err());
/// assert!(serde_json::from_str::<TenantRef>(r#"{"id":7,"slug":"acme"}"#).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A worker:
///
/// ```no_run
/// use rls_tenancy::{TenantPool, TenantRef, TenantRegistry};
/// #[derive(serde::Deserialize)]
/// struct Job { tenant: TenantRef, project: i64 }
/// # async fn work(pool: TenantPool, registry: TenantRegistry, payload: &str) -> rls_tenancy::Result<()> {
/// let job: Job = serde_json::from_str(payload).map_err(std::io::Error::other)?;
/// let scope = registry.resolve_id(job.tenant.id()).await?;
/// scope
///     .scope(async {
///         let mut tx = pool.begin_current().await?;
///         // ... the job's statements, in the job's tenant only
///         tx.commit().await?;
///         Ok::<_, rls_tenancy::Error>(())
///     })
///     .await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantRef {
    id: TenantId,
}

impl TenantRef {
    /// A reference to the tenant with this id.
    ///
    /// ```
    /// # use rls_tenancy::{TenantId, TenantRef};
    /// let tenant = TenantRef::new(TenantId::new(7)?);
    /// # Ok::<(), rls_tenancy::TenantError>(())
    /// ```
    pub fn new(id: TenantId) -> Self {
        Self { id }
    }

    /// The tenant's id, to resolve through the registry.
    ///
    /// ```
    /// # use rls_tenancy::{TenantId, TenantRef};
    /// assert_eq!(TenantRef::new(TenantId::new(7)?).id(), TenantId::new(7)?);
    /// # Ok::<(), rls_tenancy::TenantError>(())
    /// ```
    pub fn id(&self) -> TenantId {
        self.id
    }
}

impl From<&TenantScope> for TenantRef {
    fn from(scope: &TenantScope) -> Self {
        Self::new(scope.id())
    }
}
