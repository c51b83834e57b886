// OIDC bearer tokens (JWTs, RFC 7519) at the gateway: RS256 and ES256
// signatures checked against a JWKS (RFC 7517) from a file or a plain-HTTP
// URL inside the cluster; the issuer, the audience and the validity times
// (exp required; nbf and iat when present; `leeway` of clock skew). The
// user is the `user_claim` claim ("email", falling back to "sub"), as
// "user:<value>"; roles come from the `groups_claim` array through
// `group_roles`. Other algorithms ("none", HS256, ...) are refused.
//
// The JWKS is loaded at Create() (a missing or bad JWKS fails startup),
// reloaded every `jwks_refresh`, and on an unknown "kid" at most every 30 s
// (key rotation at the identity provider).
//
// Verify() errors are reasons for logs; the gateway answers every failure
// with the same UNAUTHENTICATED message. Thread-safe.
#ifndef CERTPLANE_SERVICES_GATEWAY_OIDC_H_
#define CERTPLANE_SERVICES_GATEWAY_OIDC_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/crypto/key.h"
#include "libs/server/caller.h"

namespace certplane::gateway {

struct OidcOptions {
  std::string issuer;    // Exact "iss".
  std::string audience;  // Must be "aud" or one of its entries.
  std::string jwks_file;
  std::string jwks_url;  // http://host[:port]/path
  std::string user_claim = "email";
  std::string groups_claim = "groups";
  absl::flat_hash_map<std::string, std::vector<server::RoleGrant>> group_roles;
  absl::Duration leeway = absl::Seconds(60);
  absl::Duration jwks_refresh = absl::Minutes(5);
};

struct OidcIdentity {
  std::string user;  // "user:alice@example.com".
  std::vector<server::RoleGrant> roles;
};

class OidcVerifier {
 public:
  static absl::StatusOr<std::unique_ptr<OidcVerifier>> Create(
      OidcOptions options, std::function<absl::Time()> clock);

  absl::StatusOr<OidcIdentity> Verify(absl::string_view jwt);

 private:
  struct Key {
    std::string alg;  // "RS256" or "ES256"; "" when the JWK does not say.
    crypto::PublicKey key;
  };
  OidcVerifier(OidcOptions options, std::function<absl::Time()> clock)
      : options_(std::move(options)), clock_(std::move(clock)) {}
  absl::Status Reload();
  absl::StatusOr<std::vector<std::pair<std::string, Key>>> FetchKeys();

  const OidcOptions options_;
  const std::function<absl::Time()> clock_;
  absl::Mutex mu_;
  std::vector<std::pair<std::string, Key>> keys_ ABSL_GUARDED_BY(mu_);
  absl::Time loaded_ ABSL_GUARDED_BY(mu_);
  absl::Time last_kid_reload_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace certplane::gateway

#endif  // CERTPLANE_SERVICES_GATEWAY_OIDC_H_
