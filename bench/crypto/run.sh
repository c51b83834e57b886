#!/usr/bin/env bash
# Runs crypto_bench (libs/crypto) and `openssl speed` for the same operations
# on this machine, in this run, and prints one table:
#
#   operation | certplane ops/s | openssl ops/s | ratio (certplane/openssl)
#
# certplane's numbers include what a caller pays through the libs/crypto API
# (EVP context set-up per call, hashing the message before signing, a fresh
# random nonce and output allocation per seal); `openssl speed` measures the
# bare primitive (signing a precomputed digest, encrypting into a reused
# buffer). `openssl speed` 3.0 does not time key generation, so that row has
# no OpenSSL figure. Both sides count operations per second of CPU time
# (`openssl speed` divides by user CPU time by default; crypto_bench by its
# thread's CPU time), so other load on the machine skews the ratio little.
# A full run takes about a minute.
#
# Usage: bench/crypto/run.sh [seconds-per-operation]   (default 2)
# Environment: CRYPTO_BENCH=path/to/crypto_bench
#              (default: build/bench/crypto/crypto_bench under the repository)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bench="${CRYPTO_BENCH:-${repo}/build/bench/crypto/crypto_bench}"
seconds="${1:-2}"
if [[ ! "${seconds}" =~ ^[1-9][0-9]*$ ]]; then
  echo "run.sh: seconds-per-operation must be a whole number (openssl speed -seconds)" >&2
  exit 2
fi

if [[ ! -x "${bench}" ]]; then
  echo "run.sh: ${bench} not found; build it with" >&2
  echo "  cmake --build build --target crypto_bench" >&2
  exit 1
fi
if ! command -v openssl >/dev/null; then
  echo "run.sh: the openssl command is needed for the comparison" >&2
  exit 1
fi

results="$(mktemp)"
trap 'rm -f "${results}"' EXIT

header="# $(openssl version); ${seconds}s per operation; $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')); load at start $(cut -d' ' -f1-3 /proc/loadavg)"

# openssl speed, machine-readable (-mr):
#   +F2:<i>:<bits>:<sign/s>:<verify/s>          RSA
#   +F4:<i>:<bits>:<sign/s>:<verify/s>          ECDSA
#   +F6:<i>:<bits>:<name>:<sign/s>:<verify/s>   EdDSA
#   +F:<i>:<cipher>:<bytes/s>                   one -bytes size per run
echo "running openssl speed (signatures)..." >&2
openssl speed -mr -seconds "${seconds}" rsa2048 ecdsap256 ed25519 2>/dev/null |
  awk -F: '
    $1 == "+F2" && $3 == 2048 { print "openssl\tsign rsa2048\t" $4; print "openssl\tverify rsa2048\t" $5 }
    $1 == "+F4" && $3 == 256  { print "openssl\tsign ecdsap256\t" $4; print "openssl\tverify ecdsap256\t" $5 }
    $1 == "+F6" && $4 == "Ed25519" { print "openssl\tsign ed25519\t" $5; print "openssl\tverify ed25519\t" $6 }
  ' >>"${results}"
for bytes in 16 1024 16384; do
  echo "running openssl speed (aes-256-gcm, ${bytes} bytes)..." >&2
  openssl speed -mr -seconds "${seconds}" -evp aes-256-gcm -bytes "${bytes}" 2>/dev/null |
    awk -F: -v bytes="${bytes}" '
      $1 == "+F" { printf "openssl\taes-256-gcm seal %d\t%.1f\n", bytes, $4 / bytes }
    ' >>"${results}"
done

echo "running crypto_bench..." >&2
"${bench}" --seconds="${seconds}" | awk -F'\t' '{ print "certplane\t" $1 "\t" $2 }' >>"${results}"

echo "${header}"
awk -F'\t' '
  { value[$1, $2] = $3; if (!($2 in seen)) { seen[$2] = 1; order[++n] = $2 } }
  END {
    printf "%-24s %16s %16s %8s\n", "operation", "certplane ops/s", "openssl ops/s", "ratio"
    for (i = 1; i <= n; i++) {
      op = order[i]
      c = value["certplane", op]; o = value["openssl", op]
      if (c == "") continue
      if (o == "") printf "%-24s %16.1f %16s %8s\n", op, c, "n/a", "n/a"
      else printf "%-24s %16.1f %16.1f %8.2f\n", op, c, o, c / o
    }
  }
' <(grep '^certplane' "${results}") <(grep '^openssl' "${results}")
