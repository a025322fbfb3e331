#!/usr/bin/env bash
# The signed tenant context's cost on the page query, against the plain context, in one run.
#
#   benches/signed_context.sh          (env: DURATION s a round, default 10; ROUNDS, default 3;
#                                       CONNECTIONS, default 8; TENANTS, default 100;
#                                       PROTOCOL, prepared (default) or simple;
#                                       SIDES, the sides to run, default all five below;
#                                       SIGNED_SQL, a file of SQL run on the signed database
#                                       as its deploy role before the first round, to
#                                       measure variants of the signed context's functions)
#
# 1. two scratch databases with the same rows ($TENANTS tenants x 500 subtasks), one migrated
#    by rls-migrate with --tenant-context plain, one with the signed context and a key file;
#    both vacuumed, frozen and checkpointed before the first round (freshly inserted rows
#    make their first readers set hint bits and autovacuum start mid-run, in one database
#    and not the other);
# 2. pgbench (simple protocol, so that BEGIN and the tenant's entry travel in one message as
#    the pool sends them), $CONNECTIONS clients, random tenant and page, rounds alternating
#    three sides, each round starting with the next one: BEGIN + the tenant; the demo's page
#    query (10 subtasks with task and project); COMMIT. The page query is PREPAREd once per
#    connection and EXECUTEd, its plan cached as the application's is (sqlx caches each
#    connection's prepared statements); PROTOCOL=simple sends it as text every time instead,
#    planned again in each transaction, the policies' three initplans with it;
#    - plain:          BEGIN; SELECT set_config('app.tenant_id', <id>, true)
#    - plain + HMAC:   the same, and the HMAC-SHA256 the signed side computes, discarded
#    - signed:         BEGIN; SELECT rls_tenancy.enter(...) with the signature computed in the
#      same statement from the installed key. pgbench cannot sign, so it runs as the deploy
#      role, which can read the key and to which FORCE'd row-level security applies as well;
#      the application signs in Rust (a microsecond), pgbench's database does it in SQL (tens
#      of microseconds), so "plain + HMAC" pays the same SQL signing on the plain database:
#      signed / (plain + HMAC) is what the signed context costs the database (the goal),
#      signed / plain an upper bound that also charges it the SQL signing;
#    and, as the application sends it, as the runtime role:
#    - app plain:      BEGIN; SELECT set_config('lock_timeout', '2s', true),
#                      set_config('app.tenant_id', <id>, true)
#    - app signed:     BEGIN; SELECT set_config('lock_timeout', '2s', true),
#                      rls_tenancy.enter(...) with literal arguments, signed by this script
#      (python3, with the key file) just before each run: pgbench picks one of 100 entries a
#      client (a nonce is never in use by two clients at once) through a tree of \if; the
#      plain side walks the same tree. Neither side pays for signing in SQL: signed / plain
#      here is the signed context's whole cost on the database, the figure the goal is about;
# 3. prints the rates and the ratios (goal: app signed / app plain >= 0.90, a cost <= 10 %;
#    signed / (plain + HMAC) is the same cost measured beside SQL signing), and the CPU the
#    cluster spent per transaction on each side, which a loaded machine disturbs less than
#    the rates. benches/signed_context_instructions.sh counts the same transactions'
#    instructions, a figure the machine's noise cannot move.
# By default it runs on a throwaway cluster of its own (the newest local server binaries, on
# a free port): the CPU figures count every process of the cluster, and a shared server's
# other databases would both add to them and send their catalog changes to every backend.
# ADMIN_URL=postgres://... runs it on that server instead (a superuser; CPU figures then
# include whatever else the server does). Everything stays on 127.0.0.1 and is removed at
# the end.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL="${ADMIN_URL-}"
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-8}"
TENANTS="${TENANTS:-100}"
PROTOCOL="${PROTOCOL:-prepared}"
SIDES="${SIDES:-plain plain_hmac signed app_plain app_signed}"
SIGNED_SQL="${SIGNED_SQL-}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
work="$(mktemp -d -t rls-signed-XXXXXX)"
db="rls_sig_$$"
password="sig_$$_$RANDOM"
say() { printf 'bench-signed: %s\n' "$*"; }
fail() { printf 'bench-signed: FAIL: %s\n' "$*" >&2; exit 1; }
. benches/scratch.sh
cleanup() {
  drop_scratch_db "$ADMIN_URL" "${db}_p"
  drop_scratch_db "$ADMIN_URL" "${db}_s"
  stop_cluster
  rm -rf "$work"
}
trap cleanup EXIT
command -v pgbench >/dev/null || fail "pgbench is not installed (apt-get install -y postgresql-client)"
command -v python3 >/dev/null || fail "python3 is not installed (it signs the application's entries)"
[ "$DURATION" -le 18 ] || fail "DURATION must be at most 18 s (the application's signed entries are issued for one run)"

if [ -z "$ADMIN_URL" ]; then
  start_cluster
  ADMIN_URL="$cluster_url/postgres"
