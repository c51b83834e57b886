// Who may do what in the vault: the access policy, and the caller identity
// it is checked against.
//
// The policy is a text file, one rule per line:
//
//   # comments and blank lines are ignored
//   # <identity> <operation>[,<operation>...]
//   spiffe://certplane.internal/issuance    generate,get,list,create_csr,sign
//   agent.web-01.certplane.internal         get, export
//   ops-admin@example.com                   *
//   *                                       list
//
// The identity is an exact string (an mTLS SAN or CN, see
// libs/server/peer_identity.h) or `*` for every authenticated caller. The
// operations are generate, import, get, list, delete, create_csr, sign,
// export and rotate, separated by commas and/or spaces; `*` means all of
// them. Several lines for one identity add up. Anything not allowed is
// denied (deny by default); an empty policy denies everything. A caller
// with several identities (several SANs) is allowed what any of them is.
//
// Policy is an immutable value: thread-safe.
#ifndef CERTPLANE_SERVICES_VAULT_POLICY_H_
#define CERTPLANE_SERVICES_VAULT_POLICY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace grpc {
class ServerContextBase;
}  // namespace grpc

namespace certplane::vault {

enum class Operation {
  kGenerate,
  kImport,
  kGet,
  kList,
  kDelete,
  kCreateCsr,
  kSign,
  kExport,
  kRotate,
};

// "generate", "import", "get", "list", "delete", "create_csr", "sign",
// "export", "rotate".
absl::string_view OperationName(Operation operation);
// Inverse of OperationName; INVALID_ARGUMENT naming the unknown word.
absl::StatusOr<Operation> ParseOperation(absl::string_view name);

class Policy {
 public:
  // Denies everything.
  Policy() = default;

  // Parses the format above. INVALID_ARGUMENT "policy line N: ..." naming
  // the problem (missing operations, unknown operation).
  static absl::StatusOr<Policy> Parse(absl::string_view text);
  // Reads and parses `path`; NOT_FOUND / PERMISSION_DENIED naming the file
  // when it cannot be read.
  static absl::StatusOr<Policy> FromFile(const std::string& path);

  // Whether any of `identities` may do `operation`. An empty list (an
  // unauthenticated caller) is never allowed anything.
  bool Allows(absl::Span<const std::string> identities,
              Operation operation) const;

  // Number of rules (identities, `*` included), for startup logs.
  size_t size() const { return rules_.size(); }

 private:
  absl::flat_hash_map<std::string, uint32_t> rules_;  // identity -> op bits
};

// Metadata header naming the caller on a plaintext development listener.
inline constexpr char kDevelopmentIdentityHeader[] = "x-certplane-dev-identity";

// The identities of the caller of the RPC `context` belongs to:
//  - the mTLS peer's identities (libs/server/peer_identity.h) when the peer
//    is authenticated;
//  - otherwise, only if `allow_development_identity` (the plaintext
//    development flag), the value of the x-certplane-dev-identity header
//    (1-256 printable ASCII characters).
// UNAUTHENTICATED when the header is sent without the development flag (it
// is never silently ignored), when it is malformed, or when there is no
// identity at all.
absl::StatusOr<std::vector<std::string>> CallerIdentities(
    const grpc::ServerContextBase& context, bool allow_development_identity);

}  // namespace certplane::vault

#endif  // CERTPLANE_SERVICES_VAULT_POLICY_H_
