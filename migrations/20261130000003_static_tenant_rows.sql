-- Static tenants (`[[static_tenant]]` in the declaration) get a registry row from rls-migrate,
-- which knows only their slug and schema: every other registry column needs a default.
ALTER TABLE app.accounts ALTER COLUMN name SET DEFAULT '';
