#!/usr/bin/env bash
# End-to-end test in a real browser: run rls-demo in embedded mode, open two tenants' pages
# in headless Chromium, and check that each shows its own subtasks (the ones its
# /api/subtasks JSON lists) and none of the other tenant's. Then stop the demo with SIGINT
# and check the embedded cluster's directory is gone. The same again with --strategy schema
# (each tenant's rows in its own schema) and --strategy database (each tenant's rows in its
# own database, over two embedded servers; tenant-1 and tenant-2 on different ones). (That names which are markup are shown as text is
# checked byte for byte by tests/it/http/pages.rs; the demo's data is rls-seed's.)
#
#   tests/e2e/browser.sh            # exit 0 on success, non-zero on any failure
#
# Env: CARGO_TARGET_DIR (where to build), SCREENSHOT (default /tmp/rls-demo-tenant-1.png).
# Needs chromium, curl, python3 and the PostgreSQL server binaries; installs chromium with
# apt-get when running as root and it is missing. Everything stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
screenshot="${SCREENSHOT:-/tmp/rls-demo-tenant-1.png}"
work="$(mktemp -d -t rls-e2e-XXXXXX)"
demo_pid=""

say() { printf 'e2e: %s\n' "$*"; }
fail() { printf 'e2e: FAIL: %s\n' "$*" >&2; exit 1; }

cleanup() {
  if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
    kill -INT "$demo_pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$demo_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" -eq 0 ]; then
    say "installing chromium"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
  else
    fail "chromium is not installed (apt-get install -y chromium)"
  fi
fi
for tool in curl python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done

say "building rls-demo"
cargo build --quiet --bin rls-demo
demo="$CARGO_TARGET_DIR/debug/rls-demo"

chromium_run() {
  local profile
  profile="$(mktemp -d -p "$work" chromium-XXXXXX)"
  timeout 90 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$profile" \
    "$@" 2>>"$work/chromium.err"
}

