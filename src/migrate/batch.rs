//! Migrating many tenant schemas a batch per transaction: what `rls-migrate --strategy schema`
//! does with the schemas that are behind, so that adding a column across thousands of schemas
//! costs a few round trips per batch instead of a handful per schema.
//!
//! One transaction per batch: one read of the batch's migration records, then one script
//! with each schema's pending migrations and their records inside a savepoint of its own,
//! then one read of the policies and one of the grants for every schema of the batch, the
//! statements that repair them, and the commit. A schema whose migrations fail is rolled back
//! to its savepoint, migrated again alone (inside a savepoint, for its error in full) and
//! reported as failed; the script goes on with the schemas after it. Should anything fail
//! past the migrations (a repair, the commit), the batch is rolled back as a whole and its
//! schemas are migrated one transaction each, so a schema's records, DDL, policies and grants
//! are always committed together or not at all.
//!
//! The batch holds the locks its DDL takes until it commits: a tenant's requests that need a
//! table being altered wait for the batch, not only for their own schema.

use std::collections::HashMap;

use sqlx::migrate::Migrator;
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};

use super::policies::{TableState, policy_fixes, table_states};
use super::records::{self, SchemaRecords};
use super::schemas::{SchemaChanges, migrate_schema, pending, prologue};
use super::{MigrateError, Result, grants};
use crate::placement::SchemaName;
use crate::policy::{Ident, TenancyDeclaration, TenantContext};

/// The most schemas one transaction migrates: their DDL's locks are held until it commits
/// (a new schema's tables, indexes and sequences: about 25 locks each).
pub(super) const MAX_BATCH: usize = 25;

/// The savepoint each schema's migrations run in.
const SAVEPOINT: &str = "rls_tenancy_schema";

/// The transaction-local setting that counts the schemas whose migrations the script has
/// finished; a savepoint rolled back takes its own schema's count back with it.
const DONE: &str = "rls_tenancy.schemas_done";

/// What migrating the tenant schemas' batch needs besides the schemas.
pub(super) struct BatchPlan<'a> {
    pub(super) migrator: &'a Migrator,
    pub(super) decl: &'a TenancyDeclaration,
    pub(super) context: &'a TenantContext,
    pub(super) runtime: &'a Ident,
}

