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
-- clock, and that no other transaction holds the nonce; then sets the variable and, for the
-- transaction only (is_local), a second setting whose *name* is the secret: derived from a
-- key that never leaves the database, it is known to these two functions only. Settings
-- nobody defined ("placeholders") are not listed by pg_settings or SHOW ALL, so SQL running
-- as the runtime role can neither find nor set it. tenant(variable), called by every policy
-- as an initplan, returns the variable's value only while it equals what enter() put in the
-- secret setting: set_config, SET or RESET by any SQL inside the transaction yields NULL, so
-- no row. Checking it reads no table and hashes nothing (the name is read once a session,
-- see entered_setting()); nothing is written, so it works on a hot standby and keeps read
-- transactions read-only.
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
-- The database's own key: one row, never sent anywhere; `setting` is the name of the secret
-- setting, 256 bits derived from the key.
CREATE TABLE IF NOT EXISTS rls_tenancy_secret.token_key (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    inner_block bytea NOT NULL CHECK (length(inner_block) = 64),
    outer_block bytea NOT NULL CHECK (length(outer_block) = 64)
);
ALTER TABLE rls_tenancy_secret.token_key ADD COLUMN IF NOT EXISTS setting text
    GENERATED ALWAYS AS ('rls_tenancy.c' || encode(sha256(inner_block || outer_block), 'hex')) STORED;
REVOKE ALL ON ALL TABLES IN SCHEMA rls_tenancy_secret FROM PUBLIC;


-- The deploy role's HMAC-SHA256 (seeding and fixtures sign in the database with the installed
-- key). STABLE like convert_to, so that the planner inlines it into the calling statement.
CREATE OR REPLACE FUNCTION rls_tenancy_secret.hmac(inner_block bytea, outer_block bytea, message text)
    RETURNS bytea
    LANGUAGE sql STABLE STRICT
    RETURN pg_catalog.sha256(outer_block || pg_catalog.sha256(inner_block || pg_catalog.convert_to(message, 'UTF8')));
-- The name of the secret setting. Declared IMMUTABLE, which the row is (rls-migrate inserts
-- it once and never changes it), so that the planner folds the call into the cached plans of
-- enter() and tenant(): one read a session instead of one a call (the read, three times a
-- statement on a three-table page, cost ~15 % of the page's rate). It runs as the deploy role
-- inside those two functions; the runtime role can neither call it nor see a plan.
CREATE OR REPLACE FUNCTION rls_tenancy_secret.entered_setting()
    RETURNS text
    LANGUAGE sql IMMUTABLE
    RETURN (SELECT t.setting FROM rls_tenancy_secret.token_key t);
-- The per-transaction token of earlier versions, replaced by the secret setting.
DROP FUNCTION IF EXISTS rls_tenancy_secret.token(text, text);
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA rls_tenancy_secret FROM PUBLIC;

-- PL/pgSQL, whose statements' plans are kept for the session, with the HMAC written out: an
-- SQL function called from PL/pgSQL would be planned again in every transaction. An accepted
-- entry costs one IF; a refused one is checked again, step by step, to say why.
CREATE OR REPLACE FUNCTION rls_tenancy.enter(variable text, tenant text, key_id text, nonce bigint,
                                             issued_ms bigint, signature text)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    expected text;
    ignored text;
BEGIN
    SELECT encode(sha256(k.outer_block || sha256(k.inner_block || convert_to(
               concat_ws('|', 'v1', variable, tenant, nonce, issued_ms), 'UTF8'))), 'hex')
      INTO expected
      FROM rls_tenancy_secret.tenant_keys k
     WHERE k.key_id = enter.key_id;
    -- The signature is compared through a keyed 64-bit hash first: the time that takes depends
    -- on the texts' lengths only, so the time of a refusal tells nothing of how much of a guess
    -- was right. The texts themselves are compared only when the hashes agree, which a wrong
    -- signature does once in 2^64. The seed derives from the database's own key and is folded
    -- into the plan. No regular expression or decode() checks the signature's form first.
    IF hashtextextended(signature, hashtextextended(rls_tenancy_secret.entered_setting(), 0))
           = hashtextextended(expected, hashtextextended(rls_tenancy_secret.entered_setting(), 0))
       AND signature = expected
       AND statement_timestamp() = transaction_timestamp()
       AND abs(date_part('epoch', statement_timestamp()) * 1000 - issued_ms) <= 10000
       AND pg_try_advisory_xact_lock(nonce) THEN
        -- Assignments, not PERFORM: simple expressions, evaluated without the executor.
        ignored := set_config(variable, tenant, true);
        ignored := set_config(rls_tenancy_secret.entered_setting(), variable || '|' || tenant, true);
        RETURN true;
    END IF;
    IF expected IS NULL THEN
        RAISE EXCEPTION 'tenant context refused: key % is not installed in this database', enter.key_id
            USING ERRCODE = '28000',
                  HINT = 'run rls-migrate --tenant-key-file with the key file the application reads';
    END IF;
    IF NOT coalesce(hashtextextended(signature, hashtextextended(rls_tenancy_secret.entered_setting(), 0))
                        = hashtextextended(expected, hashtextextended(rls_tenancy_secret.entered_setting(), 0))
                    AND signature = expected, false) THEN
        RAISE EXCEPTION 'tenant context refused: the signature does not verify'
            USING ERRCODE = '28000';
    END IF;
    IF statement_timestamp() <> transaction_timestamp() THEN
        RAISE EXCEPTION 'tenant context refused: it must be entered in the message that begins the transaction'
            USING ERRCODE = '28000';
    END IF;
    IF abs(date_part('epoch', statement_timestamp()) * 1000 - issued_ms) > 10000 THEN
        RAISE EXCEPTION 'tenant context refused: signed % ms away from the database''s clock (at most 10 s)',
                (date_part('epoch', statement_timestamp()) * 1000 - issued_ms)::bigint
            USING ERRCODE = '28000',
                  HINT = 'synchronise the clocks of the application and database hosts (NTP)';
    END IF;
    RAISE EXCEPTION 'tenant context refused: its nonce is in use by another transaction'
        USING ERRCODE = '28000';
END
$$;

-- Two settings and a comparison: no table read (entered_setting() is folded into the plan),
-- no hashing.
CREATE OR REPLACE FUNCTION rls_tenancy.tenant(variable text)
    RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tenant text := nullif(current_setting(variable, true), '');
BEGIN
    IF tenant IS NULL THEN
        RETURN NULL;
    END IF;
    IF current_setting(rls_tenancy_secret.entered_setting(), true) = variable || '|' || tenant THEN
        RETURN tenant;
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA rls_tenancy FROM PUBLIC;
