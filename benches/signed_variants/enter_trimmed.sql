-- Variant for measuring, not for use: enter() trimmed as far as it goes. The key installed at
-- the time this runs is folded into the body as constants (no key read; a key installed or
-- retired later would not be seen until the function is created again), every check is one
-- IF (one error message for all), and the signature is compared directly, not as hashes
-- (not constant-time). tenant() and the policies unchanged.
--   SIGNED_SQL=benches/signed_variants/enter_trimmed.sql benches/signed_context_instructions.sh
DO $do$
DECLARE kid text; inner_hex text; outer_hex text;
BEGIN
SELECT k.key_id, encode(k.inner_block, 'hex'), encode(k.outer_block, 'hex') INTO kid, inner_hex, outer_hex FROM rls_tenancy_secret.tenant_keys k LIMIT 1;
EXECUTE format($f$
CREATE OR REPLACE FUNCTION rls_tenancy.enter(variable text, tenant text, key_id text, nonce bigint,
                                             issued_ms bigint, signature text)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ignored text;
BEGIN
    IF key_id IS NOT DISTINCT FROM %L
       AND signature = encode(sha256(%L::bytea || sha256(%L::bytea || convert_to(
               concat_ws('|', 'v1', variable, tenant, nonce, issued_ms), 'UTF8'))), 'hex')
       AND statement_timestamp() = transaction_timestamp()
       AND abs(extract(epoch FROM statement_timestamp()) * 1000 - issued_ms) <= 10000
       AND pg_try_advisory_xact_lock(nonce) THEN
        ignored := set_config(variable, tenant, true);
        ignored := set_config(rls_tenancy_secret.entered_setting(), variable || '|' || tenant, true);
        RETURN true;
    END IF;
    RAISE EXCEPTION 'refused' USING ERRCODE = '28000';
END
$$;$f$, kid, '\x' || outer_hex, '\x' || inner_hex);
END
$do$;
