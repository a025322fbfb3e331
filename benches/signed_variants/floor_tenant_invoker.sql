-- Variant for measuring, not for use: floor.sql with tenant() an ordinary (SECURITY INVOKER,
-- unpinned) function, to count what the definer switch and the pinned search_path cost in the
-- three tenant() calls a page statement makes.
--   SIGNED_SQL=benches/signed_variants/floor_tenant_invoker.sql benches/signed_context_instructions.sh
\ir floor.sql
CREATE OR REPLACE FUNCTION rls_tenancy.tenant(variable text)
    RETURNS text LANGUAGE plpgsql STABLE
AS $$
BEGIN
    RETURN nullif(current_setting(variable, true), '');
END
$$;
