#!/usr/bin/env bash
# Runs every certplane test through CTest, in three build trees:
#   build            the whole suite against OpenSSL 3
#   build-boringssl  libs/crypto and its tests against BoringSSL
#   build-fuzz       libFuzzer targets (clang, ASan+UBSan), each for a bounded time
# Each tree prints CTest's summary; the script fails if any tree fails, and
# ends with one combined "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}

total_passed=0
total_failed=0
status=0

run_tree() {
  local name=$1 dir=$2
  shift 2
  echo "==> [$name] configure and build ($dir)"
  if ! cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" "$@" >"$dir.configure.log" 2>&1; then
    cat "$dir.configure.log"
    echo "[$name] configure FAILED"
    status=1; total_failed=$((total_failed + 1)); return
  fi
  if ! cmake --build "$dir" -j "$JOBS"; then
    echo "[$name] build FAILED"
    status=1; total_failed=$((total_failed + 1)); return
  fi
  echo "==> [$name] ctest"
  local log="$dir/ctest.log"
  (cd "$dir" && ctest --output-on-failure -j "$JOBS" --timeout 900) 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line
  line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1)
  if [[ $line =~ ([0-9]+)\ tests\ failed\ out\ of\ ([0-9]+) ]]; then
    local failed=${BASH_REMATCH[1]} all=${BASH_REMATCH[2]}
    total_failed=$((total_failed + failed))
    total_passed=$((total_passed + all - failed))
  fi
  if [ "$rc" -ne 0 ]; then status=1; fi
}

mkdir -p build build-boringssl build-fuzz
run_tree openssl build
run_tree boringssl build-boringssl -DCERTPLANE_CRYPTO_BACKEND=boringssl
run_tree fuzz build-fuzz -DCERTPLANE_FUZZ=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++

echo
echo "Total: $total_passed passed, $total_failed failed"
exit $status