# One pass of the demo in embedded mode: MODE names it, the remaining arguments go to
# rls-demo. Starts it, checks tenant-1's and tenant-2's pages, stops it with SIGINT.
demo_pass() {
  local mode="$1"
  shift
  say "$mode: starting rls-demo (embedded PostgreSQL) on a free loopback port"
  # Port 0: the kernel picks a free port, and the demo prints the URLs with it.
  env -u DATABASE_URL RUST_LOG=warn "$demo" --listen 127.0.0.1:0 --base-domain localhost "$@" \
    >"$work/demo.out" 2>"$work/demo.err" &
  demo_pid=$!

  port=""
  for _ in $(seq 1 120); do
    kill -0 "$demo_pid" 2>/dev/null || { cat "$work/demo.err" >&2; fail "rls-demo exited during start-up"; }
    port="$(sed -n 's#^rls-demo listening on http://127\.0\.0\.1:\([0-9]*\)$#\1#p' "$work/demo.out")"
    if [ -n "$port" ] && curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; then break; fi
    sleep 0.5
  done
  [ -n "$port" ] || fail "rls-demo did not start within 60 s"
  cluster_dir="$(sed -n 's#^embedded PostgreSQL in \(.*\) (removed on Ctrl-C)$#\1#p' "$work/demo.out")"
  [ -n "$cluster_dir" ] && [ -d "$cluster_dir" ] || fail "no embedded cluster directory reported"
  say "$mode: rls-demo is up on port $port, cluster in $cluster_dir"
  grep -q "^open http://tenant-1.localhost:$port/\( (.*)\)\?$" "$work/demo.out" || fail "tenant-1's URL was not printed"
  second_dir=""
  if [ "$mode" = database ]; then
    # Two servers, and the two tenants compared below on different ones.
    second_dir="$(sed -n 's#^second embedded PostgreSQL in \(.*\) (removed on Ctrl-C)$#\1#p' "$work/demo.out")"
    [ -n "$second_dir" ] && [ -d "$second_dir" ] || fail "no second embedded cluster directory reported"
    grep -q "^open http://tenant-1.localhost:$port/ (its own database, on server two)$" "$work/demo.out" \
      || fail "tenant-1 was not reported on server two"
    grep -q "^open http://tenant-2.localhost:$port/ (its own database, on server one)$" "$work/demo.out" \
      || fail "tenant-2 was not reported on server one"
  fi

  for tenant in tenant-1 tenant-2; do
    url="http://$tenant.localhost:$port"
    curl -sf --resolve "$tenant.localhost:$port:127.0.0.1" "$url/api/subtasks" >"$work/$mode-$tenant.json" \
      || fail "GET $url/api/subtasks failed"
    say "$mode: opening $url/subtasks in chromium"
    chromium_run --dump-dom "$url/subtasks" >"$work/$mode-$tenant.html" || fail "chromium could not load $url/subtasks"
  done

  say "$mode: comparing each page with its tenant's JSON and with the other tenant's"
python3 - "$work" "$mode" <<'PY' || fail "a page does not show exactly its own tenant's rows"
import json, sys
from html.parser import HTMLParser

work, mode = sys.argv[1], sys.argv[2]

class Rows(HTMLParser):
    """Collects the subtask-name cells and the account id of every row."""
    def __init__(self):
        super().__init__()
        self.names, self.accounts, self.in_name = [], [], False
    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-account-id" in attrs:
            self.accounts.append(int(attrs["data-account-id"]))
        if tag == "td" and attrs.get("class") == "name":
            self.in_name = True
            self.names.append("")
    def handle_endtag(self, tag):
        if tag == "td":
            self.in_name = False
    def handle_data(self, data):
        if self.in_name:
            self.names[-1] += data

pages = {}
for tenant in ("tenant-1", "tenant-2"):
    api = json.load(open(f"{work}/{mode}-{tenant}.json"))
    rows = Rows()
    rows.feed(open(f"{work}/{mode}-{tenant}.html", encoding="utf-8").read())
    pages[tenant] = (api, rows)

ok = True
for me, other in (("tenant-1", "tenant-2"), ("tenant-2", "tenant-1")):
    api, rows = pages[me]
    other_api, _ = pages[other]
    my_id, other_id = api["items"][0]["account_id"], other_api["items"][0]["account_id"]
    expected = [item["name"] for item in api["items"]]
    foreign = {item["name"] for item in other_api["items"]}
    checks = {
        "the API names this tenant": api["tenant"] == me and my_id != other_id,
        "the API items all carry its account_id": all(i["account_id"] == my_id for i in api["items"]),
        "the page shows a full page of rows": len(rows.names) == 10,
        "the page shows the API's rows, in order": rows.names == expected,
        "every row carries its account id": rows.accounts == [my_id] * len(rows.names),
        "no row of the other tenant": not (set(rows.names) & foreign) and other_id not in rows.accounts,
    }
    for what, passed in checks.items():
        print(f"e2e: {mode}: {me}: {what}: {'ok' if passed else 'FAILED'}")
        ok &= passed
    if not ok:
        print(f"e2e: {me} page rows: {rows.names}\ne2e: {me} API rows: {expected}", file=sys.stderr)
sys.exit(0 if ok else 1)
PY
  if [ "$mode" = rls ]; then
    say "screenshot of tenant-1's page: $screenshot"
    chromium_run --screenshot="$screenshot" --window-size=1200,900 --hide-scrollbars \
      "http://tenant-1.localhost:$port/subtasks" >/dev/null || fail "chromium could not take a screenshot"
    [ -s "$screenshot" ] || fail "the screenshot is empty"
  fi

  say "$mode: stopping rls-demo with SIGINT"
  kill -INT "$demo_pid"
  status=0
  for _ in $(seq 1 60); do kill -0 "$demo_pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$demo_pid" 2>/dev/null && fail "rls-demo did not stop within 30 s of SIGINT"
  wait "$demo_pid" || status=$?
  demo_pid=""
  [ "$status" -eq 0 ] || { cat "$work/demo.err" >&2; fail "rls-demo exited with status $status"; }
  [ ! -e "$cluster_dir" ] || fail "the embedded cluster directory $cluster_dir is still there"
  [ -z "$second_dir" ] || [ ! -e "$second_dir" ] || fail "the second cluster directory $second_dir is still there"
}

demo_pass rls
demo_pass schema --strategy schema
demo_pass database --strategy database
say "PASS: each tenant's page shows its own rows only, in the RLS, schema and database strategies; the embedded clusters were removed"