fi
find_postmaster "$ADMIN_URL"
cargo build --quiet --bin rls-migrate
bin="$CARGO_TARGET_DIR/debug"
create_scratch_db "$ADMIN_URL" "${db}_p" "$password" "$bin" plain
create_scratch_db "$ADMIN_URL" "${db}_s" "$password" "$bin" signed
for name in "${db}_p" "${db}_s"; do
  seed_page_rows "${ADMIN_URL%/*}/$name" "$TENANTS"
done
apply_signed_sql "$ADMIN_URL" "${db}_s" "$password" "${SIGNED_SQL:-}"

query="SELECT s.id, s.account_id, s.name, s.is_complete, t.name, p.name
    FROM app.subtasks s
    JOIN app.tasks t ON t.account_id = s.account_id AND t.id = s.task_id
    JOIN app.projects p ON p.account_id = t.account_id AND p.id = t.project_id
    ORDER BY s.name, s.id LIMIT 10 OFFSET"
case "$PROTOCOL" in
  # Prepared once per connection (pgbench keeps a client's variables across its transactions),
  # then executed: the plan, with the policies' initplans, is cached as sqlx's statement
  # cache has it for the application.
  prepared) prepare="\\if :prepared = 0
PREPARE page(bigint) AS $query \$1;
\\set prepared 1
\\endif"
            page="EXECUTE page(:off);" ;;
  simple) prepare=""; page="$query :off;" ;;
  *) fail "PROTOCOL must be prepared or simple" ;;
esac
# The HMAC-SHA256 of the entry, as the signed side's rls_tenancy.enter checks it.
hmac="encode(sha256(k.outer_block || sha256(k.inner_block || convert_to(concat_ws('|', 'v1', 'app.tenant_id', :tid::text, :nonce, k.issued_ms), 'UTF8'))), 'hex')"
keys="(SELECT key_id, inner_block, outer_block, (extract(epoch FROM statement_timestamp()) * 1000)::bigint AS issued_ms"
# The plain database gets a key of the same shape for its discarded HMAC.
psql "${ADMIN_URL%/*}/${db}_p" -v ON_ERROR_STOP=1 -q -c "CREATE TABLE public.bench_keys AS
  SELECT '0123456789abcdef'::text AS key_id, sha512('i')::bytea AS inner_block, sha512('o')::bytea AS outer_block"
psql "${ADMIN_URL%/*}/${db}_p" -v ON_ERROR_STOP=1 -q -c "ALTER TABLE public.bench_keys OWNER TO ${db}_p_deploy"
header="\\set tid random(1, $TENANTS)
\\set off random(0, 49) * 10
\\set nonce random(1, 9000000000000000000)
$prepare"
cat >"$work/plain.sql" <<SQL
$header
BEGIN \\; SELECT set_config('app.tenant_id', :tid::text, true);
$page
COMMIT;
SQL
cat >"$work/plain_hmac.sql" <<SQL
$header
BEGIN \\; SELECT set_config('app.tenant_id', :tid::text, true), $hmac FROM $keys FROM public.bench_keys LIMIT 1) k;
$page
COMMIT;
SQL
cat >"$work/signed.sql" <<SQL
$header
BEGIN \\; SELECT rls_tenancy.enter('app.tenant_id', :tid::text, k.key_id, :nonce, k.issued_ms, $hmac) FROM $keys FROM rls_tenancy_secret.tenant_keys LIMIT 1) k;
$page
COMMIT;
SQL

host_port="$(psql "$ADMIN_URL" -Atqc "SELECT current_setting('port')")"
# app_script SIDE: the application's entries (app_plain or app_signed) for $CONNECTIONS clients,
# 100 each, to $work/SIDE.sql; signed entries are issued now + 9 s, so a run must start within
# a second and last at most $DURATION <= 18 s (the database accepts 10 s either way).
app_script() {
  python3 - "$1" "$CONNECTIONS" "${RLS_TENANT_KEY_FILE:-}" "$TENANTS" "$query" >"$work/$1.sql" <<'PY'
import hashlib, hmac, random, sys, time
side, clients, key_file, tenants, query = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
per_client = 100
issued = int(time.time() * 1000) + 9000
if side == "app_signed":
    key = bytes.fromhex(open(key_file).read().strip())
    key_id = hashlib.sha256(key).hexdigest()[:16]
rng = random.Random()
def entry():
    tenant = rng.randint(1, tenants)
    if side == "app_plain":
        call = f"set_config('app.tenant_id', '{tenant}', true)"
    else:
        nonce = rng.randint(1, 9 * 10**18)
        signature = hmac.new(key, f"v1|app.tenant_id|{tenant}|{nonce}|{issued}".encode(), hashlib.sha256).hexdigest()
        call = f"rls_tenancy.enter('app.tenant_id', '{tenant}', '{key_id}', {nonce}, {issued}, '{signature}')"
    return f"BEGIN \\; SELECT set_config('lock_timeout', '2s', true), {call};"
def tree(lo, hi):  # a balanced tree of \if on :k, so each transaction tests ~10 conditions
    if hi - lo == 1:
        return [entry()]
    mid = (lo + hi) // 2
    return [f"\\if :k < {mid}"] + tree(lo, mid) + ["\\else"] + tree(mid, hi) + ["\\endif"]
lines = ["\\set off random(0, 49) * 10",
         f"\\set k :client_id * {per_client} + random(0, {per_client - 1})",
         "\\if :prepared = 0", f"PREPARE page(bigint) AS {query} $1;", "\\set prepared 1", "\\endif"]
lines += tree(0, clients * per_client) + ["EXECUTE page(:off);", "COMMIT;"]
print("\n".join(lines))
PY
}

