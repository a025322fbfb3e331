#!/usr/bin/env bash
# Benchmark of the database strategy's lifecycle and migrations, in one run on one local
# server (named "one"; every tenant database on it):
#   1. `rls-tenant --strategy database create` N times (a database cloned from the server's
#      template, its token key, CONNECT for the runtime role, the registry row), one process
#      each: median and p99, against psql running `CREATE DATABASE ... TEMPLATE` plus the same
#      REVOKE/GRANT for N other databases, one process each;
#   2. adding one column across the N tenant databases: `rls-migrate --strategy database` with
#      one more tenant migration (JOBS databases at once) against one psql script running the
#      same DDL database after database (\connect, ALTER TABLE, record);
#   3. `rls-migrate --strategy database` with nothing to apply.
# Prints the times and the ratios. A figure, not a test: nothing here asserts.
#
#   benches/databases.sh               # 200 tenant databases
#   TENANTS=2000 CREATE_JOBS=4 TIMED_CREATES=100 PSQL_CREATES=100 benches/databases.sh
#                                      # the issue's figures
#
# CREATE_JOBS (default 1) runs that many `rls-tenant create` processes at once (each still
# timed alone, but four at a time share the cores and queue on the template's lock: a fill,
# not a latency); TIMED_CREATES (default 0) then times that many more creates one at a time
# on top of the TENANTS, the latency a user sees; PSQL_CREATES (default TENANTS) is how many
# psql-made databases the create comparison times, one at a time (they are dropped right
# after it). The psql DDL script of step 2 runs on
# the tenant databases themselves (a second column of the same type), after step 3, so at
# 2,000 tenants the disk holds one set of databases, not two (each ~8 MB, and the WAL of
# their creation).
#
# Needs a PostgreSQL superuser at $ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres,
# loopback only) and psql. Creates its own roles and databases and drops everything on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

TENANTS="${TENANTS:-200}"
JOBS="${JOBS:-4}"
CREATE_JOBS="${CREATE_JOBS:-1}"
TIMED_CREATES="${TIMED_CREATES:-0}"
PSQL_CREATES="${PSQL_CREATES:-$TENANTS}"
ADMIN_URL="${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
case "$ADMIN_URL" in
  *@127.0.0.1[:/]* | *@localhost[:/]* | *@\[::1\][:/]*) ;;
  *) echo "benches/databases.sh: ADMIN_URL must point at a loopback server" >&2; exit 2 ;;
esac
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rls-tenancy/target}"
cargo build --release --quiet --bin rls-migrate --bin rls-tenant
BIN="$CARGO_TARGET_DIR/release"

