#!/usr/bin/env bash
# End-to-end failover through a real HA manager: a Patroni cluster of three members with etcd,
# Patroni's synchronous mode on, rls-demo pointed at every member, and the leader's node killed
# under a mixed read/write load.
#
#   tests/e2e/patroni.sh            # exit 0 on success, 1 on a failed check, 2 on set-up
#
# 1. starts etcd (one member) and three Patroni members on loopback ports of a temporary
#    directory (PostgreSQL 15 binaries; Patroni runs as the postgres user), with
#    synchronous_mode (and synchronous_mode_strict unless SYNC_STRICT=false); waits until
#    there is a leader, a synchronous standby and a streaming replica;
# 2. through the leader: the deploy and runtime roles, rls-migrate with a tenant key file,
#    and $TENANTS tenants whose subtasks are numerous enough that every write below toggles a
#    subtask nobody toggled before (its state before the write is known, so its acknowledged
#    state can be checked on the new leader, whatever else happened);
# 3. starts rls-demo with every member as the primary's hosts and every member as a replica
#    (--replica-url), and drives writes (POST /api/subtasks/{id}/toggle, each recording the
#    state rls-demo acknowledged) and reads (GET /api/subtasks/{id}) from several threads;
# 4. after LOAD_BEFORE seconds, kills the leader's node: SIGKILL to its Patroni, its
#    postmaster and every postmaster child at once, the way a machine that loses power stops
#    (no shutdown checkpoint, no leader key released: Patroni's other members must wait for
#    the key's TTL to run out, then promote the synchronous standby). A kill -9 of the
#    postmaster alone is not a failover: the leader's Patroni restarts it in place;
# 5. waits for Patroni to promote, keeps the load for LOAD_AFTER more seconds;
# 6. restarts the killed node's Patroni, which rejoins it as a replica (pg_rewind, or a new
#    clone), and waits until rls-demo reads from it again (it is one of its replicas, checked
#    again every --check-interval, 2 s); then stops the load and reads every subtask on the
#    new leader.
# Reports the seconds without a successful write, the failed reads and the writes that were
# acknowledged but are lost. Exits 1 when a read failed while a replica was up (the surviving
# members' servers did not restart, and one of them is a replica at the end), an acknowledged
# write is lost or applied twice, an unwritten subtask changed, or no write sent after the kill
# was acknowledged (rls-demo did not follow the promotion), or the rejoined node is not read
# from within 30 s of its rejoining.
#
# Env: CARGO_TARGET_DIR, PG_BINDIR (default /usr/lib/postgresql/15/bin), LOAD_BEFORE (5),
# LOAD_AFTER (10), TTL (Patroni's leader key TTL, 10), SYNC_STRICT (true), LIMIT (the whole
# run's bound in seconds, 300), KEEP (keep the temporary directory and its logs). Needs patroni, etcd, psql, curl and python3; installs the
# patroni and etcd-server packages with apt-get when running as root and they are missing.
# Everything stays on 127.0.0.1 (ports other than 5432) and is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# Patroni 3.0 knows PostgreSQL up to 15: the distribution's 15 if installed, else the newest.
if [ -z "${PG_BINDIR:-}" ]; then
  PG_BINDIR=/usr/lib/postgresql/15/bin
  [ -d "$PG_BINDIR" ] || PG_BINDIR="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
fi
LOAD_BEFORE="${LOAD_BEFORE:-5}"
LOAD_AFTER="${LOAD_AFTER:-10}"
TTL="${TTL:-10}"
SYNC_STRICT="${SYNC_STRICT:-true}"
LIMIT="${LIMIT:-300}"
TENANTS=20
SUBTASKS_PER_TENANT=500
MEMBERS=(node1 node2 node3)
work="$(mktemp -d -t rls-patroni-XXXXXX)"
pg_user=postgres
db="rls_patroni"
password="patroni_$$_$RANDOM"
etcd_pid=""
watchdog_pid=""
load_pid=""
declare -A patroni_pid pg_port rest_port

say() { printf 'e2e-patroni: %s\n' "$*"; }
fail() { printf 'e2e-patroni: FAIL: %s\n' "$*" >&2; exit 1; }
setup_fail() { printf 'e2e-patroni: SETUP: %s\n' "$*" >&2; exit 2; }
. benches/scratch.sh

