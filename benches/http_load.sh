#!/usr/bin/env bash
# Load benchmark of rls-demo's /api/subtasks against pgbench running the same SQL, in one run.
#
#   benches/http_load.sh
#
# 1. creates a scratch database with its own deploy and runtime roles on the PostgreSQL at
#    $ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres, a superuser), migrates
#    it with rls-migrate and seeds $TENANTS tenants x $SUBTASKS subtasks as the superuser;
# 2. starts the release rls-demo on a free loopback port as the runtime role, with a pool of
#    $CONNECTIONS connections;
# 3. in $ROUNDS alternating rounds (default 2) of steps 3 and 4:
#    wrk: $CONNECTIONS connections on $THREADS threads for $DURATION s, GET /api/subtasks?page=P
#    with a random tenant in the Host header and a random page;
# 4. pgbench: the same transactions the handler sends (BEGIN; set_config of the timeouts and
#    app.tenant_id; the page query, which carries the total; COMMIT) as the runtime role, prepared statements,
#    $CONNECTIONS clients on $THREADS threads for $DURATION s, random tenant and page;
# 5. prints requests/s, p50/p99 latency, pgbench tps and p99, the ratios (goals: throughput
#    >= 0.85x pgbench, p99 <= 2x pgbench's), and where the CPU went: microseconds of CPU
#    per request in rls-demo, in PostgreSQL (every process of the cluster, so run it on a
#    quiet server or with ADMIN_URL="" for a private one) and in wrk, against PostgreSQL's
#    and pgbench's per transaction, and how busy the machine was.
# With ADMIN_URL="" it starts a throwaway cluster of its own (the newest local server
# binaries, default settings) on a free port. Both sides get a 3 s warm-up first.
# Everything stays on 127.0.0.1; everything is removed at the end. Needs wrk (installed
# with apt-get when running as root) and pgbench.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL="${ADMIN_URL-postgres://postgres@127.0.0.1:5432/postgres}"
TENANTS="${TENANTS:-50}"
SUBTASKS="${SUBTASKS:-300}"       # per tenant: 5 projects x 10 tasks x (SUBTASKS / 50)
PAGES=$(( SUBTASKS / 10 ))
CONNECTIONS="${CONNECTIONS:-16}"
THREADS="${THREADS:-2}"
DURATION="${DURATION:-15}"
ROUNDS="${ROUNDS:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

db="rls_bench_$$"
password="bench_$$_$RANDOM"
work="$(mktemp -d -t rls-bench-XXXXXX)"
say() { printf 'bench: %s\n' "$*"; }
fail() { printf 'bench: FAIL: %s\n' "$*" >&2; exit 1; }
. "$(dirname "$0")/scratch.sh"
cleanup() {
  stop_demo
  drop_scratch_db "$ADMIN_URL" "$db"
  stop_cluster
  rm -rf "$work"
}
trap cleanup EXIT

command -v pgbench >/dev/null || fail "pgbench is not installed (apt-get install -y postgresql-client)"
if ! command -v wrk >/dev/null; then
  [ "$(id -u)" -eq 0 ] || fail "wrk is not installed (apt-get install -y wrk)"
  say "installing wrk"
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null
fi
if [ -z "$ADMIN_URL" ]; then
  start_cluster
  ADMIN_URL="$cluster_url/postgres"
fi
psql "$ADMIN_URL" -Atqc 'SELECT 1' >/dev/null || fail "cannot log in as a superuser with ADMIN_URL (password not shown)"

machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat; }
find_postmaster "$ADMIN_URL"

say "building the release binaries"
cargo build --quiet --release --bin rls-demo --bin rls-migrate
bin="$CARGO_TARGET_DIR/release"

say "scratch database $db: roles, migration, $TENANTS tenants x $SUBTASKS subtasks"
host_port="127.0.0.1:$(psql "$ADMIN_URL" -Atqc "SELECT current_setting('port')")"
# The plain tenant context: pgbench replays the handler's SQL and cannot sign. The signed
# context's cost is measured by benches/page_query.rs.
create_scratch_db "$ADMIN_URL" "$db" "$password" "$bin" plain
runtime_url="postgres://${db}_runtime:$password@$host_port/$db"
per_task=$(( SUBTASKS / 50 ))
psql "${ADMIN_URL%/*}/$db" -v ON_ERROR_STOP=1 -q <<SQL
INSERT INTO app.accounts (slug, name)
    SELECT 'tenant-' || a, 'Account ' || a FROM generate_series(1, $TENANTS) a;
