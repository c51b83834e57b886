#!/usr/bin/env bash
# `make run` from a clean clone of the repository, as a newcomer runs it:
# it builds, bootstraps, starts every service, and says where things are;
# the CLI flow works against it (whoami, an order issued, the certificate
# listed and exported and checked by openssl, the HTTP/JSON API); SIGTERM
# (Ctrl-C's signal for a process group) stops everything cleanly; a second
# `make run` keeps the data.
#
#   tests/e2e/make_run_test.sh SOURCE_DIR
set -euo pipefail
SRC=$(cd "$1" && pwd)
work=$(mktemp -d /tmp/make-run-test.XXXXXX)
run_pid=""
cleanup() {
  if [ -n "$run_pid" ] && kill -0 "$run_pid" 2>/dev/null; then
    kill -TERM -- "-$run_pid" 2>/dev/null || true
    sleep 5
    kill -KILL -- "-$run_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [ -f "$work/run.log" ] && { echo "--- make run output:" >&2; tail -n 40 "$work/run.log" >&2; }
  exit 1
}

git clone -q "$SRC" "$work/certplane"
clone=$work/certplane
# Ports of their own, so that a developer's running platform is left alone.
base=$((20000 + (RANDOM % 300) * 100))
export CERTPLANE_PORT_BASE=$base HTTP_PORT=$((base + 80)) \
       METRICS_PORT_BASE=$((base + 90)) CERTPLANE_DATA=$work/data
# The clone's build reuses the suite's compiler cache (see the Makefile).
export CCACHE_BASEDIR=$clone CCACHE_NOHASHDIR=1

start_platform() {
  : >"$work/run.log"
  (cd "$clone" && exec setsid make run >>"$work/run.log" 2>&1) &
  run_pid=$!
  # setsid makes make the leader of a new process group (pgid = its pid)
  # once it execs; wait for the platform to say it is up.
  for _ in $(seq 1 1800); do
    grep -q "certplane is running." "$work/run.log" && return 0
    kill -0 "$run_pid" 2>/dev/null || fail "make run exited before the platform was up"
    sleep 0.5
  done
  fail "the platform did not come up in 15 minutes"
}

stop_platform() {
  local pgid
  pgid=$(ps -o pgid= -p "$run_pid" | tr -d ' ')
  kill -TERM -- "-$pgid"
  # make itself ends at once; the script stops the services and says so.
  for _ in $(seq 1 120); do
    if grep -q "certplane: stopped (data kept" "$work/run.log" &&
       ! pgrep -f "$work/data" >/dev/null; then
      break
    fi
    sleep 0.5
  done
  grep -q "certplane: stopped (data kept" "$work/run.log" ||
    fail "no clean stop within a minute of SIGTERM"
  pgrep -f "$work/data" >/dev/null && fail "services still running after the stop"
  run_pid=
}

start_platform
grep -q "admin token saved in $work/data/admin-token (mode 0600)" "$work/run.log" \
  || fail "the admin token's place is not printed"
[ "$(stat -c %a "$work/data/admin-token")" = 600 ] || fail "the admin token is not mode 0600"

cli=$clone/build/services/cli/certplane
export CERTPLANE_CONFIG=$work/data/cli.conf
"$cli" whoami | grep -q "user:admin" || fail "whoami"
"$cli" order create --cn app.example.com --owner sandbox --wait -o json >"$work/order.json" \
  || fail "order create"
grep -q '"state": "ISSUED"' "$work/order.json" || fail "the sandbox order was not issued: $(cat "$work/order.json")"
cert=$(sed -n 's/.*"certificate": "certificates\/\([0-9a-f]*\)".*/\1/p' "$work/order.json" | head -n1)
[ -n "$cert" ] || fail "no certificate in the order"
"$cli" cert list --expiring-within 90 | grep -q "app.example.com" || fail "cert list"
"$cli" cert export "$cert" --format fullchain >"$work/chain.pem" || fail "cert export"
openssl x509 -in "$work/chain.pem" -noout -subject | grep -q "app.example.com" \
  || fail "the exported certificate is not app.example.com"
curl -sS --fail-with-body -H "Authorization: Bearer $(cat "$work/data/admin-token")" \
  -d '{"filter": "owner = \"sandbox\""}' \
  "http://127.0.0.1:$HTTP_PORT/certplane.inventory.v1.InventoryService/ListCertificates" \
  | grep -q "app.example.com" || fail "HTTP/JSON ListCertificates"
stop_platform

# Again: the data is kept.
start_platform
"$cli" cert list | grep -q "app.example.com" || fail "the second make run lost the certificate"
stop_platform
echo "make run test: OK"
