#!/usr/bin/env bash
# Overload benchmark of rls-demo: far more connections than it admits at once.
#
#   benches/overload.sh                  # CONNECTIONS=1000 for 15 s
#
# 1. starts a throwaway PostgreSQL cluster of its own on a free loopback port, with a
#    scratch database (deploy and runtime roles, rls-migrate, $TENANTS tenants x 300
#    subtasks);
# 2. starts the release rls-demo with a pool of $POOL connections and --max-in-flight
#    $MAX_IN_FLIGHT;
# 3. wrk with $CONNECTIONS connections for $DURATION s on /api/subtasks, random tenants and
#    pages; a Lua script counts the answers by status and checks that every 503 carries
#    Retry-After;
# 4. prints the answered (200) and shed (503) rates, the latency of all answers, and an
#    upper bound of the 200s' p99: with a share f of 200s among all answers, at least 1 % of
#    the 200s lie above their p99, so it is at most the overall percentile 100 * (1 - f / 100).
# Goal (issue 10): the answered requests' p99 under 1 s and every excess request a fast 503.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNECTIONS="${CONNECTIONS:-1000}"
DURATION="${DURATION:-15}"
TENANTS="${TENANTS:-50}"
POOL="${POOL:-16}"
MAX_IN_FLIGHT="${MAX_IN_FLIGHT:-64}"
THREADS="${THREADS:-2}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

work="$(mktemp -d -t rls-overload-XXXXXX)"
db="rls_overload"
password="overload_$$_$RANDOM"
say() { printf 'overload: %s\n' "$*"; }
fail() { printf 'overload: FAIL: %s\n' "$*" >&2; exit 1; }
. "$(dirname "$0")/scratch.sh"
cleanup() { stop_demo; stop_cluster; rm -rf "$work"; }
trap cleanup EXIT

command -v wrk >/dev/null || fail "wrk is not installed (apt-get install -y wrk)"
ulimit -n "$(( CONNECTIONS + 1024 ))" 2>/dev/null || fail "cannot raise the open-file limit for $CONNECTIONS connections"

say "building the release binaries"
cargo build --quiet --release --bin rls-demo --bin rls-migrate
bin="$CARGO_TARGET_DIR/release"

start_cluster
admin="$cluster_url"
create_scratch_db "$admin/postgres" "$db" "$password" "$bin"
psql "$admin/$db" -v ON_ERROR_STOP=1 -q <<SQL
INSERT INTO app.accounts (slug, name) SELECT 'tenant-' || a, 'Account ' || a FROM generate_series(1, $TENANTS) a;
INSERT INTO app.projects (account_id, name) SELECT a.id, 'project ' || p FROM app.accounts a, generate_series(1, 5) p;
INSERT INTO app.tasks (account_id, project_id, name)
    SELECT p.account_id, p.id, 'task ' || p.id || '.' || t FROM app.projects p, generate_series(1, 10) t;
INSERT INTO app.subtasks (account_id, task_id, name, is_complete)
    SELECT t.account_id, t.id, md5(t.id::text || '.' || s), s % 3 = 0 FROM app.tasks t, generate_series(1, 6) s;
VACUUM ANALYZE;
SQL

say "starting rls-demo (release): pool $POOL, at most $MAX_IN_FLIGHT requests in flight"
start_demo "$bin" "postgres://${db}_runtime:$password@127.0.0.1:$pg_port/$db" overload.test \
  --max-connections "$POOL" --max-in-flight "$MAX_IN_FLIGHT"

cat >"$work/overload.lua" <<LUA
-- Random tenants and pages; counts answers by status and 503s without Retry-After.
local counts = {}
local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function() ok, shed, other, bare = 0, 0, 0, 0 end
request = function()
  wrk.headers["Host"] = "tenant-" .. math.random(1, $TENANTS) .. ".overload.test"
  return wrk.format("GET", "/api/subtasks?page=" .. math.random(1, 30))
end
response = function(status, headers, body)
  if status == 200 then ok = ok + 1
  elseif status == 503 then
    shed = shed + 1
    if headers["Retry-After"] == nil and headers["retry-after"] == nil then bare = bare + 1 end
  else other = other + 1 end
end
done = function(summary, latency, requests)
  local t = {ok = 0, shed = 0, other = 0, bare = 0}
  for _, thread in ipairs(threads) do
    for k, _ in pairs(t) do t[k] = t[k] + thread:get(k) end
  end
  local all = t.ok + t.shed + t.other
  local share = all > 0 and t.ok / all or 0
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d ok=%d shed=%d other=%d bare=%d socket_errors=%d p50_us=%d p99_us=%d ok_p99_bound_us=%d\n",
    summary.requests, summary.duration, t.ok, t.shed, t.other, t.bare, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(100 * (1 - share / 100))))
end
LUA

say "warm-up: 3 s at 16 connections"
wrk -t "$THREADS" -c 16 -d 3s -s "$work/overload.lua" "http://127.0.0.1:$port/" >/dev/null
say "wrk: $CONNECTIONS connections, $THREADS threads, $DURATION s"
wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --timeout 10s -s "$work/overload.lua" \
  "http://127.0.0.1:$port/" | tee "$work/wrk.out"
result="$(grep '^RESULT ' "$work/wrk.out")"
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$result"; }
awk -v us="$(field duration_us)" -v ok="$(field ok)" -v shed="$(field shed)" -v other="$(field other)" \
    -v bare="$(field bare)" -v errs="$(field socket_errors)" -v p50="$(field p50_us)" -v p99="$(field p99_us)" \
    -v okp99="$(field ok_p99_bound_us)" -v c="$CONNECTIONS" -v pool="$POOL" -v bound="$MAX_IN_FLIGHT" 'BEGIN {
  s = us / 1e6
  printf "\n== overload: %d connections, pool %d, at most %d in flight ==\n", c, pool, bound
  printf "answered 200: %7.0f/s   shed 503: %7.0f/s   other statuses: %d   503s without Retry-After: %d   socket errors: %d\n", ok / s, shed / s, other, bare, errs
  printf "latency of all answers: p50 %.2f ms, p99 %.2f ms; p99 of the 200s at most %.2f ms (goal < 1000)\n", p50 / 1000, p99 / 1000, okp99 / 1000
}'
[ "$(field other)" -eq 0 ] && [ "$(field bare)" -eq 0 ] || fail "answers other than 200 and 503 with Retry-After"
