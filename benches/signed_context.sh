#!/usr/bin/env bash
# The signed tenant context's cost on the page query, against the plain context, in one run.
#
#   benches/signed_context.sh          (env: DURATION s a round, default 10; ROUNDS, default 3;
#                                       CONNECTIONS, default 8; TENANTS, default 100;
#                                       PROTOCOL, prepared (default) or simple)
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
# 3. prints the rates and both ratios (goal: signed / (plain + HMAC) >= 0.90, a cost <= 10 %),
#    and the CPU the cluster spent per transaction on each side, which a loaded machine
#    disturbs less than the rates.
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
  psql "${ADMIN_URL%/*}/$name" -v ON_ERROR_STOP=1 -q <<SQL
INSERT INTO app.accounts (slug, name) SELECT 'tenant-' || a, 'Account ' || a FROM generate_series(1, $TENANTS) a;
INSERT INTO app.projects (account_id, name) SELECT a.id, 'project ' || p FROM app.accounts a, generate_series(1, 5) p;
INSERT INTO app.tasks (account_id, project_id, name)
    SELECT p.account_id, p.id, 'task ' || p.id || '.' || t FROM app.projects p, generate_series(1, 10) t;
INSERT INTO app.subtasks (account_id, task_id, name)
    SELECT t.account_id, t.id, md5(t.id::text || '.' || s) FROM app.tasks t, generate_series(1, 10) s;
VACUUM (FREEZE, ANALYZE);
CHECKPOINT;
SQL
done

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
run() { # run NAME DB SCRIPT SECONDS: prints tps and the cluster's CPU microseconds a transaction
  local before after out
  before="$(pg_cpu)"
  out="$(PGPASSWORD="$password" pgbench -n -M simple -D prepared=0 -f "$3" -c "$CONNECTIONS" -j 2 -T "$4" \
    -h 127.0.0.1 -p "$host_port" -U "${2}_deploy" "$2" 2>&1)"
  sleep 0.5   # the backends pgbench leaves exit and are reaped
  after="$(pg_cpu)"
  printf '%s\n' "$out" | awk -v cpu="$(( after - before ))" -v hz="$tick_hz" '
    /^number of transactions actually processed:/ { n = $6 }
    /^tps = / { tps = $3 }
    END { printf "%.0f %.0f\n", tps, n ? cpu * 1000000 / hz / n : 0 }'
}
# Each side sees its own tenant's rows only, or the comparison means nothing.
sides="plain:${db}_p plain_hmac:${db}_p signed:${db}_s"
for side in $sides; do
  PGPASSWORD="$password" pgbench -n -M simple -D prepared=0 -f "$work/${side%%:*}.sql" -c 1 -t 20 -h 127.0.0.1 -p "$host_port" \
    -U "${side#*:}_deploy" "${side#*:}" >"$work/check.out" 2>&1 || { cat "$work/check.out" >&2; fail "the ${side%%:*} script fails"; }
  run warm "${side#*:}" "$work/${side%%:*}.sql" 2 >/dev/null
done
declare -A rate=([plain]=0 [plain_hmac]=0 [signed]=0) cpu=([plain]=0 [plain_hmac]=0 [signed]=0)
for round in $(seq 1 "$ROUNDS"); do
  line="round $round/$ROUNDS:"
  # Each round starts with another side, so that no side always runs last (a load that
  # grows during a round would otherwise count against the same side every time).
  read -ra order <<<"$sides"
  shift_by=$(( (round - 1) % ${#order[@]} ))
  for side in "${order[@]:shift_by}" "${order[@]:0:shift_by}"; do
    read -r tps us < <(run "${side%%:*}" "${side#*:}" "$work/${side%%:*}.sql" "$DURATION")
    rate[${side%%:*}]=$(( ${rate[${side%%:*}]} + tps ))
    cpu[${side%%:*}]=$(( ${cpu[${side%%:*}]} + us ))
    line="$line ${side%%:*} $tps tps ($us us CPU/tx),"
  done
  say "$line load $(cut -d' ' -f1 /proc/loadavg)"
done
awk -v p="${rate[plain]}" -v h="${rate[plain_hmac]}" -v s="${rate[signed]}" \
    -v cp="${cpu[plain]}" -v ch="${cpu[plain_hmac]}" -v cs="${cpu[signed]}" -v n="$ROUNDS" -v c="$CONNECTIONS" 'BEGIN {
  printf "page query, %d clients: plain %.0f tps, plain + HMAC %.0f tps, signed %.0f tps\n", c, p / n, h / n, s / n
  printf "ratio signed / (plain + HMAC) %.3f (goal >= 0.90); signed / plain %.3f (upper bound, SQL signing charged)\n", s / h, s / p
  printf "cluster CPU per transaction: plain %.0f us, plain + HMAC %.0f us, signed %.0f us; (plain + HMAC) / signed %.3f\n",
    cp / n, ch / n, cs / n, ch / cs }'
