// The PKCS#11 KEK source (`pkcs11:module=<path>;token=<label>;pin-env=<VAR>`
// or `...;pin-file=<path>`): KEKs that never leave a hardware token or HSM
// (tested with SoftHSM2).
//
// KEK version N is the token's AES-256 secret key object labelled
// "certplane-kek-v<N>", created by CreateVersion as a token object that is
// sensitive and not extractable, usable only for encrypt/decrypt. Open
// refuses a token whose KEK objects are extractable or not sensitive.
//
// Wrap encrypts the DEK on the token with CKM_AES_GCM: a 12-byte IV from the
// token's C_GenerateRandom, additional data KekAssociatedData(version, ad),
// and a 128-bit tag. The wrapped format is
//
//   0x01 || 12-byte IV || ciphertext || 16-byte tag
//
// Unwrap decrypts on the token; a blob or associated data that fails
// authentication is DATA_LOSS. Tokens that report a failed tag check only as
// CKR_GENERAL_ERROR (SoftHSM2 2.6) are told apart from broken tokens by a
// probe seal/open under the same key: DATA_LOSS if the probe works, INTERNAL
// if it does not. Every PKCS#11 failure names the call and its
// CKR_ code.
//
// The module is loaded with dlopen and initialized once per process with
// CKF_OS_LOCKING_OK (several sources on the same module share it; the last
// one to close finalizes it). Each source opens one read/write session,
// logged in as the user, and serializes its use with a mutex: safe to call
// from several threads. The PIN is read at Open, held in SecretBytes only
// while logging in, and never appears in Describe() or errors.
#ifndef CERTPLANE_SERVICES_VAULT_PKCS11_KEK_SOURCE_H_
#define CERTPLANE_SERVICES_VAULT_PKCS11_KEK_SOURCE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "libs/crypto/secret_bytes.h"
#include "services/vault/kek_source.h"

namespace certplane::vault {

// The parsed parameters of a `pkcs11:` spec (the part after the colon).
struct Pkcs11KekConfig {
  std::string module;    // Path of the PKCS#11 module (.so).
  std::string token;     // Token label.
  std::string pin_env;   // Environment variable holding the user PIN, or
  std::string pin_file;  // a file (mode 0600) holding it; exactly one is set.

  // Parses `module=...;token=...;pin-env=...` (or pin-file). INVALID_ARGUMENT
  // naming the problem: unknown or repeated attribute, empty value, missing
  // module or token, neither or both of pin-env and pin-file.
  static absl::StatusOr<Pkcs11KekConfig> Parse(absl::string_view params);
  // "pkcs11:module=...;token=...;pin-env=VAR" (never the PIN itself).
  std::string Describe() const;
};

class Pkcs11KekSource final : public KekSource, public RotatableKekSource {
 public:
  struct Options {
    // Create version 1 when the token holds no KEK yet (first start);
    // otherwise an empty token is FAILED_PRECONDITION.
    bool create_first_version = false;
  };

  // Loads the module, finds the token by label, opens a session and logs
  // in. FAILED_PRECONDITION when the module cannot be loaded or initialized,
  // no (or more than one) token has the label, the PIN is unavailable or
  // refused, a KEK object is extractable, or the token holds no KEK.
  static absl::StatusOr<std::unique_ptr<Pkcs11KekSource>> Open(
      const Pkcs11KekConfig& config, Options options);
  static absl::StatusOr<std::unique_ptr<Pkcs11KekSource>> Open(
      const Pkcs11KekConfig& config) {
    return Open(config, Options());
  }

  ~Pkcs11KekSource() override;
  Pkcs11KekSource(const Pkcs11KekSource&) = delete;
  Pkcs11KekSource& operator=(const Pkcs11KekSource&) = delete;

  std::string Describe() const override;
  absl::StatusOr<std::vector<int>> Versions() const override;
  absl::StatusOr<std::string> Wrap(
      int version, const crypto::SecretBytes& dek,
      absl::string_view associated_data) const override;
  absl::StatusOr<crypto::SecretBytes> Unwrap(
      int version, absl::string_view wrapped,
      absl::string_view associated_data) const override;
  // Generates "certplane-kek-v<N+1>" on the token (N = the highest version
  // on the token now). Token objects are persistent once C_GenerateKey
  // returns.
  absl::StatusOr<int> CreateVersion() override;

  // What the token says about KEK `version`'s object: its protection flags,
  // and the result of asking for its value (CKA_VALUE), which must fail.
  struct KeyObjectInfo {
    bool token = false;
    bool sensitive = false;
    bool extractable = true;
    bool always_sensitive = false;
    bool never_extractable = false;
    // "CKR_OK" would mean the key's bytes were readable.
    std::string value_query_result;
  };
  absl::StatusOr<KeyObjectInfo> InspectVersion(int version) const;

 private:
  struct Module;
  Pkcs11KekSource(Pkcs11KekConfig config, Module* module,
                  unsigned long session);

  // Finds the KEK objects on the token; FAILED_PRECONDITION for duplicate
  // labels or unprotected keys.
  absl::StatusOr<std::map<int, unsigned long>> FindKeys() const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<int> CreateVersionLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<unsigned long> KeyHandle(int version) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Pkcs11KekConfig config_;
  Module* const module_;  // Shared per module path; released in the dtor.
  mutable absl::Mutex mu_;
  const unsigned long session_;  // CK_SESSION_HANDLE, used only under mu_.
  std::map<int, unsigned long> keys_ ABSL_GUARDED_BY(mu_);  // version->handle
};

}  // namespace certplane::vault

#endif  // CERTPLANE_SERVICES_VAULT_PKCS11_KEK_SOURCE_H_
