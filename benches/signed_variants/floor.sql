-- Variant for measuring, not for use: the signed context's structure with nothing checked.
-- enter() only sets the variable and tenant() only reads it, both still SECURITY DEFINER
-- PL/pgSQL with the pinned search_path, the policies unchanged (one initplan a table). What
-- is left is the cost of the structure the issue prescribes; the rest of the signed context's
-- cost is its checks.
--   SIGNED_SQL=benches/signed_variants/floor.sql benches/signed_context_instructions.sh
CREATE OR REPLACE FUNCTION rls_tenancy.enter(variable text, tenant text, key_id text, nonce bigint,
                                             issued_ms bigint, signature text)
    RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE ignored text;
BEGIN
    ignored := set_config(variable, tenant, true);
    RETURN true;
END
$$;
CREATE OR REPLACE FUNCTION rls_tenancy.tenant(variable text)
    RETURNS text LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN nullif(current_setting(variable, true), '');
END
$$;
