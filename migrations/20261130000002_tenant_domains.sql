-- Tenants' own domains, as the schema-per-tenant tools model them: one row per full domain
-- name, naming its tenant, at most one primary domain per tenant. A request whose host is
-- listed here is that tenant's (routing by full domain, beside routing by subdomain).
-- Routing data like the registry: the runtime role may read it and never writes it; the
-- domain is public (it is in DNS), the tenant's rows are not here.
CREATE TABLE app.domains (
    domain     text PRIMARY KEY
               CHECK (length(domain) <= 253
                      AND domain ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$'),
    account_id bigint NOT NULL REFERENCES app.accounts (id) ON DELETE CASCADE,
    is_primary boolean NOT NULL DEFAULT false
);
CREATE INDEX domains_account_idx ON app.domains (account_id);
CREATE UNIQUE INDEX domains_one_primary_idx ON app.domains (account_id) WHERE is_primary;
