# Shared by the benchmark and end-to-end scripts (sourced, not run): a throwaway
# PostgreSQL cluster, a scratch database with its own deploy and runtime roles, and rls-demo
# started on a free loopback port. The caller sets $work (its private temporary directory)
# and defines say and fail first.

# Runs a command as the postgres OS user when root (initdb, pg_ctl and pgbouncer refuse root).
as_postgres() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

# A loopback port that was free a moment ago.
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Starts a throwaway cluster (the server binaries in $RLS_PG_BINDIR, as the test harness takes
# them, else the newest under /usr/lib/postgresql) in $work/pg on a free port.
# Sets pgbin, pg_port and cluster_url (the superuser, no database).
start_cluster() {
  pgbin="${RLS_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
  [ -n "$pgbin" ] && [ -x "$pgbin/initdb" ] || fail "no PostgreSQL server binaries (apt-get install -y postgresql)"
  pg_port="$(free_port)"
  mkdir -p "$work/pg"
  chmod 0755 "$work"
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$work/pg"; fi
  say "throwaway cluster on 127.0.0.1:$pg_port"
  as_postgres "$pgbin/initdb" -D "$work/pg/data" -U postgres -A trust >/dev/null
  cluster_ctl start
  cluster_up=1
  cluster_url="postgres://postgres@127.0.0.1:$pg_port"
}

# pg_ctl on the throwaway cluster: cluster_ctl start | cluster_ctl -m fast restart.
cluster_ctl() {
  as_postgres "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
    -o "-p $pg_port -c listen_addresses=127.0.0.1 -k $work/pg -c max_connections=300" "$@" >/dev/null
}

# Stops the throwaway cluster, if one was started (for the caller's cleanup).
stop_cluster() {
  if [ -n "${cluster_up:-}" ]; then
    as_postgres "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
  fi
}

# create_scratch_db ADMIN_URL DB PASSWORD BIN [CONTEXT]: roles DB_deploy and DB_runtime
# (PASSWORD), database DB owned by the deploy role, migrated by BIN/rls-migrate with the tenant
# context CONTEXT (signed, the default, with the key file $work/tenant.key; or plain).
create_scratch_db() {
  local admin="$1" name="$2" secret="$3" bindir="$4" context="${5:-signed}" host_port key_arg=""
  if [ "$context" = signed ]; then
    # rls-migrate creates the key file; rls-demo (start_demo) reads it from the environment.
    export RLS_TENANT_KEY_FILE="$work/tenant.key"
    key_arg="--tenant-key-file $RLS_TENANT_KEY_FILE"
  fi
  host_port="127.0.0.1:$(psql "$admin" -Atqc "SELECT current_setting('port')")"
  psql "$admin" -v ON_ERROR_STOP=1 -q \
    -c "CREATE ROLE ${name}_deploy LOGIN PASSWORD '$secret' NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS" \
    -c "CREATE ROLE ${name}_runtime LOGIN PASSWORD '$secret' NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOBYPASSRLS" \
    -c "CREATE DATABASE $name OWNER ${name}_deploy" \
    -c "REVOKE ALL ON DATABASE $name FROM PUBLIC" \
    -c "GRANT CONNECT ON DATABASE $name TO ${name}_runtime"
  RUST_LOG=warn "$bindir/rls-migrate" --database-url "postgres://${name}_deploy:$secret@$host_port/$name" \
    --runtime-role "${name}_runtime" --tenant-context "$context" $key_arg >/dev/null
}

# seed_tenants DB_URL TENANTS COUNT: accounts tenant-1 .. tenant-TENANTS, one project and one
# task each, and COUNT subtasks per tenant (an SQL expression of the tenant's slug, a.slug;
# every second one done), written as the superuser in DB_URL.
seed_tenants() {
  psql "$1" -v ON_ERROR_STOP=1 -q <<SQL
INSERT INTO app.accounts (slug, name) SELECT 'tenant-' || a, 'Account ' || a FROM generate_series(1, $2) a;
INSERT INTO app.projects (account_id, name) SELECT id, 'project of ' || slug FROM app.accounts;
INSERT INTO app.tasks (account_id, project_id, name) SELECT account_id, id, 'task ' || id FROM app.projects;
INSERT INTO app.subtasks (account_id, task_id, name, is_complete)
    SELECT t.account_id, t.id, a.slug || ' subtask ' || s, s % 2 = 0
    FROM app.tasks t JOIN app.accounts a ON a.id = t.account_id,
         LATERAL generate_series(1, $3) s;
SQL
}

# seed_page_rows DB_URL TENANTS: the page benchmarks' rows, written as the superuser in DB_URL:
# TENANTS accounts with 5 projects, 10 tasks each and 10 subtasks a task (500 a tenant);
# then vacuumed, frozen and checkpointed, as a live table settles (freshly inserted rows make
# their first readers set hint bits and autovacuum start mid-run).
seed_page_rows() {
  psql "$1" -v ON_ERROR_STOP=1 -q <<SQL
INSERT INTO app.accounts (slug, name) SELECT 'tenant-' || a, 'Account ' || a FROM generate_series(1, $2) a;
INSERT INTO app.projects (account_id, name) SELECT a.id, 'project ' || p FROM app.accounts a, generate_series(1, 5) p;
INSERT INTO app.tasks (account_id, project_id, name)
    SELECT p.account_id, p.id, 'task ' || p.id || '.' || t FROM app.projects p, generate_series(1, 10) t;
INSERT INTO app.subtasks (account_id, task_id, name)
    SELECT t.account_id, t.id, md5(t.id::text || '.' || s) FROM app.tasks t, generate_series(1, 10) s;
VACUUM (FREEZE, ANALYZE);
CHECKPOINT;
SQL
}

# apply_signed_sql ADMIN_URL DB PASSWORD FILE: runs FILE (when FILE is not empty) on DB as its
# deploy role, on the server of ADMIN_URL: the benches' SIGNED_SQL, variants of the signed
# context's functions to measure.
apply_signed_sql() {
  local admin="$1" name="$2" secret="$3" file="$4" port
  [ -n "$file" ] || return 0
  [ -r "$file" ] || fail "SIGNED_SQL: cannot read $file"
  say "applying $file to the signed database (as its deploy role)"
  port="$(psql "$admin" -Atqc "SELECT current_setting('port')")"
  PGPASSWORD="$secret" psql "postgres://${name}_deploy@127.0.0.1:$port/$name" -v ON_ERROR_STOP=1 -q \
    -f "$file" >/dev/null
}

# drop_scratch_db ADMIN_URL DB: the database and its roles, quietly (for cleanups).
drop_scratch_db() {
  psql "$1" -q -c "DROP DATABASE IF EXISTS $2 WITH (FORCE)" \
    -c "DROP ROLE IF EXISTS ${2}_runtime" -c "DROP ROLE IF EXISTS ${2}_deploy" >/dev/null 2>&1 || true
}

# start_demo BIN URL BASE_DOMAIN [FLAG...]: rls-demo as the role in URL on a free port,
# logging to $work/demo.{out,err}; waits (60 s at most) until /readyz answers 200. Sets
# demo_pid and port.
start_demo() {
  local bindir="$1" url="$2" base="$3"
  shift 3
  RUST_LOG=warn "$bindir/rls-demo" --database-url "$url" --listen 127.0.0.1:0 --base-domain "$base" "$@" \
    >"$work/demo.out" 2>"$work/demo.err" &
  demo_pid=$!
  port=""
  for _ in $(seq 1 120); do
    kill -0 "$demo_pid" 2>/dev/null || { cat "$work/demo.err" >&2; fail "rls-demo exited during start-up"; }
    port="$(sed -n 's#^rls-demo listening on http://127\.0\.0\.1:\([0-9]*\)$#\1#p' "$work/demo.out")"
    if [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; then return; fi
    sleep 0.5
  done
  fail "rls-demo did not become ready within 60 s"
}

# Stops rls-demo with SIGTERM (SIGKILL after 15 s), if it runs (for the caller's cleanup).
stop_demo() {
  if [ -n "${demo_pid:-}" ] && kill -0 "$demo_pid" 2>/dev/null; then
    kill -TERM "$demo_pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$demo_pid" 2>/dev/null || true
  fi
  demo_pid=""
}

# CPU accounting from /proc, in clock ticks (tick_hz a second). PostgreSQL's share is the
# postmaster's own time, its reaped children's (cutime/cstime: backends that ended) and its
# live children's.
tick_hz="$(getconf CLK_TCK)"
stat_fields() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null; }   # fields from 3 (state) on
cpu_of() { stat_fields "$1" | awk '{print $12 + $13}'; }          # utime + stime
pg_cpu() {
  local total children
  total="$(stat_fields "$postmaster" | awk '{print $12 + $13 + $14 + $15}')"
  children="$(ps -o pid= --ppid "$postmaster" | while read -r pid; do cpu_of "$pid"; done | awk '{t += $1} END {print t + 0}')"
  echo $(( total + children ))
}

# find_postmaster ADMIN_URL: sets postmaster, the pid pg_cpu reads, or fails (PostgreSQL must
# run on this machine with its data directory readable).
find_postmaster() {
  postmaster="$(head -n 1 "$(psql "$1" -Atqc 'SHOW data_directory')/postmaster.pid" 2>/dev/null || true)"
  [ -n "$postmaster" ] && [ -r "/proc/$postmaster/stat" ] \
    || fail "PostgreSQL must run on this machine, with its data directory readable, for the CPU figures"
}
