-- The database per tenant strategy (strategy = "database"): the registry names each tenant's
-- server and database. NULL in the other modes. Routing data, like the slug: the runtime role
-- may read both when the declaration's strategy is "database". A database is named once per
-- server; the names are the ones ServerName and DatabaseName accept.
ALTER TABLE app.accounts
    ADD COLUMN server_name text
        CHECK (server_name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    ADD COLUMN database_name text
        CHECK (database_name ~ '^[a-z_][a-z0-9_]{0,62}$'
               AND database_name NOT IN ('postgres', 'template0', 'template1')),
    ADD CONSTRAINT accounts_database_placed CHECK ((server_name IS NULL) = (database_name IS NULL)),
    ADD CONSTRAINT accounts_server_database_key UNIQUE (server_name, database_name);
