#!/usr/bin/env bash
# Benchmark of the schema strategy's migrations, in one run on the local server:
#   1. `rls-migrate --strategy schema` creating N tenant schemas (tables, policies, grants);
#   2. adding one column across the N schemas: `rls-migrate --strategy schema` with one more
#      tenant migration against psql running the same DDL for the same N schemas from one
#      script (one statement, one commit per schema, as rls-migrate commits per schema);
#   3. `rls-migrate --strategy schema` with nothing to apply.
# Prints the times and the ratio. A figure, not a test: nothing here asserts.
#
#   benches/schemas.sh                 # 2000 tenant schemas
#   TENANTS=200 benches/schemas.sh     # quicker
#
# Needs a PostgreSQL superuser at $ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres,
# loopback only) and psql. Creates a fresh database with its own deploy and runtime roles and
# drops everything on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

TENANTS="${TENANTS:-2000}"
JOBS="${JOBS:-4}"
ADMIN_URL="${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
case "$ADMIN_URL" in
  *@127.0.0.1[:/]* | *@localhost[:/]* | *@\[::1\][:/]*) ;;
  *) echo "benches/schemas.sh: ADMIN_URL must point at a loopback server" >&2; exit 2 ;;
esac
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rls-tenancy/target}"

cargo build --release --quiet --bin rls-migrate
BIN="$CARGO_TARGET_DIR/release"

tag="rls_schemas_$$"
deploy="${tag}_deploy"
runtime="${tag}_runtime"
password="$(head -c 32 /dev/urandom | md5sum | cut -c1-24)"
db="${tag}_db"
work="$(mktemp -d)"
server="${ADMIN_URL%/*}"
hostport="${server#*@}"
deploy_url="postgres://$deploy:$password@$hostport/$db"
as_admin() { psql "$ADMIN_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }

cleanup() {
  as_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
    -c "DROP ROLE IF EXISTS $runtime" -c "DROP ROLE IF EXISTS $deploy" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

as_admin \
  -c "CREATE ROLE $deploy LOGIN PASSWORD '$password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS" \
  -c "CREATE ROLE $runtime LOGIN PASSWORD '$password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOBYPASSRLS" \
  -c "CREATE DATABASE $db OWNER $deploy" -c "REVOKE ALL ON DATABASE $db FROM PUBLIC" \
  -c "GRANT CONNECT ON DATABASE $db TO $runtime"

now() { date +%s.%N; }
migrate() {
  RUST_LOG=warn DEPLOY_DATABASE_URL="$deploy_url" "$BIN/rls-migrate" --strategy schema \
    --runtime-role "$runtime" --tenant-key-file "$work/tenant.key" --jobs "$JOBS" "$@" >"$work/migrate.out"
  tail -1 "$work/migrate.out"
}

RUST_LOG=warn DEPLOY_DATABASE_URL="$deploy_url" "$BIN/rls-migrate" --runtime-role "$runtime" \
  --tenant-key-file "$work/tenant.key" >/dev/null
psql "$deploy_url" -X -q -v ON_ERROR_STOP=1 -c \
  "INSERT INTO app.accounts (slug, name, schema_name)
     SELECT 'tenant-' || n, 'Tenant ' || n, 'tenant_' || n FROM generate_series(1, $TENANTS) AS n"

echo "== rls-migrate --strategy schema --jobs $JOBS: creating $TENANTS tenant schemas"
start="$(now)"
migrate
create_seconds="$(echo "$(now) - $start" | bc)"

mkdir "$work/tenant"
cp migrations/tenant/*.sql "$work/tenant/"
echo "ALTER TABLE subtasks ADD COLUMN priority integer;" >"$work/tenant/29991231000001_add_priority.sql"

echo "== rls-migrate --strategy schema --jobs $JOBS: adding one column across $TENANTS schemas"
start="$(now)"
migrate --tenant-migrations "$work/tenant"
add_seconds="$(echo "$(now) - $start" | bc)"

echo "== psql: the same DDL for the same $TENANTS schemas from one script (a commit per schema)"
psql "$deploy_url" -X -Atq -c "SELECT format('ALTER TABLE %I.subtasks ADD COLUMN priority_psql integer;', schema_name)
                                 FROM app.accounts ORDER BY id" >"$work/psql.sql"
start="$(now)"
psql "$deploy_url" -X -q -v ON_ERROR_STOP=1 -f "$work/psql.sql"
psql_seconds="$(echo "$(now) - $start" | bc)"

echo "== rls-migrate --strategy schema --jobs $JOBS: nothing to apply"
start="$(now)"
migrate --tenant-migrations "$work/tenant"
noop_seconds="$(echo "$(now) - $start" | bc)"

printf '\n%-52s %8.2f s\n' "rls-migrate: create $TENANTS tenant schemas" "$create_seconds"
printf '%-52s %8.2f s\n' "rls-migrate: add one column across $TENANTS schemas" "$add_seconds"
printf '%-52s %8.2f s\n' "psql: the same DDL, same schemas, one script" "$psql_seconds"
printf '%-52s %8.2f x\n' "ratio rls-migrate / psql" "$(echo "$add_seconds / $psql_seconds" | bc -l)"
printf '%-52s %8.2f s\n' "rls-migrate: nothing to apply ($TENANTS schemas)" "$noop_seconds"
