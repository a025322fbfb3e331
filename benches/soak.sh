#!/usr/bin/env bash
# Soak test of rls-demo under faults (not in CI): mixed tenants for $DURATION seconds while
# PostgreSQL is restarted every $RESTART_EVERY seconds and the demo's backends are killed
# every $KILL_EVERY seconds.
#
#   benches/soak.sh                      # 10 minutes; DURATION=120 for a short run
#
# 1. starts a throwaway PostgreSQL cluster of its own on a free loopback port (it is the one
#    restarted; the shared server is never touched), creates a scratch database with deploy
#    and runtime roles, migrates it with rls-migrate and seeds $TENANTS tenants, each with its
#    own number of subtasks;
# 2. starts the release rls-demo as the runtime role with a pool of $POOL connections;
# 3. $WORKERS client threads send GET /api/subtasks for random tenants and pages, checking
#    every answer: a 200 must name its tenant, carry its total and only rows of its account
#    id; a 503 must carry Retry-After; anything else (a 500, a dropped connection) is an error;
# 4. meanwhile restarts PostgreSQL (pg_ctl restart -m fast) and terminates the runtime role's
#    backends (pg_terminate_backend) on schedule, and samples rls-demo's RSS;
# 5. prints per-minute counts, foreign rows, wrong answers, RSS at minute 2 and at the end,
#    and the runtime role's connections once the load stops (must come back to <= $POOL).
# Exit 1 when any answer was wrong or carried a foreign row, or a connection leaked.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-600}"
RESTART_EVERY="${RESTART_EVERY:-120}"
KILL_EVERY="${KILL_EVERY:-25}"
TENANTS="${TENANTS:-20}"
POOL="${POOL:-10}"
WORKERS="${WORKERS:-8}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

work="$(mktemp -d -t rls-soak-XXXXXX)"
db="rls_soak"
password="soak_$$_$RANDOM"
say() { printf 'soak: %s\n' "$*"; }
fail() { printf 'soak: FAIL: %s\n' "$*" >&2; exit 1; }
. "$(dirname "$0")/scratch.sh"
cleanup() { stop_demo; stop_cluster; rm -rf "$work"; }
trap cleanup EXIT

for tool in psql python3 curl; do command -v "$tool" >/dev/null || fail "$tool is not installed"; done
say "building the release binaries"
cargo build --quiet --release --bin rls-demo --bin rls-migrate
bin="$CARGO_TARGET_DIR/release"

start_cluster
admin="$cluster_url"
create_scratch_db "$admin/postgres" "$db" "$password" "$bin"
psql "$admin/$db" -v ON_ERROR_STOP=1 -q <<SQL
INSERT INTO app.accounts (slug, name) SELECT 'tenant-' || a, 'Account ' || a FROM generate_series(1, $TENANTS) a;
INSERT INTO app.projects (account_id, name) SELECT id, 'project of ' || slug FROM app.accounts;
INSERT INTO app.tasks (account_id, project_id, name) SELECT account_id, id, 'task ' || id FROM app.projects;
INSERT INTO app.subtasks (account_id, task_id, name, is_complete)
    SELECT t.account_id, t.id, a.slug || ' subtask ' || s, s % 2 = 0
    FROM app.tasks t JOIN app.accounts a ON a.id = t.account_id,
         LATERAL generate_series(1, 20 + 7 * substr(a.slug, 8)::int) s;
SQL
psql "$admin/$db" -Atq -F ' ' \
  -c "SELECT a.slug, a.id, count(s.id) FROM app.accounts a JOIN app.subtasks s ON s.account_id = a.id GROUP BY a.slug, a.id" \
  >"$work/tenants.txt"

say "starting rls-demo (release), pool of $POOL"
start_demo "$bin" "postgres://${db}_runtime:$password@127.0.0.1:$pg_port/$db" soak.test --max-connections "$POOL"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$demo_pid/status"; }
echo "0 $(rss_kb)" >"$work/rss.txt"

# The faults, on their own schedule, for as long as the load runs.
(
  start=$SECONDS
  next_restart=$RESTART_EVERY
  next_kill=$KILL_EVERY
  while [ $(( SECONDS - start )) -lt "$DURATION" ]; do
    sleep 1
    t=$(( SECONDS - start ))
    if [ $(( t % 60 )) -eq 0 ]; then echo "$t $(rss_kb)" >>"$work/rss.txt"; fi
    if [ "$t" -ge "$next_restart" ] && [ "$t" -lt "$DURATION" ]; then
      printf 'soak: %4d s: restarting PostgreSQL\n' "$t"
      cluster_ctl -m fast restart || printf 'soak: restart failed\n'
      next_restart=$(( next_restart + RESTART_EVERY ))
    fi
    if [ "$t" -ge "$next_kill" ]; then
      killed="$(psql "$admin/postgres" -Atqc "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '${db}_runtime') k" 2>/dev/null || echo '-')"
      printf 'soak: %4d s: terminated %s backends of the demo\n' "$t" "$killed"
      next_kill=$(( next_kill + KILL_EVERY ))
    fi
  done
) &
chaos_pid=$!

