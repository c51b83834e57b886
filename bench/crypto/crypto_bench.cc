// crypto_bench: how fast libs/crypto does the work certplane does most:
// key generation, signing and verification for each key type certplane
// issues, and AES-256-GCM sealing of small and medium secrets.
//
// Plain timing loops: each operation runs for at least --seconds of wall
// time (after a short warm-up) and reports operations per second of this
// thread's CPU time, as `openssl speed` does by default (it divides by user
// CPU time), so that other work on the machine skews neither much. Output is
// one tab-separated line per operation,
//
//   <operation>\t<ops per CPU second>\t<iterations>\t<CPU seconds>
//
// which bench/crypto/run.sh sets beside `openssl speed`.
//
// Usage: crypto_bench [--seconds=S] [--filter=SUBSTRING]
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "libs/crypto/aead.h"
#include "libs/crypto/key.h"

namespace certplane::crypto {
namespace {

// Keeps the compiler from discarding a result.
volatile size_t g_sink = 0;

struct Options {
  double seconds = 1.5;
  std::string filter;
};

double ThreadCpuSeconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) +
         1e-9 * static_cast<double>(now.tv_nsec);
}

// Runs `op` until `seconds` of wall time have passed; prints ops per CPU s.
// `op` returns false on failure, which aborts the benchmark.
void Measure(const Options& options, const std::string& name,
             const std::function<bool()>& op) {
  if (!options.filter.empty() && !absl::StrContains(name, options.filter)) {
    return;
  }
  using Clock = std::chrono::steady_clock;
  for (int i = 0; i < 3; ++i) {  // Warm-up: caches, lazy initialisation.
    if (!op()) {
      std::fprintf(stderr, "crypto_bench: %s failed\n", name.c_str());
      std::exit(1);
    }
  }
  const auto start = Clock::now();
  const double cpu_start = ThreadCpuSeconds();
  const auto budget = std::chrono::duration<double>(options.seconds);
  long iterations = 0;
  std::chrono::duration<double> elapsed{};
  do {
    if (!op()) {
      std::fprintf(stderr, "crypto_bench: %s failed\n", name.c_str());
      std::exit(1);
    }
    ++iterations;
    elapsed = Clock::now() - start;
  } while (elapsed < budget);
  const double cpu = ThreadCpuSeconds() - cpu_start;
  std::printf("%s\t%.1f\t%ld\t%.3f\n", name.c_str(),
              static_cast<double>(iterations) / cpu, iterations, cpu);
  std::fflush(stdout);
}

int Run(const Options& options) {
  struct KeyCase {
    const char* name;
    KeyType type;
  };
  const KeyCase keys[] = {{"rsa2048", KeyType::kRsa2048},
                          {"ecdsap256", KeyType::kEcdsaP256},
                          {"ed25519", KeyType::kEd25519}};

  for (const auto& k : keys) {
    Measure(options, absl::StrFormat("keygen %s", k.name), [&] {
      auto key = PrivateKey::Generate(k.type);
      if (!key.ok()) return false;
      g_sink = g_sink + (key->native() != nullptr ? 1 : 0);
      return true;
    });
  }

  // What a CA signs is a hash-sized to-be-signed structure or larger; sign
  // 32 bytes to compare with `openssl speed`, which signs a digest.
  const std::string message(32, 'm');
  for (const auto& k : keys) {
    auto key = PrivateKey::Generate(k.type);
    if (!key.ok()) {
      std::fprintf(stderr, "crypto_bench: %s\n",
                   key.status().ToString().c_str());
      return 1;
    }
    Measure(options, absl::StrFormat("sign %s", k.name), [&] {
      auto signature = key->Sign(message);
      if (!signature.ok()) return false;
      g_sink = g_sink + signature->size();
      return true;
    });
    auto signature = key->Sign(message);
    if (!signature.ok()) return 1;
    PublicKey public_key = key->public_key();
    Measure(options, absl::StrFormat("verify %s", k.name), [&] {
      return VerifySignature(public_key, message, *signature).ok();
    });
  }

  auto key = Aes256Gcm::GenerateKey();
  if (!key.ok()) return 1;
  auto aead = Aes256Gcm::Create(*std::move(key));
  if (!aead.ok()) return 1;
  for (size_t size : {size_t{16}, size_t{1024}, size_t{16384}}) {
    const std::string plaintext(size, 'p');
    Measure(options, absl::StrFormat("aes-256-gcm seal %d", size), [&] {
      auto sealed = aead->Seal(plaintext, "associated data");
      if (!sealed.ok()) return false;
      g_sink = g_sink + sealed->size();
      return true;
    });
  }
  return 0;
}

}  // namespace
}  // namespace certplane::crypto

int main(int argc, char** argv) {
  certplane::crypto::Options options;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg(argv[i]);
    if (absl::ConsumePrefix(&arg, "--seconds=")) {
      if (!absl::SimpleAtod(arg, &options.seconds) || options.seconds <= 0) {
        std::fprintf(stderr, "crypto_bench: bad --seconds value\n");
        return 2;
      }
    } else if (absl::ConsumePrefix(&arg, "--filter=")) {
      options.filter = std::string(arg);
    } else {
      std::fprintf(stderr,
                   "usage: crypto_bench [--seconds=S] [--filter=SUBSTRING]\n");
      return 2;
    }
  }
  return certplane::crypto::Run(options);
}
