#!/usr/bin/env bash
# End-to-end test through a real pgbouncer in transaction mode: rls-demo's pool of 16
# connections shares pgbouncer's 4 server connections, under concurrent mixed-tenant load.
#
#   tests/e2e/pgbouncer.sh            # exit 0 on success, non-zero on any failure
#
# 1. creates a scratch database with its own deploy and runtime roles on the PostgreSQL at
#    $ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres, a superuser; with
#    ADMIN_URL="" it starts a throwaway cluster of its own), migrates it and seeds 20
#    tenants, each with its own number of subtasks, with the signed tenant context (the
#    default) and a key file that rls-demo reads through RLS_TENANT_KEY_FILE;
# 2. starts pgbouncer (the distribution's package) on a free loopback port in front of it,
#    pool_mode = transaction, default_pool_size = 4, and server_round_robin = 1: server
#    connections are handed out in turn rather than the last used first, so a statement sent
#    outside a transaction in two messages (the extended protocol's parse, then its execution)
#    lands on two server connections every time instead of now and then (rls-demo failed to
#    start with "unnamed prepared statement does not exist" about 1 run in 5); nothing else
#    is set for the demo's sake;
# 3. checks that rls-demo without ?pgbouncer=true is refused by pgbouncer (so the traffic
#    really goes through it) and that without the key file it refuses to start (exit 2),
#    then runs rls-demo with ?pgbouncer=true: every transaction signs its tenant in its BEGIN;
# 4. sends 1,200 requests from 16 threads to /api/subtasks on random tenants and pages:
#    every answer must be a 200 naming its tenant, with that tenant's total and only rows
#    carrying that tenant's account id;
# 5. stops the demo with SIGTERM (exit 0), starts it again behind the same pgbouncer, and
#    sends 400 more requests with the same checks;
# 6. starts a second pgbouncer like the first and rls-demo with both as the primary's hosts
#    (equivalent frontends of one primary) and an 8 s request timeout, reads single subtasks
#    (GET /api/subtasks/{id}, routed round-robin over the hosts; each answer must be that
#    subtask of that tenant) for 35 s, checks both frontends take a share, and meanwhile PAUSEs the second pgbouncer for 10 s (its new
#    transactions queue: rls-demo gives up a BEGIN after the 1 s peer timeout, marks the
#    frontend down and uses the first), then drains it for 5 s (DISABLE:
#    new clients refused, and PAUSE): every answer must still be a 200 with its tenant's rows,
#    and the second pgbouncer must serve again once it is enabled and resumed.
# Everything stays on 127.0.0.1 and is removed at the end. Needs pgbouncer, psql, curl and
# python3; installs pgbouncer with apt-get when running as root and it is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
ADMIN_URL="${ADMIN_URL-postgres://postgres@127.0.0.1:5432/postgres}"
TENANTS=20
work="$(mktemp -d -t rls-pgbouncer-XXXXXX)"
db="rls_pgb_$$"
password="pgb_$$_$RANDOM"
pgbouncer_pids=()
load_pid=""

say() { printf 'e2e-pgbouncer: %s\n' "$*"; }
fail() { printf 'e2e-pgbouncer: FAIL: %s\n' "$*" >&2; exit 1; }
. benches/scratch.sh
cleanup() {
  if [ -n "$load_pid" ]; then kill "$load_pid" 2>/dev/null || true; fi
  stop_demo
  for pid in "${pgbouncer_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  if [ -n "$ADMIN_URL" ]; then drop_scratch_db "$ADMIN_URL" "$db"; fi
  stop_cluster
  rm -rf "$work"
}
trap cleanup EXIT

if ! command -v pgbouncer >/dev/null; then
  [ "$(id -u)" -eq 0 ] || fail "pgbouncer is not installed (apt-get install -y pgbouncer)"
  say "installing pgbouncer"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q pgbouncer >/dev/null
fi
for tool in psql curl python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done
say "$(pgbouncer --version | head -n 1)"
chmod 0755 "$work"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$work"; fi

if [ -z "$ADMIN_URL" ]; then
  start_cluster
  ADMIN_URL="$cluster_url/postgres"
fi
psql "$ADMIN_URL" -Atqc 'SELECT 1' >/dev/null || fail "cannot log in as a superuser with ADMIN_URL (password not shown)"

say "building rls-demo and rls-migrate"
cargo build --quiet --bin rls-demo --bin rls-migrate
bin="$CARGO_TARGET_DIR/debug"

