-- Variant for measuring, not for use: the policies read the secret setting through a view
-- instead of calling tenant(). A view reads its tables with its owner's rights, so the view
-- (owned by the deploy role) reads the secret setting's name from rls_tenancy_secret.token_key,
-- which the runtime role cannot read, and returns only the setting's value; the policy accepts
-- the variable while it equals what enter() put there, as tenant() does. No function call a
-- table; a one-row scan instead. (A view that is not security_invoker is what Supabase's
-- splinter flags as a "security definer view".)
--   SIGNED_SQL=benches/signed_variants/view_policies.sql benches/signed_context_instructions.sh
CREATE OR REPLACE VIEW rls_tenancy.entered AS
SELECT current_setting(t.setting, true) AS entered FROM rls_tenancy_secret.token_key t;
GRANT SELECT ON rls_tenancy.entered TO PUBLIC;
DO $$ DECLARE t text; BEGIN
  FOREACH t IN ARRAY ARRAY['users', 'projects', 'tasks', 'subtasks'] LOOP
    EXECUTE format('ALTER POLICY tenant_isolation ON app.%I
      USING (account_id = (SELECT nullif(current_setting(''app.tenant_id'', true), '''') FROM rls_tenancy.entered e WHERE e.entered = ''app.tenant_id|'' || current_setting(''app.tenant_id'', true))::bigint)
      WITH CHECK (account_id = (SELECT nullif(current_setting(''app.tenant_id'', true), '''') FROM rls_tenancy.entered e WHERE e.entered = ''app.tenant_id|'' || current_setting(''app.tenant_id'', true))::bigint)', t);
  END LOOP; END $$;
