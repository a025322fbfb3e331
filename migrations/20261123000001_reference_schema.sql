-- The reference schema, made safer: every tenant table carries account_id, children point at
-- their parent through (account_id, parent_id) so a row can never reference another tenant,
-- and uniqueness is per tenant. Row-level security is installed by rls-migrate from policies/.

CREATE SCHEMA IF NOT EXISTS app;

-- The tenant registry: routing data (slug -> id), not tenant data. The runtime role may read
-- its routing columns only; it is never written by the runtime role.
CREATE TABLE app.accounts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug       text NOT NULL UNIQUE
               CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$' AND substr(slug, 3, 2) <> '--'),
    name       text NOT NULL,
    is_active  boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE app.users (
    account_id  bigint NOT NULL REFERENCES app.accounts (id),
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

CREATE TABLE app.projects (
    account_id bigint NOT NULL REFERENCES app.accounts (id),
    id         bigint GENERATED ALWAYS AS IDENTITY,
    name       text NOT NULL,
    details    text NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, id)
);

CREATE TABLE app.tasks (
    account_id  bigint NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    project_id  bigint NOT NULL,
    name        varchar(200) NOT NULL,
    is_complete boolean NOT NULL DEFAULT false,
    details     text NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, project_id) REFERENCES app.projects (account_id, id) ON DELETE CASCADE
);
CREATE INDEX tasks_account_project_idx ON app.tasks (account_id, project_id);

CREATE TABLE app.subtasks (
    account_id  bigint NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    task_id     bigint NOT NULL,
    name        varchar(200) NOT NULL,
    is_complete boolean NOT NULL DEFAULT false,
    details     text NOT NULL DEFAULT '',
    PRIMARY KEY (account_id, id),
    FOREIGN KEY (account_id, task_id) REFERENCES app.tasks (account_id, id) ON DELETE CASCADE
);
CREATE INDEX subtasks_account_task_idx ON app.subtasks (account_id, task_id);
-- Serves the demo's page query: one tenant's subtasks ordered by name, 10 a page.
CREATE INDEX subtasks_account_name_idx ON app.subtasks (account_id, name, id);