INSERT INTO app.projects (account_id, name)
    SELECT a.id, 'project ' || p FROM app.accounts a, generate_series(1, 5) p;
INSERT INTO app.tasks (account_id, project_id, name)
    SELECT p.account_id, p.id, 'task ' || p.id || '.' || t FROM app.projects p, generate_series(1, 10) t;
INSERT INTO app.subtasks (account_id, task_id, name, is_complete)
    SELECT t.account_id, t.id, md5(t.id::text || '.' || s), s % 3 = 0
    FROM app.tasks t, generate_series(1, $per_task) s;
VACUUM ANALYZE;
SQL

say "starting rls-demo (release) with $CONNECTIONS database connections"
start_demo "$bin" "$runtime_url" bench.test --max-connections "$CONNECTIONS"
check="$(curl -sf -H "Host: tenant-7.bench.test" "http://127.0.0.1:$port/api/subtasks?page=2")"
case "$check" in *'"tenant":"tenant-7"'*'"total":'"$SUBTASKS"*) ;; *) fail "unexpected page: $check" ;; esac

cat >"$work/random_tenant.lua" <<LUA
-- A random tenant (Host header) and a random page for every request.
local tenants, pages = $TENANTS, $PAGES
request = function()
  wrk.headers["Host"] = "tenant-" .. math.random(1, tenants) .. ".bench.test"
  return wrk.format("GET", "/api/subtasks?page=" .. math.random(1, pages))
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d socket_errors=%d non2xx=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
LUA

# The handler's transaction, statement for statement: BEGIN and the transaction-local
# settings (the pool's default timeouts, the tenant) go in one round trip there (simple
# protocol) and in two here, which only slows pgbench down a little.
cat >"$work/page.sql" <<SQL
\set tid random(1, $TENANTS)
\set off 10 * random(0, $(( PAGES - 1 )))
BEGIN;
SELECT set_config('statement_timeout', '5000', true), set_config('lock_timeout', '2000', true), set_config('idle_in_transaction_session_timeout', '10000', true), set_config('app.tenant_id', :tid::text, true);
SELECT "s"."id", "s"."account_id", "s"."name", "s"."is_complete", "t"."name" AS "task_name", "p"."name" AS "project_name", (SELECT COUNT(*) FROM "app"."subtasks" WHERE "subtasks"."account_id" = :tid) AS "total" FROM "app"."subtasks" AS "s" INNER JOIN "app"."tasks" AS "t" ON "t"."account_id" = :tid AND ("t"."account_id" = "s"."account_id" AND "t"."id" = "s"."task_id") INNER JOIN "app"."projects" AS "p" ON "p"."account_id" = :tid AND ("p"."account_id" = "t"."account_id" AND "p"."id" = "t"."project_id") WHERE "s"."account_id" = :tid ORDER BY "s"."name" ASC, "s"."id" ASC LIMIT 10 OFFSET :off;
COMMIT;
SQL

wrk_run() {
  wrk -t "$THREADS" -c "$CONNECTIONS" -d "${1}s" --timeout 10s -s "$work/random_tenant.lua" \
    "http://127.0.0.1:$port/"
}
pgbench_run() {
  local seconds="$1"; shift
  PGPASSWORD="$password" pgbench -n -M prepared -f "$work/page.sql" -c "$CONNECTIONS" -j "$THREADS" \
    -T "$seconds" "$@" -h "${host_port%:*}" -p "${host_port#*:}" -U "${db}_runtime" "$db"
}

# Runs "$@" and prints "<its CPU ticks> <PostgreSQL's> <rls-demo's> <machine busy> <machine total>"
# on fd 3, the command's own output on stdout.
measured() {
  local pg0 demo0 m0 pg1 demo1 m1 own
  pg0="$(pg_cpu)"; demo0="$(cpu_of "$demo_pid")"; m0="$(machine_ticks)"
  { own="$( ( "$@" >&5; me=$BASHPID; stat_fields "$me" | awk '{print $14 + $15}' ) )"; } 5>&1
  pg1="$(pg_cpu)"; demo1="$(cpu_of "$demo_pid")"; m1="$(machine_ticks)"
  echo "$own $(( pg1 - pg0 )) $(( demo1 - demo0 )) $(awk -v a="$m0" -v b="$m1" 'BEGIN {split(a, x, " "); split(b, y, " "); print y[1] - x[1], y[2] - x[2]}')" >&3
}

