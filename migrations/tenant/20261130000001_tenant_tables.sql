-- The tenant tables of one tenant's own schema (strategy = "schema"). rls-migrate runs this
-- directory once per tenant schema with search_path set to that schema, so names are left
-- unqualified; the registry lives in the shared schema app. Each table keeps the tenant
-- column and gets the same forced row-level security policy as in the RLS mode: search_path
-- chooses the schema, the policy is the wall.
--
-- No foreign key into the shared registry (app.accounts): each one puts two referential
-- triggers on the registry table, so 2,000 tenants would give it 8,000 triggers that every
-- registry write reloads and fires (measured: a registry insert grew to 30-60 ms, and every
-- `rls-tenant create` with it). A tenant's rows live in its own schema and go when it goes;
-- the policy's WITH CHECK keeps the tenant column equal to the transaction's tenant.

CREATE TABLE users (
    account_id  bigint NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    email       text NOT NULL,
    first_name  text NOT NULL,
    last_name   text NOT NULL,
    password    text NOT NULL,
    is_active   boolean NOT NULL DEFAULT true,
    date_joined timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, id),
    UNIQUE (account_id, email)
);

CREATE TABLE projects (
    account_id bigint NOT NULL,
    id         bigint GENERATED ALWAYS AS IDENTITY,
    name       text NOT NULL,
    details    text NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, id)
);

CREATE TABLE tasks (
    account_id  bigint NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    project_id  bigint NOT NULL,
    name        varchar(200) NOT NULL,
    is_complete boolean NOT NULL DEFAULT false,
    details     text NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, project_id) REFERENCES projects (account_id, id) ON DELETE CASCADE
);
CREATE INDEX tasks_account_project_idx ON tasks (account_id, project_id);

CREATE TABLE subtasks (
    account_id  bigint NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    task_id     bigint NOT NULL,
    name        varchar(200) NOT NULL,
    is_complete boolean NOT NULL DEFAULT false,
    details     text NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, task_id) REFERENCES tasks (account_id, id) ON DELETE CASCADE
);
CREATE INDEX subtasks_account_task_idx ON subtasks (account_id, task_id);
CREATE INDEX subtasks_account_name_idx ON subtasks (account_id, name, id);
