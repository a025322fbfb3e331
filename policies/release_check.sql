-- The release check, installed by rls-migrate as the deploy role in every tenant context
-- (plain or signed), with EXECUTE for the runtime role. See src/db/release.rs.
--
-- Every tenant transaction ends with one message, COMMIT; SELECT rls_tenancy.release_check(...);
-- BEGIN: after the transaction, on the same server connection, this names what the connection
-- still carries that would outlive the transaction ('' when nothing): held cursors, LISTEN
-- channels, session advisory locks, session-level settings (the watched names, compared with
-- their values on a clean connection, both given by the pool), statements prepared with SQL
-- PREPARE, temporary tables and functions, the tenant variable. Names only, never values.
--
-- PL/pgSQL keeps its statements' plans for the session: the check is parsed and planned once
-- per connection, not in every COMMIT (as an SQL text it cost ~0.5 ms of server CPU a
-- transaction, most of it planning). SECURITY INVOKER: it reads only what the session itself
-- may see of itself. Its search_path is pinned, so SQL of a tenant transaction cannot shadow
-- the catalogs it reads; the session's own search_path, which the pin hides, is passed in by
-- the caller.
--
-- The comment on the function is its version: the tenant pool refuses to open on a database
-- whose release check is missing or of another version (run rls-migrate).
CREATE SCHEMA IF NOT EXISTS rls_tenancy;
REVOKE ALL ON SCHEMA rls_tenancy FROM PUBLIC;

CREATE OR REPLACE FUNCTION rls_tenancy.release_check(variable text, session_search_path text,
                                                     names text[], clean text[])
    RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY INVOKER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cursors text;
    channels text;
    locks bigint;
    prepared text;
    settings text[];
    temp_tables text;
    temp_functions text;
BEGIN
    -- One statement, one executor run. pg_locks copies the server's whole lock table: the
    -- dearest part (~30 us), and the only witness of a session advisory lock.
    SELECT (SELECT string_agg(quote_ident(c.name), ', ') FROM pg_cursors c WHERE c.is_holdable),
           (SELECT string_agg(quote_ident(l), ', ') FROM pg_listening_channels() AS l),
           (SELECT count(*) FROM pg_locks k WHERE k.pid = pg_backend_pid() AND k.locktype = 'advisory'),
           (SELECT string_agg(quote_ident(p.name), ', ') FROM pg_prepared_statements p WHERE p.from_sql)
      INTO cursors, channels, locks, prepared;
    -- Simple expressions, evaluated without the executor.
    FOR i IN 1 .. coalesce(cardinality(names), 0) LOOP
        IF (CASE WHEN names[i] = 'search_path' THEN session_search_path
                 ELSE current_setting(names[i]) END) IS DISTINCT FROM clean[i] THEN
            settings := settings || names[i];
        END IF;
    END LOOP;
    IF pg_my_temp_schema() <> 0 THEN
        SELECT string_agg(quote_ident(c.relname), ', ') INTO temp_tables
          FROM pg_class c WHERE c.relnamespace = pg_my_temp_schema();
        SELECT string_agg(quote_ident(p.proname), ', ') INTO temp_functions
          FROM pg_proc p WHERE p.pronamespace = pg_my_temp_schema();
    END IF;
    RETURN concat_ws('; ',
        'held cursors: ' || cursors,
        'LISTEN channels: ' || channels,
        'advisory locks: ' || nullif(locks, 0),
        'session settings: ' || array_to_string(settings, ', '),
        'prepared statements: ' || prepared,
        'temporary tables: ' || temp_tables,
        'temporary functions: ' || temp_functions,
        CASE WHEN coalesce(current_setting(variable, true), '') <> '' THEN 'the tenant variable' END);
END
$$;
COMMENT ON FUNCTION rls_tenancy.release_check(text, text, text[], text[]) IS 'rls-tenancy release check 1';
REVOKE ALL ON FUNCTION rls_tenancy.release_check(text, text, text[], text[]) FROM PUBLIC;
