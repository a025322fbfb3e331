#!/usr/bin/env bash
# The signed tenant context's cost on the page query, against the plain context, in one run.
#
#   benches/signed_context.sh          (env: DURATION s a round, default 10; ROUNDS, default 3;
#                                       CONNECTIONS, default 8; TENANTS, default 100)
#
# 1. two scratch databases with the same rows ($TENANTS tenants x 500 subtasks), one migrated
#    by rls-migrate with --tenant-context plain, one with the signed context and a key file;
# 2. pgbench (simple protocol, so that BEGIN and the tenant's entry travel in one message as
#    the pool sends them), $CONNECTIONS clients, random tenant and page, rounds alternating
#    plain / signed: BEGIN + the tenant; the demo's page query (10 subtasks with task and
#    project); COMMIT;
#    - plain:  BEGIN; SELECT set_config('app.tenant_id', <id>, true)
#    - signed: BEGIN; SELECT rls_tenancy.enter(...) with the signature computed in the same
#      statement from the installed key (pgbench cannot sign; so it runs as the deploy role,
#      which can read the key and to which FORCE'd row-level security applies as well): the
#      database does all the application's signing work on top of its own, an upper bound;
# 3. prints both rates and the ratio signed / plain (goal: >= 0.90, a cost <= 10 %).
# Everything stays on 127.0.0.1 and is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

ADMIN_URL="${ADMIN_URL-postgres://postgres@127.0.0.1:5432/postgres}"
DURATION="${DURATION:-10}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-8}"
TENANTS="${TENANTS:-100}"
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
  rm -rf "$work"
}
trap cleanup EXIT
command -v pgbench >/dev/null || fail "pgbench is not installed (apt-get install -y postgresql-client)"

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
ANALYZE;
SQL
done

page="SELECT s.id, s.account_id, s.name, s.is_complete, t.name, p.name
    FROM app.subtasks s
    JOIN app.tasks t ON t.account_id = s.account_id AND t.id = s.task_id
    JOIN app.projects p ON p.account_id = t.account_id AND p.id = t.project_id
    ORDER BY s.name, s.id LIMIT 10 OFFSET :off;"
cat >"$work/plain.sql" <<SQL
\\set tid random(1, $TENANTS)
\\set off random(0, 49) * 10
BEGIN \\; SELECT set_config('app.tenant_id', :tid::text, true);
$page
COMMIT;
SQL
cat >"$work/signed.sql" <<SQL
\\set tid random(1, $TENANTS)
\\set off random(0, 49) * 10
\\set nonce random(1, 9000000000000000000)
BEGIN \\; SELECT (SELECT rls_tenancy.enter('app.tenant_id', :tid::text, k.key_id, :nonce, k.issued_ms, encode(rls_tenancy_secret.hmac(k.inner_block, k.outer_block, concat_ws('|', 'v1', 'app.tenant_id', :tid::text, :nonce, k.issued_ms)), 'hex')) FROM (SELECT key_id, inner_block, outer_block, (extract(epoch FROM statement_timestamp()) * 1000)::bigint AS issued_ms FROM rls_tenancy_secret.tenant_keys LIMIT 1) k);
$page
COMMIT;
SQL

host_port="$(psql "$ADMIN_URL" -Atqc "SELECT current_setting('port')")"
run() { # run NAME DB SCRIPT SECONDS: prints tps
  PGPASSWORD="$password" pgbench -n -M simple -f "$3" -c "$CONNECTIONS" -j 2 -T "$4" \
    -h 127.0.0.1 -p "$host_port" -U "${2}_deploy" "$2" 2>&1 |
    sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
# Each side sees its own tenant's rows only, or the comparison means nothing.
for pair in "${db}_p:$work/plain.sql" "${db}_s:$work/signed.sql"; do
  PGPASSWORD="$password" pgbench -n -M simple -f "${pair#*:}" -c 1 -t 20 -h 127.0.0.1 -p "$host_port" \
    -U "${pair%%:*}_deploy" "${pair%%:*}" >"$work/check.out" 2>&1 || { cat "$work/check.out" >&2; fail "the ${pair%%:*} script fails"; }
done
run warm "${db}_p" "$work/plain.sql" 2 >/dev/null
run warm "${db}_s" "$work/signed.sql" 2 >/dev/null
plain=0; signed=0
for round in $(seq 1 "$ROUNDS"); do
  p="$(run plain "${db}_p" "$work/plain.sql" "$DURATION")"
  s="$(run signed "${db}_s" "$work/signed.sql" "$DURATION")"
  say "round $round/$ROUNDS: plain $p tps, signed $s tps (load $(cut -d' ' -f1 /proc/loadavg))"
  plain="$(awk -v a="$plain" -v b="$p" 'BEGIN { print a + b }')"
  signed="$(awk -v a="$signed" -v b="$s" 'BEGIN { print a + b }')"
done
awk -v p="$plain" -v s="$signed" -v n="$ROUNDS" -v c="$CONNECTIONS" 'BEGIN {
  printf "page query, %d clients: plain context %.0f tps, signed context %.0f tps, ratio signed/plain %.3f (goal >= 0.90)\n",
    c, p / n, s / n, s / p }'
