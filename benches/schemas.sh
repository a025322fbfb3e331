#!/usr/bin/env bash
# Benchmark of the schema strategy's migrations, in one run on the local server:
#   1. `rls-migrate --strategy schema` creating N tenant schemas (tables, policies, grants);
#   2. adding one column across the N schemas: `rls-migrate --strategy schema` with one more
#      tenant migration against psql running the same DDL for the same N schemas from one
#      script (one statement, one commit per schema, as rls-migrate commits per schema);
#   3. `rls-migrate --strategy schema` with nothing to apply;
#   4. one server connection's memory as it runs the demo's page query in 1, 500, 1000 and
#      all N schemas (relation cache growth): the backend's memory contexts, its RssAnon and
#      its Private_Dirty;
#   5. `rls-seed --accounts N` against `rls-seed --strategy schema --accounts N` on two fresh
#      databases (SEED_ACCOUNTS, default N; SEED_ACCOUNTS=0 skips it), and step 4's memory in
#      the RLS mode: one connection running the page query for each seeded tenant.
# Prints the times and the ratios. A figure, not a test: nothing here asserts.
#
#   benches/schemas.sh                 # 2000 tenant schemas
#   TENANTS=200 benches/schemas.sh     # quicker
#   PROFILE=dev benches/schemas.sh     # the debug binaries
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

SEED_ACCOUNTS="${SEED_ACCOUNTS:-$TENANTS}"
# PROFILE=dev uses the debug build (no release build to wait for on a loaded machine; the
# figures are dominated by the server's work, the binaries only send it).
PROFILE="${PROFILE:-release}"
cargo build --profile "$PROFILE" --quiet --bin rls-migrate --bin rls-seed
BIN="$CARGO_TARGET_DIR/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")"

