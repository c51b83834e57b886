#include "services/gateway/authn.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "libs/crypto/digest.h"
#include "libs/server/json_log.h"
#include "services/gateway/tokens.h"

namespace certplane::gateway {
namespace {

absl::Status Unauthenticated(absl::string_view reason) {
  log::Info("gateway: authentication failed",
            {{"reason", std::string(reason)}});
  return absl::UnauthenticatedError(kUnauthenticatedMessage);
}

constexpr size_t kMaxCachedTokens = 10000;

}  // namespace

Authenticator::Authenticator(GatewayStore& store, AuthenticatorOptions options,
                             std::function<absl::Time()> clock)
    : store_(store), options_(std::move(options)), clock_(std::move(clock)) {}

absl::StatusOr<Principal> Authenticator::Authenticate(
    absl::string_view authorization,
    const std::vector<std::string>& peer_identities) {
  if (!authorization.empty()) {
    absl::string_view value = authorization;
    if (!absl::ConsumePrefix(&value, "Bearer ") &&
        !absl::ConsumePrefix(&value, "bearer ")) {
      return Unauthenticated("authorization header is not a bearer token");
    }
    if (absl::StartsWith(value, kTokenPrefix)) return FromToken(value);
    if (options_.oidc != nullptr &&
        std::count(value.begin(), value.end(), '.') == 2) {
      absl::StatusOr<OidcIdentity> identity = options_.oidc->Verify(value);
      if (!identity.ok()) return Unauthenticated(identity.status().message());
      Principal p;
      p.caller.identity = identity->user;
      p.caller.roles = std::move(identity->roles);
      p.authenticated_by = "oidc";
      return p;
    }
    return Unauthenticated("bearer value is not a certplane API token or JWT");
  }
  for (const std::string& identity : peer_identities) {
    auto it = options_.service_roles.find(identity);
    if (it == options_.service_roles.end()) continue;
    Principal p;
    p.caller.identity = absl::StrCat("service:", identity);
    p.caller.roles = it->second;
    p.authenticated_by = "mtls";
    return p;
  }
  if (!peer_identities.empty()) {
    return Unauthenticated(absl::StrCat("client certificate identity ",
                                        peer_identities.front(),
                                        " has no service roles"));
  }
  return Unauthenticated("no credentials");
}

bool Authenticator::WouldBlock(absl::string_view authorization) {
  absl::string_view value = authorization;
  if (!absl::ConsumePrefix(&value, "Bearer ") &&
      !absl::ConsumePrefix(&value, "bearer ")) {
    return false;
  }
  if (!absl::StartsWith(value, kTokenPrefix)) return false;
  absl::StatusOr<std::string> id = TokenId(value);
  if (!id.ok()) return false;
  absl::MutexLock lock(&mu_);
  auto it = cache_.find(*id);
  return it == cache_.end() ||
         clock_() - it->second.fetched >= options_.token_cache_ttl;
}

void Authenticator::Forget(absl::string_view token_id) {
  absl::MutexLock lock(&mu_);
  cache_.erase(token_id);
}

absl::StatusOr<Principal> Authenticator::FromToken(absl::string_view token) {
  absl::StatusOr<std::string> id = TokenId(token);
  if (!id.ok()) return Unauthenticated("malformed API token");
  const absl::Time now = clock_();
  std::optional<Cached> cached;
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(*id);
    if (it != cache_.end() &&
        now - it->second.fetched < options_.token_cache_ttl) {
      cached = it->second;
    }
  }
  if (!cached) {
    absl::StatusOr<TokenRecord> stored = store_.GetToken(*id);
    if (absl::IsNotFound(stored.status())) {
      return Unauthenticated(absl::StrCat("unknown token id ", *id));
    }
    if (!stored.ok()) {
      // The database is down: that is not the caller's fault.
      return absl::UnavailableError(absl::StrCat(
          "cannot check credentials now: ", stored.status().message()));
    }
    cached = Cached{*stored, now, server::ParseRoles(stored->roles)};
    absl::MutexLock lock(&mu_);
    if (cache_.size() >= kMaxCachedTokens) cache_.clear();
    cache_[*id] = *cached;
  }
  const TokenRecord* record = &cached->token;
  if (!crypto::ConstantTimeEquals(TokenHash(token), record->secret_sha256)) {
    return Unauthenticated(absl::StrCat("wrong secret for token ", *id));
  }
  if (record->revoke_time.has_value()) {
    return Unauthenticated(absl::StrCat("token ", *id, " is revoked"));
  }
  if (now >= record->expire_time) {
    return Unauthenticated(absl::StrCat("token ", *id, " expired"));
  }
  if (!cached->roles.ok()) {
    return Unauthenticated(absl::StrCat("token ", *id, " has bad roles"));
  }
  Principal p;
  p.caller.identity = record->principal;
  p.caller.roles = *cached->roles;
  p.authenticated_by = "token";
  p.token_id = *id;
  return p;
}

}  // namespace certplane::gateway