say "scratch database $db: roles, migration, $TENANTS tenants"
pg_port="$(psql "$ADMIN_URL" -Atqc "SELECT current_setting('port')")"
create_scratch_db "$ADMIN_URL" "$db" "$password" "$bin"
# Tenant a has 5 + a subtasks, so every tenant's total is its own.
psql "${ADMIN_URL%/*}/$db" -v ON_ERROR_STOP=1 -q <<SQL
INSERT INTO app.accounts (slug, name) SELECT 'tenant-' || a, 'Account ' || a FROM generate_series(1, $TENANTS) a;
INSERT INTO app.projects (account_id, name) SELECT id, 'project of ' || slug FROM app.accounts;
INSERT INTO app.tasks (account_id, project_id, name) SELECT account_id, id, 'task ' || id FROM app.projects;
INSERT INTO app.subtasks (account_id, task_id, name, is_complete)
    SELECT t.account_id, t.id, a.slug || ' subtask ' || s, s % 2 = 0
    FROM app.tasks t JOIN app.accounts a ON a.id = t.account_id,
         LATERAL generate_series(1, 5 + substr(a.slug, 8)::int) s;
SQL
psql "${ADMIN_URL%/*}/$db" -Atq -F ' ' \
  -c "SELECT a.slug, a.id, count(s.id) FROM app.accounts a JOIN app.subtasks s ON s.account_id = a.id GROUP BY a.slug, a.id" \
  >"$work/tenants.txt"
psql "${ADMIN_URL%/*}/$db" -Atq -F ' ' -c "SELECT a.slug, s.id FROM app.accounts a JOIN app.subtasks s ON s.account_id = a.id" \
  >"$work/subtasks.txt"

# The runtime role's SCRAM secret with 16 iterations instead of 4,096, in PostgreSQL and in
# pgbouncer's auth file alike (pgbouncer logs in with the client's proof): a debug rls-demo
# derives the login key on its async runtime, yielding every 5 iterations, and under load a
# 4,096-iteration login took seconds, so requests waiting for a new connection ran into the
# request timeout (BENCHMARKS.md, "What the 3-8 s waits ... were"). Still SCRAM end to end.
verifier="$(python3 - "$password" <<'PY'
import base64, hashlib, hmac, os, sys
salt = os.urandom(16)
salted = hashlib.pbkdf2_hmac("sha256", sys.argv[1].encode(), salt, 16)
client = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
server = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
b64 = lambda b: base64.b64encode(b).decode()
print(f"SCRAM-SHA-256$16:{b64(salt)}${b64(hashlib.sha256(client).digest())}:{b64(server)}")
PY
)"
psql "$ADMIN_URL" -q -c "ALTER ROLE ${db}_runtime PASSWORD '$verifier'"
printf '"%s" "%s"\n' "${db}_runtime" "$verifier" "pgb_admin" "$password" >"$work/userlist.txt"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$work/userlist.txt"; fi
chmod 0600 "$work/userlist.txt"

# start_pgbouncer NAME: a pgbouncer in transaction mode with 4 server connections in front of
# the database, on a free loopback port (admin console user pgb_admin); sets pgb_port.
start_pgbouncer() {
  local name="$1"
  pgb_port="$(free_port)"
  say "starting pgbouncer $name on 127.0.0.1:$pgb_port, transaction mode, 4 server connections"
  cat >"$work/$name.ini" <<INI
[databases]
$db = host=127.0.0.1 port=$pg_port dbname=$db
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgb_port
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $work/userlist.txt
admin_users = pgb_admin
pool_mode = transaction
default_pool_size = 4
server_round_robin = 1
max_client_conn = 100
logfile = $work/$name.log
pidfile = $work/$name.pid
INI
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$work/$name.ini"; fi
  as_postgres pgbouncer -d "$work/$name.ini" >"$work/$name.out" 2>&1 \
    || { cat "$work/$name.out" >&2; fail "pgbouncer $name did not start"; }
  for _ in $(seq 1 20); do
    [ -s "$work/$name.pid" ] && break
    sleep 0.25
  done
  pgbouncer_pids+=("$(cat "$work/$name.pid")")
  for _ in $(seq 1 20); do
    PGPASSWORD="$password" psql -h 127.0.0.1 -p "$pgb_port" -U "${db}_runtime" -d "$db" -Atqc 'SELECT 1' \
      >/dev/null 2>&1 && break
    sleep 0.25
  done
  PGPASSWORD="$password" psql -h 127.0.0.1 -p "$pgb_port" -U "${db}_runtime" -d "$db" -Atqc 'SELECT 1' >/dev/null \
    || { cat "$work/$name.log" >&2 || true; fail "pgbouncer $name does not answer"; }
}

# pgb_admin PORT COMMAND...: commands on the admin console of the pgbouncer on PORT.
pgb_admin() {
  local on="$1" command args=()
  shift
  for command in "$@"; do args+=(-c "$command"); done
  PGPASSWORD="$password" psql -h 127.0.0.1 -p "$on" -U pgb_admin -d pgbouncer -Atq -F '|' "${args[@]}"
}