# Starts a command in the background in a session of its own (its PID is its process
# group's), as the postgres OS user when root; sets spawned.
spawn() {
  local log="$1"
  shift
  if [ "$(id -u)" -eq 0 ]; then
    # From the work directory: the checkout's may be closed to the postgres user (a clone in a
    # mktemp -d directory is 0700), and initdb fails to start from a directory it cannot read.
    (cd "$work" && exec setsid runuser -u postgres -- "$@") >>"$log" 2>&1 &
  else
    setsid "$@" >>"$log" 2>&1 &
  fi
  spawned=$!
  # Its end (a SIGKILL, mostly) is no news for the job report.
  disown "$spawned"
}

# The PIDs of a member's postmaster and of its children, if it runs.
member_pids() {
  local pid_file="$work/$1/data/postmaster.pid" postmaster
  [ -s "$pid_file" ] || return 0
  postmaster="$(head -n 1 "$pid_file")"
  kill -0 "$postmaster" 2>/dev/null || return 0
  echo "$postmaster"
  pgrep -P "$postmaster" || true
}

# SIGKILL to a member's Patroni (its whole process group: runuser and patroni), its
# postmaster and the postmaster's children, in one kill. Sets killed_at (epoch seconds).
kill_member() {
  local pids
  pids="$(member_pids "$1" | tr '\n' ' ')"
  killed_at="$(date +%s.%N)"
  # shellcheck disable=SC2086
  kill -KILL -- "-${patroni_pid[$1]}" $pids 2>/dev/null || true
}

