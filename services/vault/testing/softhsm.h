// Test helper: a throwaway SoftHSM2 token for PKCS#11 tests.
//
// SoftHsmToken::Create() makes a temporary token directory and a
// softhsm2.conf pointing at it, points SOFTHSM2_CONF at that file, and
// initializes a token with `softhsm2-util --init-token --free`. The
// destructor restores SOFTHSM2_CONF and removes the directory. When SoftHSM2
// is not installed, Create() fails with FAILED_PRECONDITION saying so: tests
// must fail rather than skip.
//
// Not thread-safe (it changes the process environment); one token at a time,
// and PKCS#11 sources using it must be closed before it is destroyed so the
// next token's configuration is read by a fresh C_Initialize.
#ifndef CERTPLANE_SERVICES_VAULT_TESTING_SOFTHSM_H_
#define CERTPLANE_SERVICES_VAULT_TESTING_SOFTHSM_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace certplane::vault::testing {

class SoftHsmToken {
 public:
  static constexpr char kModule[] = "/usr/lib/softhsm/libsofthsm2.so";
  static constexpr char kLabel[] = "certplane-test";
  static constexpr char kUserPin[] = "1234";
  static constexpr char kSoPin[] = "5678";
  // Set to kUserPin while the token exists.
  static constexpr char kPinEnv[] = "CERTPLANE_TEST_HSM_PIN";

  static absl::StatusOr<std::unique_ptr<SoftHsmToken>> Create();
  ~SoftHsmToken();
  SoftHsmToken(const SoftHsmToken&) = delete;
  SoftHsmToken& operator=(const SoftHsmToken&) = delete;

  // The temporary directory (conf file and tokens/ live inside it).
  const std::string& dir() const { return dir_; }
  // "module=...;token=certplane-test;pin-env=CERTPLANE_TEST_HSM_PIN", the
  // part of a KEK spec after "pkcs11:".
  std::string SpecParams() const;

 private:
  SoftHsmToken(std::string dir, std::optional<std::string> old_conf)
      : dir_(std::move(dir)), old_conf_(std::move(old_conf)) {}

  std::string dir_;
  std::optional<std::string> old_conf_;
};

}  // namespace certplane::vault::testing

#endif  // CERTPLANE_SERVICES_VAULT_TESTING_SOFTHSM_H_