start_pgbouncer pgbouncer
runtime_url="postgres://${db}_runtime:$password@127.0.0.1:$pgb_port/$db"

say "without ?pgbouncer=true the demo must be refused by pgbouncer (proof it sits in the path)"
set +e
RUST_LOG=error timeout 60 "$bin/rls-demo" --database-url "$runtime_url" --listen 127.0.0.1:0 \
  --base-domain pgb.test >"$work/plain.out" 2>"$work/plain.err"
plain_status=$?
set -e
[ "$plain_status" -eq 2 ] && grep -q 'unsupported startup parameter' "$work/plain.err" \
  || { cat "$work/plain.err" >&2; fail "a plain URL was not refused by pgbouncer (exit $plain_status)"; }

# load AMOUNT [items]: the amount is a number of requests, or a duration ("25s") to keep
# sending for; with items, each request reads one subtask (GET /api/subtasks/{id}) instead of
# a page of the list; both are routed reads (round-robin over the primary's hosts).
load() {
  python3 - "$port" "$work/tenants.txt" "$1" "${2:-pages}" "$work/subtasks.txt" <<'PY'
import json, random, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor

port, tenants_file, amount, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
until = time.time() + float(amount[:-1]) if amount.endswith("s") else None
tenants = {}
for line in open(tenants_file):
    slug, account_id, count = line.split()
    tenants[slug] = (int(account_id), int(count))
slugs = sorted(tenants)
subtasks = {}
for line in open(sys.argv[5]):
    slug, subtask = line.split()
    subtasks.setdefault(slug, []).append(int(subtask))

def get(slug, path):
    """The JSON body of a 200, or the failure in words."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": f"{slug}.pgb.test"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}", None
    except Exception as e:  # a dropped connection is a failure too
        return repr(e), None

def item(rng):
    slug = rng.choice(slugs)
    subtask = rng.choice(subtasks[slug])
    status, body = get(slug, f"/api/subtasks/{subtask}")
    if status != 200 or body["id"] != subtask or body["account_id"] != tenants[slug][0]:
        return f"{slug} subtask {subtask}: {status}, {body}"
    return None

def one(i):
    rng = random.Random(i)
    if mode == "items":
        return item(rng)
    slug = rng.choice(slugs)
    account_id, count = tenants[slug]
    page = rng.randint(1, (count + 9) // 10)
    status, body = get(slug, f"/api/subtasks?page={page}")
    if status != 200 or body["tenant"] != slug or body["total"] != count:
        return f"{slug} page {page}: {status}, {body and (body['tenant'], body['total'])} (want {count})"
    foreign = [item for item in body["items"] if item["account_id"] != account_id]
    if foreign or not body["items"]:
        return f"{slug} page {page}: {len(foreign)} foreign rows of {len(body['items'])}"
    return None

def worker(w):
    # Worker w sends requests w, w + 16, ...
    outcomes, i = [], w
    while (time.time() < until) if until else (i < int(amount)):
        outcomes.append(one(i))
        i += 16
    return outcomes

with ThreadPoolExecutor(max_workers=16) as pool:
    outcomes = [o for done in pool.map(worker, range(16)) for o in done]
total = len(outcomes)
failures = [f for f in outcomes if f]
for failure in failures[:10]:
    print(f"e2e-pgbouncer:   {failure}", file=sys.stderr)
print(f"e2e-pgbouncer: {total} requests, {total - len(failures)} answered 200 with only their tenant's rows, {len(failures)} failed")
sys.exit(1 if failures else 0)
PY
}

say "the database has the signed tenant context; without its key file the demo refuses to start"
[ "$(psql "${ADMIN_URL%/*}/$db" -Atqc "SELECT to_regprocedure('rls_tenancy.tenant(text)') IS NOT NULL")" = t ] \
  || fail "the database was not migrated with the signed tenant context"
set +e
env -u RLS_TENANT_KEY_FILE RUST_LOG=error timeout 60 "$bin/rls-demo" --database-url "$runtime_url?pgbouncer=true" \
  --listen 127.0.0.1:0 --base-domain pgb.test >"$work/nokey.out" 2>"$work/nokey.err"
nokey_status=$?
set -e
[ "$nokey_status" -eq 2 ] && grep -q 'has no tenant key' "$work/nokey.err" \
  || { cat "$work/nokey.err" >&2; fail "a demo without the tenant key was not refused at start-up (exit $nokey_status)"; }

# A generous acquire timeout: the debug build's SCRAM logins of 16 connections at once are
# slow, and this test is about correctness through the pooler, not latency.
demo_flags=(--max-connections 16 --acquire-timeout 10s)
say "starting rls-demo with ?pgbouncer=true (16 connections into pgbouncer's 4)"
start_demo "$bin" "$runtime_url?pgbouncer=true" pgb.test "${demo_flags[@]}"
load 1200 || { tail -n 20 "$work/demo.err" >&2; fail "requests through pgbouncer failed"; }

say "restarting rls-demo behind the same pgbouncer"
kill -TERM "$demo_pid"
status=0
wait "$demo_pid" || status=$?
demo_pid=""
[ "$status" -eq 0 ] || { tail -n 20 "$work/demo.err" >&2; fail "rls-demo exited with status $status on SIGTERM"; }
start_demo "$bin" "$runtime_url?pgbouncer=true" pgb.test "${demo_flags[@]}"
load 400 || { tail -n 20 "$work/demo.err" >&2; fail "requests after the restart failed"; }
if grep -q ' ERROR ' "$work/demo.err"; then
  grep ' ERROR ' "$work/demo.err" | head -n 5 >&2
  fail "rls-demo logged errors"
fi
stop_demo

# Two pgbouncers in front of the one primary: equivalent frontends, given as the hosts of the
# primary. One of them is paused, then drained (DISABLE: no new clients, PAUSE: queries
# wait), each time for longer than the peer timeout, under load: not a single request may
# fail, and the frontend must serve again once it takes transactions again.
first_port="$pgb_port"
start_pgbouncer pgbouncer2
second_port="$pgb_port"
xacts() { pgb_admin "$1" 'SHOW STATS' | awk -F'|' -v db="$db" '$1 == db {print $2}'; }
say "rls-demo over both pgbouncers (127.0.0.1:$first_port,127.0.0.1:$second_port), check interval 2 s"
# Requests get 8 s (a 503 past it): a request left waiting on the paused pgbouncer fails.
start_demo "$bin" "postgres://${db}_runtime:$password@127.0.0.1:$first_port,127.0.0.1:$second_port/$db?pgbouncer=true" \
  pgb.test "${demo_flags[@]}" --check-interval 2s --request-timeout 8s
# Routed reads: each request's transaction goes to one of the hosts, round-robin. (The list
# pages would not do: they run in the request's Tx, on the pool that follows the primary, which
# stays on the first pgbouncer; the second one would then see nothing but the peer polls.)
first_before="$(xacts "$first_port")"
load 35s items >"$work/drain.out" 2>&1 &
load_pid=$!
sleep 4
served_before="$(xacts "$second_port")"
first_served="$(( $(xacts "$first_port") - first_before ))"
say "transactions in the first 4 s of load: $first_served through the first pgbouncer, $served_before through the second"
# The peer polls alone put about 4 a second through each; the requests must add their share.
[ "$(( served_before * 3 ))" -gt "$first_served" ] \
  || fail "the second pgbouncer served $served_before transactions to the first's $first_served: requests do not spread"
say "PAUSE on the second pgbouncer for 10 s (its new transactions queue)"
pgb_admin "$second_port" "PAUSE $db" >/dev/null
sleep 10
pgb_admin "$second_port" "RESUME $db" >/dev/null
sleep 5
say "drain of the second pgbouncer for 5 s: DISABLE (new clients refused), PAUSE (queries wait)"
pgb_admin "$second_port" "DISABLE $db" "PAUSE $db" >/dev/null
sleep 5
pgb_admin "$second_port" "ENABLE $db" "RESUME $db" >/dev/null
served_after_drain="$(xacts "$second_port")"
load_status=0
wait "$load_pid" || load_status=$?
load_pid=""
cat "$work/drain.out"
[ "$load_status" -eq 0 ] || { grep -E ' (WARN|ERROR) ' "$work/demo.err" | tail -n 10 >&2; fail "requests failed while a pgbouncer was paused or drained"; }
served_end="$(xacts "$second_port")"
say "transactions through the second pgbouncer: $served_before before the pause, $served_after_drain at the end of the drain, $served_end at the end"
[ "$served_end" -gt "$served_after_drain" ] || fail "the second pgbouncer did not serve again after the drain ended"
grep -E ' (WARN|ERROR) ' "$work/demo.err" | cut -c1-400 | sed 's/^/e2e-pgbouncer:   demo: /' | tail -n 20
grep -q "marked down.*127.0.0.1:$second_port/" "$work/demo.err" \
  || fail "the second pgbouncer was never marked down: the pause was not under load"
if grep -q ' ERROR ' "$work/demo.err"; then
  grep ' ERROR ' "$work/demo.err" | head -n 5 >&2
  fail "rls-demo logged errors during the pause and the drain"
fi

say "PASS: 1,600 requests through pgbouncer (transaction mode) on random tenants, signed tenant context, all 200 with only their own rows; the demo restarted behind the same pgbouncer; over two pgbouncers sharing routed reads, one paused and then drained under load, no request failed"