say "warm-up: 3 s each"
wrk_run 3 >/dev/null
(cd "$work" && pgbench_run 3 >/dev/null)

# Alternating rounds (HTTP, then pgbench, $ROUNDS times): a machine whose other load
# drifts during the run then weighs on both sides alike. Each round prints its figures.
bad_total=0
for round in $(seq 1 "$ROUNDS"); do
  say "round $round/$ROUNDS: wrk, $CONNECTIONS connections, $THREADS threads, ${DURATION} s, random tenants and pages"
  measured wrk_run "$DURATION" 3>"$work/wrk.cpu" >"$work/wrk.out"
  result="$(grep '^RESULT ' "$work/wrk.out")"
  field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$result"; }
  requests=$(field requests); duration_us=$(field duration_us)
  non2xx=$(field non2xx); socket_errors=$(field socket_errors); p99_us=$(field p99_us); p50_us=$(field p50_us)
  bad_total=$(( bad_total + non2xx + socket_errors ))

  say "round $round/$ROUNDS: pgbench, $CONNECTIONS clients, $THREADS threads, ${DURATION} s, the handler's SQL"
  rm -f "$work"/pgb.*
  (cd "$work" && measured pgbench_run "$DURATION" --log --log-prefix=pgb 3>"$work/pgbench.cpu") >"$work/pgbench.out"
  tps="$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/pgbench.out")"
  pg_p99_us="$(cat "$work"/pgb.* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {print a[int(NR*0.99)]}')"
  transactions="$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/pgbench.out")"

  awk -v req="$requests" -v us="$duration_us" -v tps="$tps" -v p50="$p50_us" -v p99="$p99_us" \
      -v pgp99="$pg_p99_us" -v bad="$non2xx" -v errs="$socket_errors" -v c="$CONNECTIONS" \
      -v tenants="$TENANTS" -v subtasks="$SUBTASKS" -v tx="$transactions" -v hz="$tick_hz" \
      -v round="$round" -v loadavg="$(cut -d' ' -f1 /proc/loadavg)" \
      -v wcpu="$(cat "$work/wrk.cpu")" -v pcpu="$(cat "$work/pgbench.cpu")" 'BEGIN {
    rps = req / (us / 1e6)
    split(wcpu, w, " "); split(pcpu, p, " ")
    per = 1e6 / hz
    printf "\n== round %d: /api/subtasks, %d tenants x %d subtasks, %d connections (load average %s) ==\n", round, tenants, subtasks, c, loadavg
    printf "HTTP (wrk):       %8.0f requests/s   p50 %6.2f ms   p99 %6.2f ms   non-2xx %d, socket errors %d\n", rps, p50/1000, p99/1000, bad, errs
    printf "pgbench (same SQL): %6.0f tps          p99 %6.2f ms\n", tps, pgp99/1000
    printf "ratio HTTP / pgbench: %.2f (goal >= 0.85); p99 ratio %.2f (goal <= 2)\n", rps / tps, p99 / pgp99
    printf "CPU per request (HTTP run):     rls-demo %4.0f us, PostgreSQL %4.0f us, wrk %4.0f us; machine %3.0f%% busy\n", w[3] * per / req, w[2] * per / req, w[1] * per / req, 100 * w[4] / w[5]
    printf "CPU per transaction (pgbench):  PostgreSQL %4.0f us, pgbench %4.0f us; machine %3.0f%% busy\n", p[2] * per / tx, p[1] * per / tx, 100 * p[4] / p[5]
  }'
done
if [ "$bad_total" -ne 0 ]; then
  grep -E ' (WARN|ERROR) ' "$work/demo.err" | sed 's/^[^ ]* //' | cut -c1-200 | sort | uniq -c | sort -rn | head -n 5 >&2
  fail "some requests failed"
fi