say "load: $WORKERS threads for $DURATION s; restarts every $RESTART_EVERY s, backends killed every $KILL_EVERY s"
set +e
python3 - "$port" "$work/tenants.txt" "$DURATION" "$WORKERS" <<'PY' | tee "$work/load.out"
import collections, json, random, sys, threading, time, urllib.error, urllib.request

port, tenants_file, duration, workers = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
tenants = {}
for line in open(tenants_file):
    slug, account_id, count = line.split()
    tenants[slug] = (int(account_id), int(count))
slugs = sorted(tenants)
lock = threading.Lock()
minutes = collections.defaultdict(collections.Counter)
problems = []
start = time.monotonic()

def record(kind, detail=None):
    with lock:
        minutes[int((time.monotonic() - start) // 60)][kind] += 1
        if detail and len(problems) < 20:
            problems.append(detail)

def worker(seed):
    rng = random.Random(seed)
    while time.monotonic() - start < duration:
        slug = rng.choice(slugs)
        account_id, count = tenants[slug]
        page = rng.randint(1, (count + 9) // 10)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/subtasks?page={page}",
                                         headers={"Host": f"{slug}.soak.test"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as e:
            if e.code == 503 and e.headers.get("Retry-After"):
                record("503")
            else:
                record("wrong", f"{slug}: HTTP {e.code}, Retry-After {e.headers.get('Retry-After')}")
            continue
        except Exception as e:
            record("wrong", f"{slug}: {e!r}")
            continue
        foreign = sum(1 for item in body["items"] if item["account_id"] != account_id)
        if foreign:
            record("foreign", f"{slug}: {foreign} foreign rows")
        elif body["tenant"] != slug or body["total"] != count or not body["items"]:
            record("wrong", f"{slug}: tenant {body['tenant']}, total {body['total']} (want {count})")
        else:
            record("200")

threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
for t in threads: t.start()
for t in threads: t.join()
total = collections.Counter()
for minute in sorted(minutes):
    c = minutes[minute]
    total += c
    print(f"soak: minute {minute + 1:2d}: {c['200']:6d} ok, {c['503']:5d} 503 with Retry-After, {c['wrong']:3d} wrong, {c['foreign']:3d} with foreign rows")
for p in problems:
    print(f"soak:   {p}")
print(f"RESULT ok={total['200']} unavailable={total['503']} wrong={total['wrong']} foreign={total['foreign']}")
PY
set -e
wait "$chaos_pid" || true
echo "$DURATION $(rss_kb)" >>"$work/rss.txt"

say "load stopped; waiting for the demo's connections to settle"
sleep 5
connections="$(psql "$admin/postgres" -Atqc "SELECT count(*) FROM pg_stat_activity WHERE usename = '${db}_runtime'")"
in_tx="$(psql "$admin/postgres" -Atqc "SELECT count(*) FROM pg_stat_activity WHERE usename = '${db}_runtime' AND xact_start IS NOT NULL")"
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || fail "rls-demo is not ready after the soak"
kill -0 "$demo_pid" || fail "rls-demo died"

result="$(grep '^RESULT ' "$work/load.out")"
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" ${result#RESULT }"; }
rss_2="$(awk '$1 == 120 {print $2}' "$work/rss.txt")"
rss_end="$(tail -n 1 "$work/rss.txt" | awk '{print $2}')"
printf '\n== soak: %d s, restarts every %d s, backends killed every %d s, %d tenants, pool %d ==\n' \
  "$DURATION" "$RESTART_EVERY" "$KILL_EVERY" "$TENANTS" "$POOL"
printf 'answers: %d ok, %d 503 with Retry-After, %d wrong (500, no Retry-After, dropped), %d with foreign rows\n' \
  "$(field ok)" "$(field unavailable)" "$(field wrong)" "$(field foreign)"
printf 'rls-demo RSS: %s kB at start, %s kB at minute 2, %s kB at the end\n' "$(head -n 1 "$work/rss.txt" | awk '{print $2}')" "${rss_2:--}" "$rss_end"
printf 'runtime-role connections after the load: %d (pool size %d), %d inside a transaction\n' "$connections" "$POOL" "$in_tx"
printf 'ERROR lines in the demo log: %d\n' "$(grep -c ' ERROR ' "$work/demo.err" || true)"
[ "$(field foreign)" -eq 0 ] || fail "foreign rows"
[ "$(field wrong)" -eq 0 ] || fail "wrong answers"
[ "$connections" -le "$POOL" ] && [ "$in_tx" -eq 0 ] || fail "connections leaked"
say "PASS"