run() { # run NAME DB SCRIPT SECONDS ROLE: prints tps and the cluster's CPU microseconds a transaction
  local before after out
  case "$1" in app_*) app_script "$1" ;; esac
  before="$(pg_cpu)"
  out="$(PGPASSWORD="$password" pgbench -n -M simple -D prepared=0 -f "$3" -c "$CONNECTIONS" -j 2 -T "$4" \
    -h 127.0.0.1 -p "$host_port" -U "${2}_$5" "$2" 2>&1)"
  sleep 0.5   # the backends pgbench leaves exit and are reaped
  after="$(pg_cpu)"
  printf '%s\n' "$out" | awk -v cpu="$(( after - before ))" -v hz="$tick_hz" '
    /^number of transactions actually processed:/ { n = $6 }
    /^tps = / { tps = $3 }
    END { printf "%.0f %.0f\n", tps, n ? cpu * 1000000 / hz / n : 0 }'
}
# Each side sees its own tenant's rows only, or the comparison means nothing.
sides=""
for name in $SIDES; do
  case "$name" in
    plain | plain_hmac) sides="$sides $name:${db}_p:deploy" ;;
    signed) sides="$sides $name:${db}_s:deploy" ;;
    app_plain) sides="$sides $name:${db}_p:runtime" ;;
    app_signed) sides="$sides $name:${db}_s:runtime" ;;
    *) fail "SIDES: unknown side $name (plain, plain_hmac, signed, app_plain, app_signed)" ;;
  esac
done
[ -n "$sides" ] || fail "SIDES names no side"
for spec in $sides; do
  IFS=: read -r name side_db role <<<"$spec"
  case "$name" in app_*) app_script "$name" ;; esac
  PGPASSWORD="$password" pgbench -n -M simple -D prepared=0 -f "$work/$name.sql" -c 1 -t 20 -h 127.0.0.1 -p "$host_port" \
    -U "${side_db}_$role" "$side_db" >"$work/check.out" 2>&1 || { cat "$work/check.out" >&2; fail "the $name script fails"; }
  run "$name" "$side_db" "$work/$name.sql" 2 "$role" >/dev/null
done
declare -A rate=() cpu=()
for round in $(seq 1 "$ROUNDS"); do
  line="round $round/$ROUNDS:"
  # Each round starts with another side, so that no side always runs last (a load that
  # grows during a round would otherwise count against the same side every time).
  read -ra order <<<"$sides"
  shift_by=$(( (round - 1) % ${#order[@]} ))
  for spec in "${order[@]:shift_by}" "${order[@]:0:shift_by}"; do
    IFS=: read -r name side_db role <<<"$spec"
    read -r tps us < <(run "$name" "$side_db" "$work/$name.sql" "$DURATION" "$role")
    rate[$name]=$(( ${rate[$name]:-0} + tps ))
    cpu[$name]=$(( ${cpu[$name]:-0} + us ))
    line="$line $name $tps tps ($us us CPU/tx),"
  done
  say "$line load $(cut -d' ' -f1 /proc/loadavg)"
done
# A figure is printed only when every side it needs ran.
awk -v p="${rate[plain]:-0}" -v h="${rate[plain_hmac]:-0}" -v s="${rate[signed]:-0}" \
    -v ap="${rate[app_plain]:-0}" -v as="${rate[app_signed]:-0}" -v cap="${cpu[app_plain]:-0}" -v cas="${cpu[app_signed]:-0}" \
    -v cp="${cpu[plain]:-0}" -v ch="${cpu[plain_hmac]:-0}" -v cs="${cpu[signed]:-0}" -v n="$ROUNDS" -v c="$CONNECTIONS" 'BEGIN {
  if (ap && as) {
    printf "page query, %d clients, as the application sends it: plain %.0f tps, signed %.0f tps\n", c, ap / n, as / n
    printf "ratio app signed / app plain %.3f (goal >= 0.90); cluster CPU per transaction %.0f / %.0f us, plain / signed %.3f\n",
      as / ap, cap / n, cas / n, cap / cas
  }
  if (p && h && s) {
    printf "signed in SQL by pgbench, as the deploy role: plain %.0f tps, plain + HMAC %.0f tps, signed %.0f tps\n", p / n, h / n, s / n
    printf "ratio signed / (plain + HMAC) %.3f; signed / plain %.3f (SQL signing charged)\n", s / h, s / p
    printf "cluster CPU per transaction: plain %.0f us, plain + HMAC %.0f us, signed %.0f us; (plain + HMAC) / signed %.3f\n",
      cp / n, ch / n, cs / n, ch / cs
  }
}'
