#!/usr/bin/env bash
# The guard against its peers: Supabase's splinter lints and pgrls, on our migrated database.
#
# For every misconfiguration a peer catches that applies to this design (the README's guard
# section lists each peer rule, whether it applies and why), a case injects it into a copy of
# a freshly migrated database, runs the peers, and checks that
#   - the peer rules the case names do fire (findings the clean database does not have), and
#   - the built rls-check refuses the database (exit 1).
# The clean migrated database itself must pass rls-check; what the peers say about it is
# printed (by design: the registry has no row-level security, policies are TO PUBLIC, ...).
# Exits 1 when a case is not refused or a peer does not catch what its case says, 2 on setup.
#
#   SPLINTER_DIR=/path/to/splinter tests/e2e/peer_linters.sh
#
# Needs: psql; pgrls (`pip install pgrls`, or PGRLS=/path/to/pgrls); a checkout of
# supabase/splinter whose lints/*.sql are read at run time (SPLINTER_DIR; nothing of it is kept
# here); a PostgreSQL superuser at $ADMIN_URL (default postgres://postgres@127.0.0.1:5432/postgres,
# loopback only). Creates roles and databases of its own and drops them on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

ADMIN_URL="${ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
case "$ADMIN_URL" in
  *@127.0.0.1[:/]* | *@localhost[:/]* | *@\[::1\][:/]*) ;;
  *) echo "peer_linters.sh: ADMIN_URL must point at a loopback server" >&2; exit 2 ;;
esac
PGRLS="${PGRLS:-pgrls}"
command -v "$PGRLS" >/dev/null || { echo "peer_linters.sh: pgrls not found (pip install pgrls, or set PGRLS)" >&2; exit 2; }
SPLINTER_DIR="${SPLINTER_DIR:-}"
[ -n "$SPLINTER_DIR" ] && compgen -G "$SPLINTER_DIR/lints/0*.sql" >/dev/null ||
  { echo "peer_linters.sh: set SPLINTER_DIR to a checkout of supabase/splinter (lints/*.sql)" >&2; exit 2; }
command -v jq >/dev/null || { echo "peer_linters.sh: jq not found" >&2; exit 2; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rls-tenancy/target}"

cargo build --quiet --bin rls-migrate --bin rls-check
BIN="$CARGO_TARGET_DIR/debug"

tag="rls_peers_$$"
deploy="${tag}_deploy"
runtime="${tag}_runtime"
password="$(head -c 32 /dev/urandom | md5sum | cut -c1-24)"
base="${tag}_base"
server="${ADMIN_URL%/*}"
hostport="${server#*@}"
schemas="app,public,archive"
work="$(mktemp -d)"
databases=("$base")
as_admin() { psql "$ADMIN_URL" -X -q -v ON_ERROR_STOP=1 "$@"; }

