#!/usr/bin/env bash
# The signed tenant context's cost on the page query in CPU instructions: a figure this shared,
# noisy machine cannot move, beside benches/signed_context.sh's rates.
#
#   benches/signed_context_instructions.sh      (env: TRANSACTIONS, default 200; TENANTS, 100;
#                                                SIGNED_SQL, a file of SQL run on the signed
#                                                database as its deploy role first, to count
#                                                variants of the signed context's functions;
#                                                RLS_PG_BINDIR, the server binaries to use)
#
# 1. a throwaway cluster (the newest local server binaries) with two scratch databases with the
#    same rows ($TENANTS tenants x 500 subtasks), one migrated by rls-migrate with
#    --tenant-context plain, one signed with a key file; vacuumed, frozen, checkpointed; the
#    cluster is then stopped;
# 2. the application's own transactions, as TenantPool sends them, run by one backend in
#    single-user mode (`postgres --single`, no network, no other process) under valgrind,
#    which counts the instructions it executes, as the runtime role:
#    - plain:  BEGIN; SELECT set_config('lock_timeout', '2s', true), set_config('app.tenant_id', ..)
#    - signed: BEGIN; SELECT set_config('lock_timeout', '2s', true), rls_tenancy.enter(..) with
#      the HMAC of a fresh nonce and the time of issue, signed here with the key file (python3);
#    then the demo's page query (PREPAREd once, EXECUTEd as sqlx's statement cache does) and
#    COMMIT; random tenants and pages, the same for both sides;
# 3. each side runs 20 and 20 + $TRANSACTIONS transactions: the difference divided by
#    $TRANSACTIONS is one transaction's instructions, start-up and shutdown cancelled out.
# Prints both and their ratio. Instructions are not time: the signed context's work (function
# calls, catalog and plan-cache look-ups) executes fewer instructions a cycle than the page
# query's tight loops, so its share of the time is about twice its share of the instructions
# (see BENCHMARKS.md); compare the figure between versions of the functions, not with the goal.
# Needs valgrind (apt-get install -y valgrind). Everything stays on 127.0.0.1 and is removed.
set -euo pipefail
cd "$(dirname "$0")/.."

TRANSACTIONS="${TRANSACTIONS:-200}"
TENANTS="${TENANTS:-100}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
work="$(mktemp -d -t rls-instr-XXXXXX)"
db="rls_ins_$$"
password="ins_$$_$RANDOM"
say() { printf 'bench-instructions: %s\n' "$*"; }
fail() { printf 'bench-instructions: FAIL: %s\n' "$*" >&2; exit 1; }
. benches/scratch.sh
cleanup() {
  stop_cluster
  rm -rf "$work"
}
trap cleanup EXIT
command -v valgrind >/dev/null || fail "valgrind is not installed (apt-get install -y valgrind)"
command -v python3 >/dev/null || fail "python3 is not installed"

start_cluster
admin="$cluster_url/postgres"
cargo build --quiet --bin rls-migrate
bin="$CARGO_TARGET_DIR/debug"
create_scratch_db "$admin" "${db}_p" "$password" "$bin" plain
create_scratch_db "$admin" "${db}_s" "$password" "$bin" signed
for name in "${db}_p" "${db}_s"; do
  seed_page_rows "$cluster_url/$name" "$TENANTS"
done
apply_signed_sql "$admin" "${db}_s" "$password" "${SIGNED_SQL:-}"
cluster_ctl -m fast stop
cluster_up=""

# script SIDE N: the runtime role's session of N transactions, signed just before it runs and
# issued 9 s ahead: the database accepts an entry within 10 s of its clock either way, and under
# valgrind a session can take more than 10 s to reach its last transaction.
script() {
  python3 - "$1" "$2" "$RLS_TENANT_KEY_FILE" "$TENANTS" "${db}_$1_runtime" <<'PY'
import hashlib, hmac, random, sys, time
side, count, key_file, tenants, role = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
key = bytes.fromhex(open(key_file).read().strip())
key_id = hashlib.sha256(key).hexdigest()[:16]
issued = int(time.time() * 1000) + 9000
rng = random.Random(7)
print(f"SET ROLE {role}")
print("PREPARE page(bigint, bigint) AS SELECT s.id, s.account_id, s.name, s.is_complete, t.name, p.name"
      " FROM app.subtasks s JOIN app.tasks t ON t.account_id = s.account_id AND t.id = s.task_id"
      " JOIN app.projects p ON p.account_id = t.account_id AND p.id = t.project_id"
      " ORDER BY s.name, s.id LIMIT $1 OFFSET $2")
for _ in range(count):
    tenant, offset, nonce = rng.randint(1, tenants), rng.randint(0, 49) * 10, rng.randint(1, 9 * 10**18)
    if side == "p":
        entry = f"set_config('app.tenant_id', '{tenant}', true)"
    else:
        signature = hmac.new(key, f"v1|app.tenant_id|{tenant}|{nonce}|{issued}".encode(), hashlib.sha256).hexdigest()
        entry = f"rls_tenancy.enter('app.tenant_id', '{tenant}', '{key_id}', {nonce}, {issued}, '{signature}')"
    print(f"BEGIN; SELECT set_config('lock_timeout', '2s', true), {entry}")
    print(f"EXECUTE page(10, {offset})")
    print("COMMIT")
PY
}

# instructions SIDE N: the instructions one single-user backend executes for N transactions.
instructions() {
  local out="$work/callgrind.$1.$2"
  script "$1" "$2" >"$work/session.sql"
  chmod 0644 "$work/session.sql"
  as_postgres valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$pgbin/postgres" --single -D "$work/pg/data" "${db}_$1" <"$work/session.sql" >"$work/output" 2>"$work/valgrind.log" \
    || fail "the $1 session failed under valgrind (see $work/valgrind.log)"
  # A single-user backend reports errors on its standard error, which valgrind's log holds.
  if grep -q ERROR "$work/output" "$work/valgrind.log"; then
    grep -h -m 3 ERROR "$work/output" "$work/valgrind.log" >&2
    if grep -q "away from the database's clock" "$work/valgrind.log"; then
      fail "the $1 session outlived its signed entries (valid 19 s from signing): this host runs valgrind slowly, set TRANSACTIONS lower (default 200)"
    fi
    fail "the $1 session met an error"
  fi
  [ "$(grep -c 'account_id = ' "$work/output")" -eq $(( $2 * 10 )) ] || fail "the $1 session did not read 10 rows a page"
  awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

chown postgres "$work"
declare -A per_tx
for side in p s; do
  base="$(instructions "$side" 20)"
  more="$(instructions "$side" $(( 20 + TRANSACTIONS )))"
  per_tx[$side]=$(( (more - base) / TRANSACTIONS ))
done
awk -v p="${per_tx[p]}" -v s="${per_tx[s]}" 'BEGIN {
  printf "page transaction, instructions: plain %d, signed %d (+%d); plain / signed %.4f\n", p, s, s - p, p / s }'