cleanup() {
  local member sleeper
  if [ -n "$watchdog_pid" ]; then
    # Its sleep too: it would hold the script's output open until LIMIT.
    sleeper="$(pgrep -P "$watchdog_pid" || true)"
    # shellcheck disable=SC2086
    kill "$watchdog_pid" $sleeper 2>/dev/null || true
  fi
  if [ -n "$load_pid" ]; then kill -KILL "$load_pid" 2>/dev/null || true; fi
  stop_demo
  for member in "${MEMBERS[@]}"; do
    if [ -n "${patroni_pid[$member]:-}" ]; then kill_member "$member"; fi
  done
  if [ -n "$etcd_pid" ]; then kill -KILL -- "-$etcd_pid" 2>/dev/null || true; fi
  # The killed postmasters' children notice their parent's death on their own; wait for them
  # before removing their directory.
  for _ in $(seq 1 20); do
    pgrep -u "$pg_user" -f -- "$work/" >/dev/null 2>&1 || break
    sleep 0.25
  done
  if [ -n "${KEEP:-}" ]; then say "kept $work (KEEP)"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT
# The whole run is bounded: past LIMIT seconds the script is stopped (and cleans up).
( sleep "$LIMIT"; printf 'e2e-patroni: FAIL: still running after %s s\n' "$LIMIT" >&2; kill -TERM $$ ) &
watchdog_pid=$!

for package in patroni:patroni etcd:etcd-server; do
  command -v "${package%%:*}" >/dev/null && continue
  [ "$(id -u)" -eq 0 ] || setup_fail "${package%%:*} is not installed (apt-get install -y ${package#*:})"
  say "installing ${package#*:}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${package#*:}" >/dev/null
done
for tool in psql curl python3 pgrep; do
  command -v "$tool" >/dev/null || setup_fail "$tool is not installed"
done
[ -x "$PG_BINDIR/postgres" ] || setup_fail "no PostgreSQL server binaries in $PG_BINDIR (set PG_BINDIR)"
say "$(patroni --version), $(etcd --version | head -n 1), $("$PG_BINDIR/postgres" --version)"
chmod 0755 "$work"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$work"; fi
pg_user="$(if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi)"

say "building rls-demo and rls-migrate"
cargo build --quiet --bin rls-demo --bin rls-migrate
bin="$CARGO_TARGET_DIR/debug"

etcd_client="$(free_port)"
etcd_peer="$(free_port)"
say "etcd on 127.0.0.1:$etcd_client"
spawn "$work/etcd.log" etcd --name e2e --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_client" --advertise-client-urls "http://127.0.0.1:$etcd_client" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "e2e=http://127.0.0.1:$etcd_peer"
etcd_pid=$spawned
for _ in $(seq 1 40); do
  curl -sf "http://127.0.0.1:$etcd_client/health" >/dev/null 2>&1 && break
  sleep 0.25
done
curl -sf "http://127.0.0.1:$etcd_client/health" >/dev/null || { tail -n 20 "$work/etcd.log" >&2; setup_fail "etcd did not start"; }

# loop_wait + 2 * retry_timeout must stay within the TTL (Patroni's rule of thumb).
retry_timeout=$(((TTL - 1) / 2 - 1))
[ "$retry_timeout" -ge 2 ] || setup_fail "TTL=$TTL is too short (at least 8)"
for member in "${MEMBERS[@]}"; do
  pg_port[$member]="$(free_port)"
  rest_port[$member]="$(free_port)"
  mkdir -p "$work/$member"
  cat >"$work/$member/patroni.yml" <<YAML
scope: rls-e2e
namespace: /rls-e2e-$$/
name: $member
restapi:
  listen: 127.0.0.1:${rest_port[$member]}
  connect_address: 127.0.0.1:${rest_port[$member]}
etcd3:
  hosts: 127.0.0.1:$etcd_client
bootstrap:
  dcs:
    ttl: $TTL
    loop_wait: 1
    retry_timeout: $retry_timeout
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    synchronous_mode_strict: $SYNC_STRICT
    postgresql:
      # The killed leader rejoins as a replica: rewound to the new leader's timeline, or
      # cloned again when it cannot be.
      use_pg_rewind: true
      remove_data_directory_on_rewind_failure: true
      remove_data_directory_on_diverged_timelines: true
      use_slots: true
      parameters:
        wal_log_hints: "on"
        max_connections: 100
        wal_level: replica
        hot_standby: "on"
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 64MB
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 trust
    - host all all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:${pg_port[$member]}
  connect_address: 127.0.0.1:${pg_port[$member]}
  data_dir: $work/$member/data
  bin_dir: $PG_BINDIR
  pgpass: $work/$member/pgpass
  authentication:
    replication:
      username: replicator
      password: rep-$password
    superuser:
      username: postgres
      password: su-$password
  parameters:
    unix_socket_directories: $work/$member
    # A standby retries its primary every second (default 5 s): after a promotion, the
    # remaining replica reconnects, and becomes the synchronous standby, sooner.
    wal_retrieve_retry_interval: 1s
YAML
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres "$work/$member"; fi
done

start_member() {
  spawn "$work/$1.log" patroni "$work/$1/patroni.yml"
  patroni_pid[$1]=$spawned
}

# One line per member Patroni knows: name role state port (role leader, sync_standby or
# replica); empty while the REST API does not answer.
cluster() {
  local member
  for member in "${MEMBERS[@]}"; do
    [ "$member" = "${1:-}" ] && continue
    curl -sf --max-time 2 "http://127.0.0.1:${rest_port[$member]}/cluster" 2>/dev/null && return
  done
}
cluster_lines() {
  cluster "${1:-}" | python3 -c '
import json, sys
text = sys.stdin.read()
for m in (json.loads(text)["members"] if text else []):
    print(m["name"], m["role"], m["state"], m.get("port", 0))'
}

# Waits (up to $2 seconds) until the members other than $1 (the killed one, if any) are a
# running leader, a running synchronous standby and, with three live members, a running
# replica. Sets leader.
wait_for_cluster() {
  local skip="$1" bound="$2" want deadline lines
  want=$([ -n "$skip" ] && echo 2 || echo 3)
  deadline=$((SECONDS + bound))
  while [ "$SECONDS" -lt "$deadline" ]; do
    lines="$(cluster_lines "$skip" | grep -v "^$skip " || true)"
    leader="$(awk '$2 == "leader" && $3 == "running" {print $1}' <<<"$lines")"
    if [ -n "$leader" ] && [ "$(grep -c ' running ' <<<"$lines")" -ge "$want" ] \
      && grep -q ' sync_standby running ' <<<"$lines" \
      && { [ "$want" -eq 2 ] || grep -q ' replica running ' <<<"$lines"; }; then
      return 0
    fi
    sleep 0.2
  done
  printf '%s\n' "$lines" >&2
  return 1
}

say "Patroni members ${MEMBERS[*]} (synchronous_mode, strict: $SYNC_STRICT, ttl $TTL s)"
start_member "${MEMBERS[0]}"
# The first member bootstraps the cluster; the others join once it leads (a replica that
# starts first would wait for a leader anyway, but one at a time keeps the log readable).
wait_leader_deadline=$((SECONDS + 60))
until [ "$(cluster_lines | awk '$2 == "leader" && $3 == "running"' | wc -l)" -eq 1 ]; do
  [ "$SECONDS" -lt "$wait_leader_deadline" ] || { tail -n 30 "$work/${MEMBERS[0]}.log" >&2; setup_fail "no leader after 60 s"; }
  sleep 0.25
done
for member in "${MEMBERS[@]:1}"; do start_member "$member"; done
wait_for_cluster "" 90 || { tail -n 20 "$work"/node*.log >&2; setup_fail "the cluster did not come up with a synchronous standby within 90 s"; }
first_leader="$leader"
say "leader $first_leader; $(cluster_lines | awk '{printf "%s %s on %s; ", $1, $2, $4}')"

admin_url="postgres://postgres@127.0.0.1:${pg_port[$first_leader]}/postgres"
say "through the leader: roles, database $db, migration, $TENANTS tenants of $SUBTASKS_PER_TENANT subtasks"
create_scratch_db "$admin_url" "$db" "$password" "$bin"
seed_tenants "${admin_url%/*}/$db" "$TENANTS" "$SUBTASKS_PER_TENANT"
psql "${admin_url%/*}/$db" -Atq -F ' ' \
  -c "SELECT s.id, a.slug, s.account_id, s.is_complete FROM app.subtasks s JOIN app.accounts a ON a.id = s.account_id ORDER BY s.id" \
  >"$work/before.txt"

hosts=""
replica_flags=()
for member in "${MEMBERS[@]}"; do
  hosts="${hosts:+$hosts,}127.0.0.1:${pg_port[$member]}"
  replica_flags+=(--replica-url "postgres://${db}_runtime:$password@127.0.0.1:${pg_port[$member]}/$db")
done
runtime_url="postgres://${db}_runtime:$password@$hosts/$db"
say "starting rls-demo: primary hosts $hosts, every member a replica too"
start_demo "$bin" "$runtime_url" patroni.test "${replica_flags[@]}" --check-interval 2s \
  --max-connections 8 --acquire-timeout 5s --debug-routing

cat >"$work/load.py" <<'PY'
"""The load (`load.py run PORT BEFORE STOP_FILE OUT`) and its report
(`load.py report OUT BEFORE AFTER KILL_AT PROMOTED_AT SYNCED_AT REPLICA_UP`)."""
import json, os, random, sys, threading, time, urllib.error, urllib.request

WRITERS, READERS = 4, 4
WRITE_PAUSE, READ_PAUSE, FAILED_PAUSE = 0.03, 0.02, 0.1


def load_subtasks(path):
    rows = {}
    for line in open(path):
        sid, slug, account, done = line.split()
        rows[int(sid)] = (slug, int(account), done == "t")
    return rows


def request(port, method, slug, path):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 headers={"Host": f"{slug}.patroni.test"})
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            return response.status, json.load(response), response.headers.get("x-served-by")
    except urllib.error.HTTPError as e:
        return e.code, None, None
    except Exception as e:  # a dropped connection or a timeout: the outcome is unknown
        return 0, repr(e), None


