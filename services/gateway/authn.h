// Authentication at the gateway: who is calling.
//
//   "authorization: Bearer cpt_..."  an API token (tokens.h): looked up by
//                                    id, its hash compared in constant time,
//                                    refused when revoked or expired
//   mTLS client certificate          a service: its identity (SAN or CN)
//                                    must be in `service_roles`
//   "authorization: Bearer <JWT>"    an OIDC token, when an OidcVerifier is
//                                    configured (oidc.h)
//
// Every failure is UNAUTHENTICATED "missing or invalid credentials": the
// caller learns nothing about which tokens or identities exist. The reason
// is logged (never the secret) and counted.
//
// Token lookups are cached for `token_cache_ttl` (revocation through this
// gateway takes effect at once: Forget()). Thread-safe.
#ifndef CERTPLANE_SERVICES_GATEWAY_AUTHN_H_
#define CERTPLANE_SERVICES_GATEWAY_AUTHN_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/server/caller.h"
#include "services/gateway/gateway_store.h"
#include "services/gateway/oidc.h"

namespace certplane::gateway {

inline constexpr char kUnauthenticatedMessage[] =
    "missing or invalid credentials";

struct Principal {
  server::Caller caller;         // identity: "user:alice", "service:...".
  std::string authenticated_by;  // "token", "oidc", "mtls".
  std::string token_id;          // For "token".
};

struct AuthenticatorOptions {
  // Service identities (mTLS) and their roles.
  absl::flat_hash_map<std::string, std::vector<server::RoleGrant>>
      service_roles;
  absl::Duration token_cache_ttl = absl::Seconds(5);
  // OIDC bearer JWTs; null: refused. Not owned.
  OidcVerifier* oidc = nullptr;
};

class Authenticator {
 public:
  Authenticator(GatewayStore& store, AuthenticatorOptions options,
                std::function<absl::Time()> clock);

  // `authorization` is the header's value ("" when absent);
  // `peer_identities` the verified mTLS identities (empty when none).
  absl::StatusOr<Principal> Authenticate(
      absl::string_view authorization,
      const std::vector<std::string>& peer_identities);

  // Whether Authenticate() could block on the database: a token that is not
  // in the cache (or whose cache entry is stale).
  bool WouldBlock(absl::string_view authorization);

  // Drops a cached token (after RevokeToken).
  void Forget(absl::string_view token_id);

 private:
  struct Cached {
    TokenRecord token;
    absl::Time fetched;
    // The token's roles, parsed once per fetch.
    absl::StatusOr<std::vector<server::RoleGrant>> roles;
  };
  absl::StatusOr<Principal> FromToken(absl::string_view token);

  GatewayStore& store_;
  const AuthenticatorOptions options_;
  const std::function<absl::Time()> clock_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace certplane::gateway

#endif  // CERTPLANE_SERVICES_GATEWAY_AUTHN_H_
