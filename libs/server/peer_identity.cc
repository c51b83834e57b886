#include "libs/server/peer_identity.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "grpcpp/security/auth_context.h"
#include "grpcpp/server_context.h"

namespace certplane::server {

std::vector<std::string> PeerIdentities(
    const grpc::ServerContextBase& context) {
  std::vector<std::string> identities;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) return identities;
  for (const grpc::string_ref& value : auth->GetPeerIdentity()) {
    identities.emplace_back(value.data(), value.size());
  }
  return identities;
}

std::string PeerIdentity(const grpc::ServerContextBase& context) {
  return absl::StrJoin(PeerIdentities(context), ",");
}

}  // namespace certplane::server
