-- Variant for measuring, not for use: tenant() without the pinned search_path, every name and
-- operator schema-qualified, one expression. Its plans are made again whenever the caller's
-- search_path changes (the schema strategy changes it in every transaction), and the issue
-- asks for a fixed search_path.
--   SIGNED_SQL=benches/signed_variants/tenant_unpinned.sql benches/signed_context_instructions.sh
CREATE OR REPLACE FUNCTION rls_tenancy.tenant(variable text)
    RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
AS $$
BEGIN
    RETURN CASE WHEN pg_catalog.current_setting(rls_tenancy_secret.entered_setting(), true)
                     OPERATOR(pg_catalog.=) (variable OPERATOR(pg_catalog.||) '|'::pg_catalog.text
                         OPERATOR(pg_catalog.||) pg_catalog.current_setting(variable, true))
                    AND pg_catalog.current_setting(variable, true) OPERATOR(pg_catalog.<>) ''::pg_catalog.text
                THEN pg_catalog.current_setting(variable, true) END;
END
$$;
