-- The tenant isolation policy, installed on each table declared in policies/tenancy.toml.
-- Placeholders are filled by rls-migrate with validated, quoted identifiers and literals:
--   :key_type  the declaration's key type (bigint or uuid)
--   :table     the schema-qualified table
--   :column    the tenant column
--   :tenant    the tenant: in the signed context (the default) (SELECT rls_tenancy.tenant(:variable)),
--              evaluated once per statement, NULL unless the application signed the tenant
--              (policies/signed_context.sql); in the plain context
--              nullif(current_setting(:variable, true), '')
--   :variable  the tenant setting name as a string literal (default 'app.tenant_id')
-- With the setting unset (NULL) or reverted to '' the predicate is NULL: no row is visible
-- and every write is refused. The setting is only ever set transaction-locally.
ALTER TABLE :table ENABLE ROW LEVEL SECURITY;
ALTER TABLE :table FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON :table AS PERMISSIVE FOR ALL TO PUBLIC
    USING (:column = :tenant:::key_type)
    WITH CHECK (:column = :tenant:::key_type);