tag="rls_schemas_$$"
deploy="${tag}_deploy"
runtime="${tag}_runtime"
password="$(head -c 32 /dev/urandom | md5sum | cut -c1-24)"
db="${tag}_db"
seed_rls="${tag}_seed_rls"
seed_schema="${tag}_seed_schema"
work="$(mktemp -d)"
server="${ADMIN_URL%/*}"
hostport="${server#*@}"
deploy_url="postgres://$deploy:$password@$hostport/$db"
as_admin() { psql "$ADMIN_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }

cleanup() {
  as_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" \
    -c "DROP DATABASE IF EXISTS $seed_rls WITH (FORCE)" -c "DROP DATABASE IF EXISTS $seed_schema WITH (FORCE)" \
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

echo "== one connection runs the page query in each of the $TENANTS schemas: its memory"
# A backend's memory: its memory contexts, RssAnon (/proc/PID/status) and Private_Dirty
# (/proc/PID/smaps_rollup), read by the backend itself (as the superuser, who may read them).
memory_row() {
  echo "SELECT $1, (sum(total_bytes) / 1024)::bigint,
          substring(pg_read_file('/proc/' || pg_backend_pid() || '/status') from 'RssAnon:\s+(\d+) kB'),
          substring(pg_read_file('/proc/' || pg_backend_pid() || '/smaps_rollup') from 'Private_Dirty:\s+(\d+) kB')
     FROM pg_backend_memory_contexts;"
}
page_in_schema() {
  echo "SELECT count(*) FROM (SELECT s.id FROM $1.subtasks s JOIN $1.tasks t ON t.account_id = s.account_id AND t.id = s.task_id JOIN $1.projects p ON p.account_id = t.account_id AND p.id = t.project_id ORDER BY s.name, s.id LIMIT 10) AS page;"
}
page_for_tenant() {
  echo "SELECT count(*) FROM (SELECT s.id FROM app.subtasks s JOIN app.tasks t ON t.account_id = s.account_id AND t.id = s.task_id JOIN app.projects p ON p.account_id = t.account_id AND p.id = t.project_id WHERE s.account_id = $1 ORDER BY s.name, s.id LIMIT 10) AS page;"
}
# touch_sql TOTAL PAGE: PAGE's query for each line of stdin, memory rows at 0, 1, 500, 1000, TOTAL.
touch_sql() {
  local n=0 item
  memory_row 0
  while read -r item; do
    n=$((n + 1))
    "$2" "$item"
    case "$n" in 1 | 500 | 1000 | "$1") memory_row "$n" ;; esac
  done
}
psql "$deploy_url" -X -Atq -c "SELECT quote_ident(schema_name) FROM app.accounts ORDER BY id" |
  touch_sql "$TENANTS" page_in_schema >"$work/touch.sql"
# As the superuser (it may read its own /proc files); the relation cache fills the same way.
psql "${server}/${db}" -X -Atq -F ' ' -v ON_ERROR_STOP=1 -f "$work/touch.sql" | awk 'NF == 4' >"$work/memory.txt"

if [ "$SEED_ACCOUNTS" -gt 0 ]; then
  for target in "$seed_rls" "$seed_schema"; do
    as_admin -c "CREATE DATABASE $target OWNER $deploy" -c "REVOKE ALL ON DATABASE $target FROM PUBLIC" \
      -c "GRANT CONNECT ON DATABASE $target TO $runtime"
  done
  RUST_LOG=warn DEPLOY_DATABASE_URL="postgres://$deploy:$password@$hostport/$seed_rls" "$BIN/rls-migrate" \
    --runtime-role "$runtime" --tenant-key-file "$work/tenant.key" >/dev/null
  RUST_LOG=warn DEPLOY_DATABASE_URL="postgres://$deploy:$password@$hostport/$seed_schema" "$BIN/rls-migrate" \
    --strategy schema --runtime-role "$runtime" --tenant-key-file "$work/tenant.key" >/dev/null
  echo "== rls-seed --accounts $SEED_ACCOUNTS (RLS strategy)"
  start="$(now)"
  RUST_LOG=warn DEPLOY_DATABASE_URL="postgres://$deploy:$password@$hostport/$seed_rls" \
    "$BIN/rls-seed" --accounts "$SEED_ACCOUNTS" | tr '\n' ' '
  seed_rls_seconds="$(echo "$(now) - $start" | bc)"
  echo
  echo "== rls-seed --strategy schema --accounts $SEED_ACCOUNTS (a schema per account)"
  start="$(now)"
  RUST_LOG=warn DEPLOY_DATABASE_URL="postgres://$deploy:$password@$hostport/$seed_schema" \
    "$BIN/rls-seed" --strategy schema --runtime-role "$runtime" --accounts "$SEED_ACCOUNTS" | tr '\n' ' '
  seed_schema_seconds="$(echo "$(now) - $start" | bc)"
  echo
  echo "== one connection runs the page query for each of the $SEED_ACCOUNTS RLS tenants: its memory"
  psql "postgres://$deploy:$password@$hostport/$seed_rls" -X -Atq -c "SELECT id FROM app.accounts ORDER BY id" |
    touch_sql "$SEED_ACCOUNTS" page_for_tenant >"$work/touch_rls.sql"
  psql "${server}/${seed_rls}" -X -Atq -F ' ' -v ON_ERROR_STOP=1 -f "$work/touch_rls.sql" | awk 'NF == 4' >"$work/memory_rls.txt"
fi

printf '\n%-52s %8.2f s\n' "rls-migrate: create $TENANTS tenant schemas" "$create_seconds"
printf '%-52s %8.2f s\n' "rls-migrate: add one column across $TENANTS schemas" "$add_seconds"
printf '%-52s %8.2f s\n' "psql: the same DDL, same schemas, one script" "$psql_seconds"
printf '%-52s %8.2f x\n' "ratio rls-migrate / psql" "$(echo "$add_seconds / $psql_seconds" | bc -l)"
printf '%-52s %8.2f s\n' "rls-migrate: nothing to apply ($TENANTS schemas)" "$noop_seconds"

echo
echo "one connection's memory after the page query in K schemas (memory contexts, RssAnon, Private_Dirty):"
while read -r k contexts anon private; do
  printf '  %5d schemas: %8d kB in memory contexts, %8d kB RssAnon, %8d kB Private_Dirty\n' "$k" "$contexts" "$anon" "$private"
done <"$work/memory.txt"
if [ "$SEED_ACCOUNTS" -gt 0 ]; then
  echo "the same, RLS mode: the page query for K tenants in the shared tables:"
  while read -r k contexts anon private; do
    printf '  %5d tenants: %8d kB in memory contexts, %8d kB RssAnon, %8d kB Private_Dirty\n' "$k" "$contexts" "$anon" "$private"
  done <"$work/memory_rls.txt"
  printf '\n%-52s %8.2f s\n' "rls-seed --accounts $SEED_ACCOUNTS (RLS)" "$seed_rls_seconds"
  printf '%-52s %8.2f s\n' "rls-seed --strategy schema --accounts $SEED_ACCOUNTS" "$seed_schema_seconds"
  printf '%-52s %8.2f x\n' "ratio schema / RLS" "$(echo "$seed_schema_seconds / $seed_rls_seconds" | bc -l)"
fi