tag="rls_dbs_$$"
deploy="${tag}_deploy"
runtime="${tag}_runtime"
password="$(head -c 32 /dev/urandom | md5sum | cut -c1-24)"
db="${tag}"
work="$(mktemp -d)"
server="${ADMIN_URL%/*}"
hostport="${server#*@}"
deploy_url="postgres://$deploy:$password@$hostport/$db"
as_admin() { psql "$ADMIN_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }

cleanup() {
  as_admin -At -c "SELECT quote_ident(datname) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE r.rolname = '$deploy'" 2>/dev/null |
    while read -r name; do as_admin -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true; done
  as_admin -c "DROP ROLE IF EXISTS $runtime" -c "DROP ROLE IF EXISTS $deploy" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

as_admin \
  -c "CREATE ROLE $deploy LOGIN PASSWORD '$password' NOSUPERUSER CREATEDB NOCREATEROLE NOBYPASSRLS" \
  -c "CREATE ROLE $runtime LOGIN PASSWORD '$password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOBYPASSRLS" \
  -c "CREATE DATABASE $db OWNER $deploy" -c "REVOKE ALL ON DATABASE $db FROM PUBLIC" \
  -c "GRANT CONNECT ON DATABASE $db TO $runtime"

export RLS_STRATEGY=database DEPLOY_DATABASE_URL="$deploy_url" RLS_RUNTIME_ROLE="$runtime" \
  RLS_TENANT_KEY_FILE="$work/tenant.key" RLS_SERVERS="one=postgres://$deploy:$password@$hostport/postgres"
"$BIN/rls-migrate" >/dev/null

now() { date +%s.%N; }
# median and p99 (nearest rank) of the numbers in file $1, in ms
stats() { sort -n "$1" | awk '{v[NR]=$1} END {m=v[int((NR+1)/2)]; p=v[int(NR*0.99+0.999)]; printf "median %.0f ms, p99 %.0f ms", m*1000, p*1000}'; }

echo "== 1. create $TENANTS tenant databases (one process each) =="
"$BIN/rls-tenant" create warmup >/dev/null # makes the template
: >"$work/create"
create_one() { # create_one I: one timed rls-tenant create, its seconds appended to $work/create
  local t0 t1
  t0=$(now); "$BIN/rls-tenant" create "t$1" >/dev/null 2>"$work/create.err.$1" || { cat "$work/create.err.$1" >&2; return 1; }; t1=$(now)
  echo "$t1 - $t0" | bc >>"$work/create"
}
export -f create_one now
export BIN work
seq 1 "$TENANTS" | xargs -P "$CREATE_JOBS" -I{} bash -c 'create_one {}'
echo "rls-tenant create ($CREATE_JOBS at a time): $(stats "$work/create")"
if [ "$TIMED_CREATES" -gt 0 ]; then
  : >"$work/create"
  for i in $(seq 1 "$TIMED_CREATES"); do create_one "x$i"; done
  echo "rls-tenant create on top of $TENANTS, one at a time ($TIMED_CREATES): $(stats "$work/create")"
fi
template="${db}_tenant_template"
: >"$work/psql"
for i in $(seq 1 "$PSQL_CREATES"); do
  t0=$(now)
  as_admin -c "CREATE DATABASE ${tag}_p$i OWNER $deploy TEMPLATE $template" \
    -c "REVOKE ALL ON DATABASE ${tag}_p$i FROM PUBLIC" -c "GRANT CONNECT ON DATABASE ${tag}_p$i TO $runtime"
  t1=$(now)
  echo "$t1 - $t0" | bc >>"$work/psql"
done
echo "psql CREATE DATABASE ... TEMPLATE ($PSQL_CREATES, one at a time): $(stats "$work/psql")"
for i in $(seq 1 "$PSQL_CREATES"); do as_admin -c "DROP DATABASE ${tag}_p$i" >/dev/null; done
median() { sort -n "$1" | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
printf "ratio of the medians: %.2f\n" "$(echo "$(median "$work/create") / $(median "$work/psql")" | bc -l)"

TENANTS=$(( TENANTS + TIMED_CREATES ))
echo "== 2. one column across $TENANTS tenant databases =="
mkdir "$work/tenant"
cp migrations/tenant/*.sql "$work/tenant/"
cat >"$work/tenant/29991231000001_bench_note.sql" <<'SQL'
ALTER TABLE subtasks ADD COLUMN bench_note text;
SQL
t0=$(now); "$BIN/rls-migrate" --tenant-migrations "$work/tenant" --jobs "$JOBS" >/dev/null; t1=$(now)
ours=$(echo "$t1 - $t0" | bc)

echo "== 3. nothing to apply =="
t0=$(now); "$BIN/rls-migrate" --tenant-migrations "$work/tenant" --jobs "$JOBS" >/dev/null; t1=$(now)
printf "rls-migrate, all current: %.2f s\n" "$(echo "$t1 - $t0" | bc)"

echo "== 2 (the baseline). psql, the same DDL database after database =="
# On the same tenant databases, a second column of the same type and a record of its own.
as_admin -At -c "SELECT quote_ident(datname) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
                  WHERE r.rolname = '$deploy' AND datname LIKE '${tag}_tenant_t%' ORDER BY 1" |
  while read -r name; do
    echo "\\connect $name"
    echo "BEGIN; ALTER TABLE app.subtasks ADD COLUMN bench_note_psql text;"
    echo "INSERT INTO app._rls_migrations (version, description, checksum) VALUES (29991231000002, 'bench note (psql)', '\\x00'); COMMIT;"
  done >"$work/ddl.sql"
t0=$(now); as_admin -f "$work/ddl.sql" >/dev/null; t1=$(now)
theirs=$(echo "$t1 - $t0" | bc)
printf "one column across %s databases: rls-migrate --jobs %s %.2f s; psql script %.2f s; ratio %.2f\n" \
  "$TENANTS" "$JOBS" "$ours" "$theirs" "$(echo "$ours / $theirs" | bc -l)"