cleanup() {
  for db in "${databases[@]}"; do
    as_admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  as_admin -c "DROP ROLE IF EXISTS ${tag}_mid" -c "DROP ROLE IF EXISTS $runtime" \
    -c "DROP ROLE IF EXISTS $deploy" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

as_admin \
  -c "CREATE ROLE $deploy LOGIN PASSWORD '$password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS" \
  -c "CREATE ROLE $runtime LOGIN PASSWORD '$password' NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOBYPASSRLS" \
  -c "CREATE DATABASE $base OWNER $deploy"
RUST_LOG=warn DEPLOY_DATABASE_URL="postgres://$deploy:$password@$hostport/$base" \
  "$BIN/rls-migrate" --runtime-role "$runtime" --tenant-key-file "$work/tenant.key" >/dev/null

# A database copied from the migrated one, with the database-level grants rls-migrate expects.
fresh() {
  local db="$1"
  databases+=("$db")
  as_admin -c "CREATE DATABASE $db TEMPLATE $base OWNER $deploy" \
    -c "REVOKE ALL ON DATABASE $db FROM PUBLIC" -c "GRANT CONNECT ON DATABASE $db TO $runtime"
}

# The peer findings on database $1, one `rule location` per line, sorted: pgrls as the superuser
# (it reads the catalogs), splinter's lints with Supabase's API roles (anon, authenticated)
# standing for our runtime role and its API schemas for ours.
peer_findings() {
  local db="$1" url="${ADMIN_URL%/*}/$1" present
  # pgrls refuses a schema that does not exist.
  present="$(psql "$url" -X -A -t -c "SELECT string_agg(nspname, ',') FROM pg_namespace
                                      WHERE nspname = ANY (string_to_array('$schemas', ','))")"
  {
  "$PGRLS" lint --database-url "$url" --schemas "$present" --format json --fail-on error |
    jq -r '.violations[] | "pgrls:\(.rule_id) \(.location)"' || true
  for lint in "$SPLINTER_DIR"/lints/0*.sql; do
    local id view
    id="$(basename "$lint" .sql)"
    view="$(sed -e "s/'anon'/'$runtime'/g" -e "s/'authenticated'/'$runtime'/g" "$lint")"
    # A lint on Supabase's own schemas (auth, storage, ...) does not build here: skip it.
    psql "$url" -X -q -A -t -v ON_ERROR_STOP=1 2>/dev/null <<SQL | sed "s/^/splinter:${id%%_*} /" || true
BEGIN;
SET LOCAL pgrst.db_schemas = '$schemas';
CREATE SCHEMA lint;
$view
SELECT cache_key FROM lint."$id";
ROLLBACK;
SQL
  done
  } | LC_ALL=C sort -u
}

rls_check() {
  set +e
  DATABASE_URL="postgres://$runtime:$password@$hostport/$1" RUST_LOG=off "$BIN/rls-check" >"$work/check.txt" 2>&1
  local code=$?
  set -e
  echo "$code"
}

echo "== the migrated database"
peer_findings "$base" >"$work/baseline.txt"
sed 's/^/   peer: /' "$work/baseline.txt"
code="$(rls_check "$base")"
echo "   rls-check: exit $code"
failed=0
[ "$code" = 0 ] || { echo "   FAIL: rls-check must pass the migrated database"; cat "$work/check.txt"; failed=1; }

n=0
# check NAME "PEER RULES THAT MUST FIRE" "SQL ({runtime}, {deploy}, {mid} are replaced)"
check() {
  local name="$1" expected="$2" sql="$3" db code new missing=""
  n=$((n + 1))
  db="${tag}_c$n"
  fresh "$db"
  sql="${sql//\{runtime\}/$runtime}"
  sql="${sql//\{deploy\}/$deploy}"
  sql="${sql//\{mid\}/${tag}_mid}"
  psql "${ADMIN_URL%/*}/$db" -X -q -v ON_ERROR_STOP=1 -c "$sql" >/dev/null
  code="$(rls_check "$db")"
  new="$(peer_findings "$db" | LC_ALL=C comm -13 "$work/baseline.txt" -)"
  for rule in $expected; do
    grep -q "^$rule " <<<"$new" || missing="$missing $rule"
  done
  local rules
  rules="$(grep -o '^  \[[a-z-]*\]' "$work/check.txt" | tr -d ' []' | sort -u | tr '\n' ' ' || true)"
  printf '%s\n   peers:     %s\n   rls-check: exit %s %s\n' "$name" \
    "$(cut -d' ' -f1 <<<"$new" | sort -u | tr '\n' ' ')" "$code" "$rules"
  if [ "$code" != 1 ]; then echo "   FAIL: rls-check did not refuse it"; failed=1; fi
  if [ -n "$missing" ]; then echo "   FAIL: the case does not make the peers report:$missing"; failed=1; fi
  # Roles belong to the cluster: undo what a case did to them.
  as_admin -c "DROP DATABASE $db WITH (FORCE)" -c "DROP ROLE IF EXISTS ${tag}_mid" \
    -c "ALTER ROLE $runtime NOBYPASSRLS" >/dev/null 2>&1
}

CANONICAL="account_id = nullif(current_setting('app.tenant_id', true), '')::bigint"

echo "== what the peers catch, injected one at a time"
check "row-level security disabled" "pgrls:SEC032 splinter:0007 splinter:0013" \
  "ALTER TABLE app.tasks DISABLE ROW LEVEL SECURITY"
check "row-level security not forced" "pgrls:SEC002" \
  "ALTER TABLE app.tasks NO FORCE ROW LEVEL SECURITY"
check "no policy" "pgrls:SEC009 splinter:0008" \
  "DROP POLICY tenant_isolation ON app.tasks"
check "permissive USING (true)" "pgrls:SEC005 pgrls:SEC008 pgrls:SEC028 pgrls:SEC038 splinter:0024" \
  "CREATE POLICY open_all ON app.tasks USING (true) WITH CHECK (true)"
check "policy with an OR true branch" "pgrls:SEC011" \
  "ALTER POLICY tenant_isolation ON app.tasks USING ($CANONICAL OR true)"
check "WITH CHECK (true)" "pgrls:SEC020 splinter:0024" \
  "ALTER POLICY tenant_isolation ON app.tasks WITH CHECK (true)"
check "INSERT policy without WITH CHECK" "pgrls:SEC006" \
  "CREATE POLICY insert_any ON app.tasks FOR INSERT"
check "only restrictive policies" "pgrls:SEC012" \
  "DROP POLICY tenant_isolation ON app.tasks;
   CREATE POLICY tenant_only ON app.tasks AS RESTRICTIVE USING ($CANONICAL) WITH CHECK ($CANONICAL)"
check "IMMUTABLE function reading the tenant" "pgrls:SEC046" \
  "CREATE FUNCTION app.tenant() RETURNS bigint LANGUAGE sql IMMUTABLE
     AS \$\$SELECT nullif(current_setting('app.tenant_id', true), '')::bigint\$\$;
   ALTER POLICY tenant_isolation ON app.tasks USING (account_id = app.tenant()) WITH CHECK (account_id = app.tenant())"
check "view with its owner's rights" "pgrls:VIEW001 splinter:0010" \
  "CREATE VIEW app.all_emails AS SELECT account_id, email FROM app.users;
   GRANT SELECT ON app.all_emails TO {runtime}"
check "readable materialized view" "pgrls:VIEW003 splinter:0016" \
  "CREATE MATERIALIZED VIEW app.user_counts AS SELECT account_id, count(*) FROM app.users GROUP BY 1;
   GRANT SELECT ON app.user_counts TO {runtime}"
check "readable foreign table" "splinter:0017" \
  "CREATE FOREIGN DATA WRAPPER elsewhere; CREATE SERVER far FOREIGN DATA WRAPPER elsewhere;
   CREATE FOREIGN TABLE app.remote_users (account_id bigint, email text) SERVER far;
   GRANT SELECT ON app.remote_users TO {runtime}"
check "executable SECURITY DEFINER function" "pgrls:SEC014 pgrls:SEC042 splinter:0028 splinter:0029" \
  "CREATE FUNCTION app.count_all_users() RETURNS bigint LANGUAGE sql SECURITY DEFINER
     AS 'SELECT count(*) FROM app.users'"
check "SECURITY DEFINER trigger function" "pgrls:SEC013" \
  "CREATE FUNCTION app.stamp() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
     AS \$\$BEGIN RETURN NEW; END\$\$;
   REVOKE EXECUTE ON FUNCTION app.stamp() FROM PUBLIC;
   CREATE TRIGGER tasks_stamp BEFORE INSERT ON app.tasks FOR EACH ROW EXECUTE FUNCTION app.stamp()"
check "LEAKPROOF function" "pgrls:SEC017" \
  "CREATE FUNCTION public.shout(text) RETURNS boolean LANGUAGE plpgsql LEAKPROOF
     AS \$\$BEGIN RAISE EXCEPTION 'saw %', \$1; END\$\$"
check "runtime role with BYPASSRLS" "pgrls:SEC016" \
  "ALTER ROLE {runtime} BYPASSRLS"
check "SET ROLE to a BYPASSRLS role" "pgrls:SEC029" \
  "CREATE ROLE {mid} BYPASSRLS; GRANT {mid} TO {runtime}"
check "unique constraint without the tenant" "pgrls:SEC035" \
  "ALTER TABLE app.users ADD CONSTRAINT users_email_everywhere UNIQUE (email)"
check "foreign key into a tenant table" "pgrls:SEC001 splinter:0013" \
  "CREATE UNIQUE INDEX tasks_id_everywhere ON app.tasks (id);
   CREATE TABLE app.comments (task_id bigint REFERENCES app.tasks (id), body text);
   GRANT SELECT, INSERT ON app.comments TO {runtime}"
check "partition without row-level security" "pgrls:SEC041" \
  "CREATE TABLE app.events (account_id bigint NOT NULL, body text) PARTITION BY LIST (account_id);
   ALTER TABLE app.events ENABLE ROW LEVEL SECURITY; ALTER TABLE app.events FORCE ROW LEVEL SECURITY;
   CREATE POLICY tenant_isolation ON app.events USING ($CANONICAL) WITH CHECK ($CANONICAL);
   CREATE TABLE app.events_1 PARTITION OF app.events FOR VALUES IN (1);
   GRANT SELECT ON app.events, app.events_1 TO {runtime}"
check "inheritance child without row-level security" "pgrls:SEC043" \
  "CREATE TABLE app.notes (account_id bigint NOT NULL, body text);
   ALTER TABLE app.notes ENABLE ROW LEVEL SECURITY; ALTER TABLE app.notes FORCE ROW LEVEL SECURITY;
   CREATE POLICY tenant_isolation ON app.notes USING ($CANONICAL) WITH CHECK ($CANONICAL);
   CREATE TABLE app.old_notes () INHERITS (app.notes);
   GRANT SELECT ON app.notes, app.old_notes TO {runtime}"
check "default SELECT on new tables for PUBLIC" "pgrls:SEC044" \
  "ALTER DEFAULT PRIVILEGES FOR ROLE {deploy} IN SCHEMA app GRANT SELECT ON TABLES TO PUBLIC"
check "readable table of personal data" "pgrls:SEC001 splinter:0013 splinter:0023" \
  "CREATE TABLE public.customers (email text, password text, phone text);
   GRANT SELECT ON public.customers TO {runtime}"
check "copy of a tenant table in another schema" "pgrls:SEC001" \
  "CREATE SCHEMA archive; GRANT USAGE ON SCHEMA archive TO {runtime};
   CREATE TABLE archive.users AS SELECT * FROM app.users;
   GRANT SELECT ON archive.users TO {runtime}"

echo
if [ "$failed" = 0 ]; then
  echo "$n passed, 0 failed: rls-check refuses everything the peers catch here"
else
  echo "peer comparison failed: see FAIL above"
fi
exit "$failed"
