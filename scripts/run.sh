#!/usr/bin/env bash
# Starts the whole certplane platform on this machine: vault, inventory,
# issuance and the gateway, every process on mTLS with identities from
# `certplane-admin bootstrap`, on the embedded SQLite default under the data
# folder (or PostgreSQL with DB=postgresql://...). Waits until each is
# healthy, prints where everything is, and runs until Ctrl-C (or SIGTERM),
# which stops every service cleanly. A second run keeps the data.
#
# Settings (environment): BUILD (build folder, default build), CERTPLANE_DATA
# (default ./.data), DB (empty: SQLite files), CERTPLANE_PORT_BASE (7000:
# gateway +1, vault +2, inventory +3, issuance +4, CRLs +84), HTTP_PORT
# (8080), METRICS_PORT_BASE (9100: gateway +1 ... issuance +4); all on
# 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
DATA=${CERTPLANE_DATA:-$ROOT/.data}
DB=${DB:-}
BASE=${CERTPLANE_PORT_BASE:-7000}
GATEWAY_PORT=$((BASE + 1))
VAULT_PORT=$((BASE + 2))
INVENTORY_PORT=$((BASE + 3))
ISSUANCE_PORT=$((BASE + 4))
CRL_PORT=$((BASE + 84))
HTTP_PORT=${HTTP_PORT:-8080}
METRICS=${METRICS_PORT_BASE:-9100}
BIN=$BUILD/services
CLI=$BIN/cli/certplane
ADMIN=$BIN/admin/certplane-admin

for b in "$BIN/vault/certplane-vault" "$BIN/inventory/certplane-inventory" \
         "$BIN/issuance/certplane-issuance" "$BIN/gateway/certplane-gateway" \
         "$CLI" "$ADMIN"; do
  [ -x "$b" ] || { echo "make run: $b is missing; build first (make run builds it)" >&2; exit 1; }
done

mkdir -p "$DATA/logs"
chmod 700 "$DATA"
PKI=$DATA/pki
"$ADMIN" bootstrap --dir "$PKI" >"$DATA/logs/bootstrap.log"

if [ ! -f "$DATA/vault.policy" ]; then
  cat >"$DATA/vault.policy" <<'POLICY'
# Who may do what in the vault (services/vault/policy.h). The gateway acts
# for people after checking their roles; raw Sign is admin-only there.
spiffe://certplane/gateway    *
spiffe://certplane/inventory  import, get, export
spiffe://certplane/issuance   generate, get, create_csr, sign, delete
POLICY
fi

if [ ! -f "$DATA/issuance.conf" ]; then
  cat >"$DATA/issuance.conf" <<CONF
# Issuers and approval rules (IssuanceConfig, protobuf text format;
# docs/issuance.md). Every order needs one approval, except the "sandbox"
# team's orders from the internal CA, which are approved at once so that a
# first try issues a certificate.
issuers {
  id: "internal"
  type: INTERNAL_CA
  display_name: "certplane internal CA"
  crl_base_url: "http://127.0.0.1:$CRL_PORT"
}
issuers {
  id: "external"
  type: EXTERNAL_UPLOAD
  display_name: "External CA (CSR download, certificate upload)"
  public_trust: true
}
approval_rules { issuer: "internal" team: "sandbox" auto_approve: true }
CONF
fi

db_url() {
  if [ -n "$DB" ]; then echo "$DB"; else echo "sqlite://$DATA/$1.db"; fi
}
tls() {
  echo "--tls_cert_file=$PKI/$1.pem" "--tls_key_file=$PKI/$1.key" \
       "--tls_client_ca_file=$PKI/ca.pem"
}

pids=()
names=()
stopping=0
health_pid=""
stop_all() {
  [ "$stopping" = 1 ] && return
  stopping=1
  [ -n "$health_pid" ] && kill "$health_pid" 2>/dev/null || true
  echo
  echo "certplane: stopping..."
  # The gateway first, the vault last: nothing calls a stopped service.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  echo "certplane: stopped (data kept in $DATA)"
}
# Signals only set a flag; the script notices it between steps and stops
# everything from the main flow (stopping from inside a trap handler runs
# into bash bugs).
got_signal=0
trap 'got_signal=1' INT TERM
trap 'stop_all' EXIT
stop_if_signalled() {
  if [ "$got_signal" = 1 ]; then
    stop_all
    trap - EXIT
    exit 0
  fi
}

