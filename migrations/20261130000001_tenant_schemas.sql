-- The schema per tenant strategy (strategy = "schema"): the registry names each tenant's own
-- schema. NULL in the RLS mode, where every tenant lives in schema app. Routing data, like
-- the slug: the runtime role may read it when the declaration's strategy is "schema".
ALTER TABLE app.accounts
    ADD COLUMN schema_name text UNIQUE
        CHECK (schema_name ~ '^[a-z_][a-z0-9_]{0,62}$'
               AND schema_name NOT IN ('public', 'information_schema', 'app')
               AND schema_name NOT LIKE 'pg\_%');
