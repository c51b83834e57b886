#!/usr/bin/env bash
# Installs, with apt, every Debian 12 package that certplane's build, tests and
# `make run` need. Idempotent: when everything is present it only checks and
# returns (no apt-get update, no network).
set -euo pipefail

PACKAGES=(
  # Toolchain.
  build-essential cmake ninja-build ccache pkg-config clang clang-format
  libclang-rt-14-dev libfuzzer-14-dev
  # gRPC, Protobuf, Abseil.
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev
  protobuf-compiler libabsl-dev
  # Crypto: OpenSSL 3 for the services, BoringSSL for the portability build.
  libssl-dev openssl android-libboringssl-dev
  # Storage: SOCI (its Debian headers include Boost), PostgreSQL, SQLite.
  libsoci-dev libboost-dev libpq-dev postgresql postgresql-client
  libsqlite3-dev sqlite3
  # Metrics and tests.
  prometheus-cpp-dev catch2
  # Vault: PKCS#11 KEK source (header from p11-kit), tested with SoftHSM2.
  libp11-kit-dev softhsm2
  # The issuance benchmark's peer (cfssl serve).
  golang-cfssl
  # Scripts used by tests and `make run`.
  python3 curl procps
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