def run(port, before, stop_file, out):
    subtasks = load_subtasks(before)
    ids = sorted(subtasks)
    # Writer w toggles ids w, w + WRITERS, ...: each subtask once at most.
    writes, reads = [], []
    lock = threading.Lock()

    def writer(w):
        for sid in ids[w::WRITERS]:
            if os.path.exists(stop_file):
                return
            slug, account, _ = subtasks[sid]
            started = time.time()
            status, body, _ = request(port, "POST", slug, f"/api/subtasks/{sid}/toggle")
            ended = time.time()
            ok = status == 200 and isinstance(body, dict) and body.get("id") == sid
            with lock:
                writes.append({"id": sid, "start": started, "end": ended, "status": status,
                               "state": body.get("is_complete") if ok else None})
            time.sleep(WRITE_PAUSE if ok else FAILED_PAUSE)

    def reader(r):
        rng = random.Random(r)
        while not os.path.exists(stop_file):
            sid = rng.choice(ids)
            slug, account, _ = subtasks[sid]
            started = time.time()
            status, body, served_by = request(port, "GET", slug, f"/api/subtasks/{sid}")
            ok = (status == 200 and isinstance(body, dict) and body.get("id") == sid
                  and body.get("account_id") == account)
            with lock:
                reads.append({"id": sid, "start": started, "end": time.time(), "status": status,
                              "ok": ok, "served_by": served_by,
                              "error": None if ok else str(body)[:200]})
            time.sleep(READ_PAUSE)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    threads += [threading.Thread(target=reader, args=(r,)) for r in range(READERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    json.dump({"writes": writes, "reads": reads}, open(out, "w"))


def report(out, before, after, kill_at, promoted_at, synced_at, replica_up):
    log = json.load(open(out))
    initial = load_subtasks(before)
    final = {int(sid): done == "t" for sid, done in (l.split() for l in open(after))}
    writes, reads = log["writes"], log["reads"]
    acked = [w for w in writes if w["state"] is not None]
    unknown = {w["id"] for w in writes if w["state"] is None}
    acked_ids = {w["id"] for w in acked}
    lost = [w for w in acked if final.get(w["id"]) != w["state"]]
    # A toggle acknowledged with the state it started from was applied twice.
    twice = [w for w in acked if w["state"] == initial[w["id"]][2]]
    untouched_changed = [sid for sid, (_, _, done) in initial.items()
                         if sid not in acked_ids and sid not in unknown and final.get(sid) != done]
    ack_times = sorted(w["end"] for w in acked)
    gaps = [b - a for a, b in zip(ack_times, ack_times[1:])]
    first_after_kill = min((w["end"] for w in acked if w["start"] >= kill_at), default=None)
    failed_reads = [r for r in reads if not r["ok"]]
    served = {}
    for r in reads:
        if r["ok"]:
            phase = "before the kill" if r["end"] < kill_at else "after the kill"
            served.setdefault(phase, {}).setdefault(r["served_by"], 0)
            served[phase][r["served_by"]] += 1

    def p(line):
        print(f"e2e-patroni: {line}")

    p(f"writes: {len(writes)} sent, {len(acked)} acknowledged, {len(unknown)} failed "
      f"(outcome unknown to the client; {len([w for w in writes if w['start'] >= kill_at and w['state'] is None])} after the kill)")
    p(f"Patroni's new leader seen {promoted_at - kill_at:.1f} s after the kill, "
      f"its synchronous standby {synced_at - kill_at:.1f} s after")
    if first_after_kill is None:
        p("no write sent after the kill was acknowledged")
    else:
        p(f"write unavailability: {first_after_kill - kill_at:.1f} s from the kill to the first "
          f"acknowledged write sent after it; longest gap between acknowledged writes "
          f"{max(gaps, default=0):.1f} s")
    p(f"reads: {len(reads)} sent, {len(failed_reads)} failed; served by {json.dumps(served, sort_keys=True)}")
    for r in failed_reads[:10]:
        p(f"  failed read of {r['id']} {r['end'] - kill_at:+.2f} s from the kill: HTTP {r['status']} {r['error']}")
    p(f"acknowledged writes lost on the new leader: {len(lost)}")
    for w in lost[:10]:
        p(f"  subtask {w['id']}: acknowledged {w['state']} {w['end'] - kill_at:+.2f} s from the kill, "
          f"now {final.get(w['id'])}")
    p(f"acknowledged writes applied twice: {len(twice)}; unwritten subtasks that changed: {len(untouched_changed)}")
    figures = {"new_leader_s": round(promoted_at - kill_at, 1),
               "write_unavailability_s": None if first_after_kill is None else round(first_after_kill - kill_at, 1),
               "longest_write_gap_s": round(max(gaps, default=0), 1),
               "failed_reads": len(failed_reads), "lost_writes": len(lost),
               "acknowledged_writes": len(acked), "reads": len(reads)}
    p(f"figures: {json.dumps(figures)}")
    bad = (failed_reads and replica_up) or lost or twice or untouched_changed or first_after_kill is None
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    if sys.argv[1] == "run":
        run(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        report(*sys.argv[2:5], *map(float, sys.argv[5:8]), sys.argv[8] == "true")
PY

say "load: 4 writers (each toggle on a subtask of its own), 4 readers, for $LOAD_BEFORE s"
python3 "$work/load.py" run "$port" "$work/before.txt" "$work/stop" "$work/load.json" &
load_pid=$!
sleep "$LOAD_BEFORE"
kill -0 "$load_pid" 2>/dev/null || fail "the load generator stopped early"

# When each member's server started: a member whose start time did not change was up
# throughout (a restart would make a failed read expected).
started() {
  local member
  for member in "${MEMBERS[@]}"; do
    [ "$member" = "$first_leader" ] && continue
    printf '%s %s\n' "$member" "$(psql "postgres://postgres@127.0.0.1:${pg_port[$member]}/postgres" -Atqc 'SELECT pg_postmaster_start_time()')"
  done
}
started >"$work/started-before.txt"
say "killing the leader's node $first_leader (Patroni, postmaster and its children, SIGKILL)"
kill_member "$first_leader"
kill_at="$killed_at"
promote_deadline=$((SECONDS + 60))
until cluster_lines "$first_leader" | grep -v "^$first_leader " | grep -q ' leader running '; do
  [ "$SECONDS" -lt "$promote_deadline" ] || { tail -n 20 "$work"/node*.log >&2; fail "Patroni promoted no member within 60 s of the kill"; }
  sleep 0.1
done
promoted_at="$(date +%s.%N)"
wait_for_cluster "$first_leader" 60 || { tail -n 20 "$work"/node*.log >&2; fail "the new leader had no synchronous standby within 60 s of its promotion"; }
synced_at="$(date +%s.%N)"
say "new leader $leader; keeping the load for $LOAD_AFTER s"
sleep "$LOAD_AFTER"

# The killed node comes back: Patroni rejoins it as a replica of the new leader, and rls-demo
# (which has it among its replicas, marked down since the kill) must serve reads from it again
# once a check finds it answering (--check-interval 2s). Reads it serves count as scans of
# app.subtasks in its own statistics (a standby's replay counts none; the checks read no table).
say "restarting the killed node $first_leader's Patroni: it must rejoin as a replica and serve reads again"
start_member "$first_leader"
rejoin_started="$(date +%s.%N)"
rejoin_deadline=$((SECONDS + 90))
until cluster_lines | grep -qE "^$first_leader (replica|sync_standby) running "; do
  [ "$SECONDS" -lt "$rejoin_deadline" ] || { tail -n 30 "$work/$first_leader.log" >&2; fail "$first_leader did not rejoin as a replica within 90 s"; }
  sleep 0.2
done
rejoined_at="$(date +%s.%N)"
scans() {
  psql "postgres://postgres@127.0.0.1:${pg_port[$first_leader]}/$db" -Atqc \
    "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relid = 'app.subtasks'::regclass" 2>/dev/null || echo 0
}
scans_at_rejoin="$(scans)"
serve_deadline=$((SECONDS + 30))
until [ "$(scans)" -gt "$scans_at_rejoin" ]; do
  [ "$SECONDS" -lt "$serve_deadline" ] || fail "rls-demo did not read from the rejoined $first_leader within 30 s (check interval 2 s)"
  sleep 0.2
done
serving_at="$(date +%s.%N)"
say "$(awk -v a="$rejoin_started" -v b="$rejoined_at" -v c="$serving_at" \
  'BEGIN {printf "rejoined as a replica %.1f s after its Patroni restarted; rls-demo read from it %.1f s later", b - a, c - b}')"
touch "$work/stop"
wait "$load_pid" || fail "the load generator failed"
load_pid=""

started >"$work/started-after.txt"
replica="$(cluster_lines "$first_leader" | awk -v killed="$first_leader" '$1 != killed && $2 != "leader" {print $1}')"
replica_up=false
if diff -q "$work/started-before.txt" "$work/started-after.txt" >/dev/null && [ -n "$replica" ] \
  && [ "$(psql "postgres://postgres@127.0.0.1:${pg_port[$replica]}/postgres" -Atqc 'SELECT pg_is_in_recovery()')" = t ]; then
  replica_up=true
  say "replica $replica and the new leader $leader ran throughout (neither server restarted)"
else
  say "a surviving member restarted during the run: failed reads are reported, not judged"
fi
psql "postgres://postgres@127.0.0.1:${pg_port[$leader]}/$db" -Atq -F ' ' \
  -c "SELECT id, is_complete FROM app.subtasks ORDER BY id" >"$work/after.txt"
status=0
python3 "$work/load.py" report "$work/load.json" "$work/before.txt" "$work/after.txt" "$kill_at" "$promoted_at" "$synced_at" "$replica_up" \
  || status=$?
if [ "$status" -ne 0 ]; then
  grep -E ' (ERROR|WARN) ' "$work/demo.err" | tail -n 10 >&2 || true
  fail "reads failed, acknowledged writes were lost or applied twice, or writes did not resume"
fi
say "PASS: leader killed under load; Patroni promoted $leader; no failed read, no acknowledged write lost ($SECONDS s in all)"