start() {
  local name=$1 port=$2
  shift 2
  # Refuse to start over a platform that is already running.
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "make run: 127.0.0.1:$port is already in use (another make run?)" >&2
    exit 1
  fi
  "$@" >>"$DATA/logs/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
  # In the background, so that Ctrl-C is handled at once.
  "$ADMIN" health --address "127.0.0.1:$port" --ca-file "$PKI/ca.pem" \
      --cert-file "$PKI/gateway.pem" --key-file "$PKI/gateway.key" \
      --timeout-seconds 90 2>>"$DATA/logs/$name.log" &
  health_pid=$!
  local health_status
  while true; do
    wait "$health_pid" 2>/dev/null && health_status=0 || health_status=$?
    # Above 128 with the checker still running: a signal interrupted wait.
    if [ "$health_status" -gt 128 ] && kill -0 "$health_pid" 2>/dev/null; then
      stop_if_signalled
      continue
    fi
    break
  done
  stop_if_signalled
  if [ "$health_status" -ne 0 ]; then
    echo "make run: $name did not become healthy; the end of $DATA/logs/$name.log:" >&2
    tail -n 20 "$DATA/logs/$name.log" >&2
    exit 1
  fi
  health_pid=""
  echo "  $name healthy on 127.0.0.1:$port"
}

echo "certplane: starting (data in $DATA, $( [ -n "$DB" ] && echo "PostgreSQL" || echo "SQLite" ))"
start vault "$VAULT_PORT" "$BIN/vault/certplane-vault" \
  --database_url="$(db_url vault)" --kek="file:$DATA/kek" \
  --create_kek_file_if_missing --policy_file="$DATA/vault.policy" \
  --listen_address="127.0.0.1:$VAULT_PORT" \
  --metrics_address="127.0.0.1:$((METRICS + 2))" $(tls vault)
start inventory "$INVENTORY_PORT" "$BIN/inventory/certplane-inventory" \
  --database_url="$(db_url inventory)" --data_dir="$DATA" \
  --vault_address="127.0.0.1:$VAULT_PORT" \
  --trusted_delegators=spiffe://certplane/gateway \
  --listen_address="127.0.0.1:$INVENTORY_PORT" \
  --metrics_address="127.0.0.1:$((METRICS + 3))" $(tls inventory)
start issuance "$ISSUANCE_PORT" "$BIN/issuance/certplane-issuance" \
  --database_url="$(db_url issuance)" --data_dir="$DATA" \
  --vault_address="127.0.0.1:$VAULT_PORT" \
  --inventory_address="127.0.0.1:$INVENTORY_PORT" \
  --trusted_delegators=spiffe://certplane/gateway \
  --config_file="$DATA/issuance.conf" \
  --crl_listen_address="127.0.0.1:$CRL_PORT" \
  --listen_address="127.0.0.1:$ISSUANCE_PORT" \
  --metrics_address="127.0.0.1:$((METRICS + 4))" $(tls issuance)
web_root=""
[ -f "$ROOT/web/dist/index.html" ] && web_root="$ROOT/web/dist"
start gateway "$GATEWAY_PORT" "$BIN/gateway/certplane-gateway" \
  --database_url="$(db_url gateway)" --data_dir="$DATA" \
  --audit_key_file="$DATA/audit-key.pem" --create_audit_key \
  --bootstrap_admin_token_file="$DATA/admin-token" \
  --vault_address="127.0.0.1:$VAULT_PORT" \
  --inventory_address="127.0.0.1:$INVENTORY_PORT" \
  --issuance_address="127.0.0.1:$ISSUANCE_PORT" \
  --http_listen_address="127.0.0.1:$HTTP_PORT" --web_root="$web_root" \
  --listen_address="127.0.0.1:$GATEWAY_PORT" \
  --metrics_address="127.0.0.1:$((METRICS + 1))" $(tls gateway)

cat >"$DATA/cli.conf" <<CONF
# certplane CLI settings for this platform (CERTPLANE_CONFIG=$DATA/cli.conf)
server = localhost:$GATEWAY_PORT
ca_file = $PKI/ca.pem
token_file = $DATA/admin-token
CONF

cat <<TXT

certplane is running.
  gRPC API   localhost:$GATEWAY_PORT  (TLS; CA $PKI/ca.pem)
  HTTP/JSON  http://127.0.0.1:$HTTP_PORT  (POST /<package>.<Service>/<Method>)
  web UI     http://127.0.0.1:$HTTP_PORT/ $( [ -n "$web_root" ] && echo "" || echo "(not built yet)" )
  admin token saved in $DATA/admin-token (mode 0600); logs in $DATA/logs/

Try, in another shell:
  export CERTPLANE_CONFIG=$DATA/cli.conf
  $ROOT/$CLI whoami
  $ROOT/$CLI order create --cn app.example.com --owner sandbox --wait
  $ROOT/$CLI cert list --expiring-within 90
  (orders for other teams wait for an approver: certplane order approve ID)

Ctrl-C stops everything; the next make run keeps the data.
TXT

# Run until a signal, or until a service dies (then stop the rest).
while [ "$got_signal" = 0 ]; do
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "certplane: ${names[$i]} exited; see $DATA/logs/${names[$i]}.log" >&2
      exit 1
    fi
  done
  sleep 1 &
  wait $! 2>/dev/null || true
done
stop_if_signalled
