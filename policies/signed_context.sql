-- The signed tenant context, installed by rls-migrate (--tenant-context signed, the default)
-- as the deploy role, in the same transaction as the policies. See the README's threat model.
--
-- The runtime role may call rls_tenancy.enter() and rls_tenancy.tenant(); it can neither read
-- rls_tenancy_secret (no USAGE) nor change either schema (the deploy role owns them).
--
-- enter(variable, tenant, key_id, nonce, issued_ms, signature), called by the tenant pool in
-- the one message that begins the transaction, checks the application's HMAC-SHA256 over
-- 'v1|variable|tenant|nonce|issued_ms' with the installed key key_id, that it is called in
-- the message that began the transaction, that issued_ms is within 10 s of the server's
-- clock, and that no other transaction holds the nonce; then sets the variable and a token,
-- an HMAC over the tenant, the backend and the transaction's start, with a key that never
-- leaves the database. tenant(variable), called by every policy as an initplan, returns the
-- variable's value only while the token matches: set_config, SET or RESET by any SQL inside
-- the transaction yields NULL, so no row.
CREATE SCHEMA IF NOT EXISTS rls_tenancy;
CREATE SCHEMA IF NOT EXISTS rls_tenancy_secret;
REVOKE ALL ON SCHEMA rls_tenancy FROM PUBLIC;
REVOKE ALL ON SCHEMA rls_tenancy_secret FROM PUBLIC;

-- The application's keys, as HMAC-SHA256's padded blocks (key XOR ipad, key XOR opad).
CREATE TABLE IF NOT EXISTS rls_tenancy_secret.tenant_keys (
    key_id text PRIMARY KEY CHECK (key_id ~ '^[0-9a-f]{16}$'),
    inner_block bytea NOT NULL CHECK (length(inner_block) = 64),
    outer_block bytea NOT NULL CHECK (length(outer_block) = 64),
    installed_at timestamptz NOT NULL DEFAULT now()
);
-- The database's own key for the per-transaction token: one row, never sent anywhere.
CREATE TABLE IF NOT EXISTS rls_tenancy_secret.token_key (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    inner_block bytea NOT NULL CHECK (length(inner_block) = 64),
    outer_block bytea NOT NULL CHECK (length(outer_block) = 64)
);
REVOKE ALL ON ALL TABLES IN SCHEMA rls_tenancy_secret FROM PUBLIC;

CREATE OR REPLACE FUNCTION rls_tenancy_secret.hmac(inner_block bytea, outer_block bytea, message text)
    RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT
    RETURN pg_catalog.sha256(outer_block || pg_catalog.sha256(inner_block || pg_catalog.convert_to(message, 'UTF8')));

CREATE OR REPLACE FUNCTION rls_tenancy_secret.token(variable text, tenant text)
    RETURNS bytea
    LANGUAGE sql STABLE STRICT
    RETURN (SELECT rls_tenancy_secret.hmac(k.inner_block, k.outer_block,
                       pg_catalog.concat_ws('|', variable, tenant, pg_catalog.pg_backend_pid(),
                           extract(epoch FROM pg_catalog.transaction_timestamp()) * 1000000))
              FROM rls_tenancy_secret.token_key k);
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA rls_tenancy_secret FROM PUBLIC;

CREATE OR REPLACE FUNCTION rls_tenancy.enter(variable text, tenant text, key_id text, nonce bigint,
                                             issued_ms bigint, signature text)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key rls_tenancy_secret.tenant_keys;
    expected bytea;
BEGIN
    SELECT * INTO key FROM rls_tenancy_secret.tenant_keys k WHERE k.key_id = enter.key_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant context refused: key % is not installed in this database', enter.key_id
            USING ERRCODE = '28000',
                  HINT = 'run rls-migrate --tenant-key-file with the key file the application reads';
    END IF;
    expected := rls_tenancy_secret.hmac(key.inner_block, key.outer_block,
                    concat_ws('|', 'v1', variable, tenant, nonce, issued_ms));
    -- Compared as hashes, so the time a comparison takes tells nothing about the signature.
    IF signature IS NULL OR signature !~ '^[0-9a-f]{64}$'
       OR sha256(decode(signature, 'hex')) <> sha256(expected) THEN
        RAISE EXCEPTION 'tenant context refused: the signature does not verify'
            USING ERRCODE = '28000';
    END IF;
    IF statement_timestamp() <> transaction_timestamp() THEN
        RAISE EXCEPTION 'tenant context refused: it must be entered in the message that begins the transaction'
            USING ERRCODE = '28000';
    END IF;
    IF abs(extract(epoch FROM statement_timestamp()) * 1000 - issued_ms) > 10000 THEN
        RAISE EXCEPTION 'tenant context refused: signed % ms away from the database''s clock (at most 10 s)',
                (extract(epoch FROM statement_timestamp()) * 1000 - issued_ms)::bigint
            USING ERRCODE = '28000',
                  HINT = 'synchronise the clocks of the application and database hosts (NTP)';
    END IF;
    IF NOT pg_try_advisory_xact_lock(nonce) THEN
        RAISE EXCEPTION 'tenant context refused: its nonce is in use by another transaction'
            USING ERRCODE = '28000';
    END IF;
    PERFORM set_config(variable, tenant, true),
            set_config('rls_tenancy.token', encode(rls_tenancy_secret.token(variable, tenant), 'hex'), true);
    RETURN true;
END
$$;

-- PL/pgSQL, with the token's HMAC written out: its statements' plans are kept for the
-- session, where an SQL function would be planned again in every statement that calls it.
CREATE OR REPLACE FUNCTION rls_tenancy.tenant(variable text)
    RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tenant text := nullif(current_setting(variable, true), '');
    token text := current_setting('rls_tenancy.token', true);
    expected bytea;
BEGIN
    IF tenant IS NULL OR token IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT sha256(k.outer_block || sha256(k.inner_block || convert_to(
               concat_ws('|', variable, tenant, pg_backend_pid(),
                         extract(epoch FROM transaction_timestamp()) * 1000000), 'UTF8')))
      INTO expected
      FROM rls_tenancy_secret.token_key k;
    -- Compared as hashes, so the time a comparison takes tells nothing about the token.
    IF sha256(convert_to(token, 'UTF8')) = sha256(convert_to(encode(expected, 'hex'), 'UTF8')) THEN
        RETURN tenant;
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA rls_tenancy FROM PUBLIC;
