#!/usr/bin/env bash
# Benchmark: `rls-seed --accounts N` against psql's `\copy` of the very same rows into the same
# indexed tables, measured in one run on the local server. Prints both times, their ratio, and
# rls-seed's peak RSS. A figure, not a test: nothing here asserts.
#
#   benches/seed.sh                 # 2000 accounts
#   ACCOUNTS=200 benches/seed.sh    # quicker
#
# Needs a PostgreSQL superuser at $ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres,
# loopback only) and psql. Creates two fresh databases with their own deploy and runtime roles
# (as the README's one-time setup does), migrates both with rls-migrate, and drops everything
# on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

ACCOUNTS="${ACCOUNTS:-2000}"
SEED="${SEED:-0}"
ADMIN_URL="${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
case "$ADMIN_URL" in
  *@127.0.0.1[:/]* | *@localhost[:/]* | *@\[::1\][:/]*) ;;
  *) echo "benches/seed.sh: ADMIN_URL must point at a loopback server" >&2; exit 2 ;;
esac
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rls-tenancy/target}"

cargo build --release --quiet --bin rls-seed --bin rls-migrate
BIN="$CARGO_TARGET_DIR/release"

tag="rls_bench_$$"
deploy="${tag}_deploy"
runtime="${tag}_runtime"
password="$(head -c 32 /dev/urandom | md5sum | cut -c1-24)"
seeded="${tag}_seeded"
copied="${tag}_copied"
work="$(mktemp -d)"
server="${ADMIN_URL%/*}"
hostport="${server#*@}"
as_admin() { psql "$ADMIN_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }

cleanup() {
  as_admin -c "DROP DATABASE IF EXISTS $seeded WITH (FORCE)" -c "DROP DATABASE IF EXISTS $copied WITH (FORCE)" \
    -c "DROP ROLE IF EXISTS $runtime" -c "DROP ROLE IF EXISTS $deploy" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

as_admin \
  -c "CREATE ROLE $deploy LOGIN PASSWORD '$password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS" \
  -c "CREATE ROLE $runtime LOGIN PASSWORD '$password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOBYPASSRLS"
for db in "$seeded" "$copied"; do
  as_admin -c "CREATE DATABASE $db OWNER $deploy" -c "REVOKE ALL ON DATABASE $db FROM PUBLIC" \
    -c "GRANT CONNECT ON DATABASE $db TO $runtime"
  RUST_LOG=warn DEPLOY_DATABASE_URL="postgres://$deploy:$password@$hostport/$db" \
    "$BIN/rls-migrate" --runtime-role "$runtime" >/dev/null
done

now() { date +%s.%N; }

echo "== rls-seed --accounts $ACCOUNTS --seed $SEED (release, as the deploy role, through RLS)"
start="$(now)"
DEPLOY_DATABASE_URL="postgres://$deploy:$password@$hostport/$seeded" \
  /usr/bin/time -v -o "$work/time.txt" "$BIN/rls-seed" --accounts "$ACCOUNTS" --seed "$SEED" | tee "$work/report.txt"
seed_seconds="$(echo "$(now) - $start" | bc)"
peak_kb="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")"

tables=(accounts users projects tasks subtasks)
for table in "${tables[@]}"; do
  psql "${server}/${seeded}" -X -q -v ON_ERROR_STOP=1 \
    -c "\\copy (SELECT * FROM app.$table ORDER BY id) TO '$work/$table.csv' WITH (FORMAT csv)"
done
rows="$(cat "$work"/*.csv | wc -l)"
bytes="$(cat "$work"/*.csv | wc -c)"

echo "== psql \\copy of the same $rows rows ($((bytes / 1024 / 1024)) MiB of CSV) into the same indexed tables (superuser)"
copy_args=()
for table in "${tables[@]}"; do
  copy_args+=(-c "\\copy app.$table FROM '$work/$table.csv' WITH (FORMAT csv)")
done
start="$(now)"
psql "${server}/${copied}" -X -q -v ON_ERROR_STOP=1 "${copy_args[@]}"
copy_seconds="$(echo "$(now) - $start" | bc)"

same="$(for db in "$seeded" "$copied"; do
  psql "${server}/${db}" -X -Atq -c "SELECT md5(string_agg(n::text, ',')) FROM (
    SELECT count(*) AS n FROM app.accounts UNION ALL SELECT count(*) FROM app.users
    UNION ALL SELECT count(*) FROM app.projects UNION ALL SELECT count(*) FROM app.tasks
    UNION ALL SELECT count(*) FROM app.subtasks) AS c"
done | sort -u | wc -l)"
[ "$same" -eq 1 ] || { echo "benches/seed.sh: the two databases differ" >&2; exit 1; }

printf '\n%-32s %8.2f s   peak RSS %d MiB\n' "rls-seed --accounts $ACCOUNTS" "$seed_seconds" "$((peak_kb / 1024))"
printf '%-32s %8.2f s\n' "psql \\copy, same rows" "$copy_seconds"
printf '%-32s %8.2f x\n' "ratio rls-seed / psql" "$(echo "$seed_seconds / $copy_seconds" | bc -l)"