impl BatchPlan<'_> {
    /// Migrates `schemas` (dynamic tenants' schemas, sharing the declaration's tenant tables)
    /// in one transaction, or one transaction each should the batch fail past the
    /// migrations; each schema's outcome, in order.
    pub(super) async fn migrate(
        &self,
        pool: &PgPool,
        schemas: &[&SchemaName],
    ) -> Vec<Result<SchemaChanges>> {
        match self.try_batch(pool, schemas).await {
            Ok(outcomes) => outcomes,
            Err(error) => {
                tracing::warn!(%error, schemas = schemas.len(),
                    "a batch of tenant schemas failed past its migrations; migrating them one transaction each");
                let mut outcomes = Vec::with_capacity(schemas.len());
                for schema in schemas {
                    outcomes.push(self.migrate_alone(pool, schema).await);
                }
                outcomes
            }
        }
    }

    /// One schema in its own transaction.
    pub(super) async fn migrate_alone(
        &self,
        pool: &PgPool,
        schema: &SchemaName,
    ) -> Result<SchemaChanges> {
        let mut conn = pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let changes = migrate_schema(
            &mut tx,
            self.migrator,
            self.decl,
            schema,
            self.context,
            self.runtime,
        )
        .await?;
        tx.commit().await?;
        Ok(changes)
    }

    async fn try_batch(
        &self,
        pool: &PgPool,
        schemas: &[&SchemaName],
    ) -> Result<Vec<Result<SchemaChanges>>> {
        let mut conn = pool.acquire().await?;
        let mut tx = conn.begin().await?;
        let names: Vec<&str> = schemas.iter().map(|s| s.as_str()).collect();
        let mut found = records::read(&mut tx, self.decl.schema(), &names).await?;
        // Each schema's script, or why it has none; `None` once it has its outcome.
        let mut scripts: Vec<Option<String>> = Vec::with_capacity(schemas.len());
        let mut outcomes: Vec<Option<Result<SchemaChanges>>> = Vec::with_capacity(schemas.len());
        for (i, schema) in schemas.iter().enumerate() {
            let records = found.remove(schema.as_str()).unwrap_or_default();
            match self.script(i, schema, &records) {
                Ok((script, applied)) => {
                    scripts.push(Some(script));
                    outcomes.push(Some(Ok(SchemaChanges {
                        applied,
                        ..SchemaChanges::default()
                    })));
                }
                Err(error) => {
                    scripts.push(None);
                    outcomes.push(Some(Err(error)));
                }
            }
        }
        self.run_scripts(&mut tx, schemas, &mut scripts, &mut outcomes)
            .await?;
        // The schemas whose migrations went through in the script, to repair together.
        let repaired: Vec<usize> = (0..schemas.len())
            .filter(|&i| scripts[i].is_some())
            .collect();
        let mut changes: HashMap<usize, SchemaChanges> = repaired
            .iter()
            .filter_map(|&i| match outcomes[i].take() {
                Some(Ok(changes)) => Some((i, changes)),
                _ => None,
            })
            .collect();
        let targets: Vec<&SchemaName> = repaired.iter().map(|&i| schemas[i]).collect();
        self.repair(&mut tx, &targets, &repaired, &mut changes)
            .await?;
        tx.commit().await?;
        for (i, change) in changes {
            outcomes[i] = Some(Ok(change));
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Ok(SchemaChanges::default())))
            .collect())
    }

    /// Schema number `i`'s part of the script (its savepoint, prologue, pending migrations,
    /// their records, the count of schemas done) and the versions it applies.
    fn script(
        &self,
        i: usize,
        schema: &SchemaName,
        found: &SchemaRecords,
    ) -> Result<(String, Vec<i64>)> {
        let pending = pending(self.migrator, &found.recorded)?;
        let mut parts = vec![
            format!("SAVEPOINT {SAVEPOINT}"),
            prologue(self.decl, schema, found),
        ];
        parts.extend(pending.iter().map(|m| m.sql.as_str().to_owned()));
        parts.push(records::insert_sql(self.decl.schema(), schema, &pending));
        parts.push(format!("SELECT set_config('{DONE}', '{}', true)", i + 1));
        parts.push(format!("RELEASE SAVEPOINT {SAVEPOINT}"));
        // A migration may end in a comment: each part ends on a line of its own.
        Ok((
            parts.join("\n;\n"),
            pending.iter().map(|m| m.version).collect(),
        ))
    }

    /// Sends the scripts from the first schema on; when one schema's part fails, rolls it
    /// back to its savepoint, migrates it again alone in a savepoint (its outcome, whichever
    /// it is, is final: its script is dropped) and sends the rest.
    async fn run_scripts(
        &self,
        conn: &mut PgConnection,
        schemas: &[&SchemaName],
        scripts: &mut [Option<String>],
        outcomes: &mut [Option<Result<SchemaChanges>>],
    ) -> Result<()> {
        let mut next = 0;
        while next < schemas.len() {
            let script: Vec<&str> = scripts[next..]
                .iter()
                .flatten()
                .map(String::as_str)
                .collect();
            if script.is_empty() {
                break;
            }
            let Err(error) = sqlx::raw_sql(AssertSqlSafe(script.join("\n;\n")))
                .execute(&mut *conn)
                .await
            else {
                break;
            };
            sqlx::raw_sql(AssertSqlSafe(format!(
                "ROLLBACK TO SAVEPOINT {SAVEPOINT}; RELEASE SAVEPOINT {SAVEPOINT}"
            )))
            .execute(&mut *conn)
            .await?;
            let done: String = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT coalesce(nullif(current_setting('{DONE}', true), ''), '0')"
            )))
            .fetch_one(&mut *conn)
            .await?;
            let failed = done
                .parse::<usize>()
                .ok()
                .filter(|&f| f >= next && f < schemas.len())
                .ok_or_else(|| MigrateError::Database(error))?;
            scripts[failed] = None;
            outcomes[failed] = Some(self.alone_in_savepoint(conn, schemas[failed]).await);
            next = failed + 1;
        }
        Ok(())
    }

    /// `schema` migrated the single-schema way inside a savepoint of the batch's
    /// transaction; rolled back to it on failure.
    async fn alone_in_savepoint(
        &self,
        conn: &mut PgConnection,
        schema: &SchemaName,
    ) -> Result<SchemaChanges> {
        sqlx::raw_sql(AssertSqlSafe(format!("SAVEPOINT {SAVEPOINT}")))
            .execute(&mut *conn)
            .await?;
        let outcome = migrate_schema(
            conn,
            self.migrator,
            self.decl,
            schema,
            self.context,
            self.runtime,
        )
        .await;
        let end = match outcome {
            Ok(_) => format!("RELEASE SAVEPOINT {SAVEPOINT}"),
            Err(_) => format!("ROLLBACK TO SAVEPOINT {SAVEPOINT}; RELEASE SAVEPOINT {SAVEPOINT}"),
        };
        sqlx::raw_sql(AssertSqlSafe(end))
            .execute(&mut *conn)
            .await?;
        outcome
    }

    /// Puts the policies and grants of `schemas` (numbered `indexes` in the batch) right:
    /// one read of each for all of them, then one script; what changed goes into `changes`.
    async fn repair(
        &self,
        conn: &mut PgConnection,
        schemas: &[&SchemaName],
        indexes: &[usize],
        changes: &mut HashMap<usize, SchemaChanges>,
    ) -> Result<()> {
        if schemas.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = schemas.iter().map(|s| s.as_str()).collect();
        let tables: Vec<&str> = self
            .decl
            .tenant_tables()
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        let mut states: HashMap<String, HashMap<String, TableState>> = HashMap::new();
        for (schema, table, state) in table_states(conn, &names, &tables).await? {
            states.entry(schema).or_default().insert(table, state);
        }
        let mut sql = Vec::new();
        for (schema, i) in schemas.iter().zip(indexes) {
            let (fixes, changed) = policy_fixes(
                schema.ident(),
                self.decl,
                self.context,
                states.remove(schema.as_str()).unwrap_or_default(),
            )?;
            sql.extend(fixes);
            changes.entry(*i).or_default().policies = changed;
        }
        let idents: Vec<&Ident> = schemas.iter().map(|s| s.ident()).collect();
        let mut grants =
            grants::tenant_grant_statements(conn, &idents, self.decl, self.runtime).await?;
        for (schema, i) in schemas.iter().zip(indexes) {
            let statements = grants.remove(schema.as_str()).unwrap_or_default();
            changes.entry(*i).or_default().grants = !statements.is_empty();
            sql.extend(statements);
        }
        if !sql.is_empty() {
            sqlx::raw_sql(AssertSqlSafe(sql.join(";\n")))
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}
