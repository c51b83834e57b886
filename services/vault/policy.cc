#include "services/vault/policy.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpcpp/server_context.h"
#include "libs/server/peer_identity.h"

namespace certplane::vault {
namespace {

constexpr Operation kAllOperations[] = {
    Operation::kGenerate, Operation::kImport, Operation::kGet,
    Operation::kList,     Operation::kDelete, Operation::kCreateCsr,
    Operation::kSign,     Operation::kExport, Operation::kRotate,
};

uint32_t Bit(Operation operation) {
  return uint32_t{1} << static_cast<int>(operation);
}

bool IsPrintableAscii(absl::string_view text) {
  for (char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

absl::string_view OperationName(Operation operation) {
  switch (operation) {
    case Operation::kGenerate:
      return "generate";
    case Operation::kImport:
      return "import";
    case Operation::kGet:
      return "get";
    case Operation::kList:
      return "list";
    case Operation::kDelete:
      return "delete";
    case Operation::kCreateCsr:
      return "create_csr";
    case Operation::kSign:
      return "sign";
    case Operation::kExport:
      return "export";
    case Operation::kRotate:
      return "rotate";
  }
  return "unknown";
}

absl::StatusOr<Operation> ParseOperation(absl::string_view name) {
  for (Operation operation : kAllOperations) {
    if (OperationName(operation) == name) return operation;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown operation \"", name,
      "\" (known: generate, import, get, list, delete, create_csr, sign, "
      "export, rotate, *)"));
}

absl::StatusOr<Policy> Policy::Parse(absl::string_view text) {
  Policy policy;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (size_t hash = line.find('#'); hash != absl::string_view::npos) {
      line = line.substr(0, hash);
    }
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    std::vector<absl::string_view> words =
        absl::StrSplit(line, absl::ByAnyChar(" \t,"), absl::SkipEmpty());
    if (words.size() < 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "policy line ", line_number, ": \"", words[0],
          "\" has no operations; write <identity> <operation>[,...]"));
    }
    uint32_t bits = 0;
    for (size_t i = 1; i < words.size(); ++i) {
      if (words[i] == "*") {
        for (Operation operation : kAllOperations) bits |= Bit(operation);
        continue;
      }
      absl::StatusOr<Operation> operation = ParseOperation(words[i]);
      if (!operation.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "policy line ", line_number, ": ", operation.status().message()));
      }
      bits |= Bit(*operation);
    }
    policy.rules_[std::string(words[0])] |= bits;
  }
  return policy;
}

absl::StatusOr<Policy> Policy::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int error = errno;
    std::string message = absl::StrCat("cannot read policy file ", path, ": ",
                                       std::strerror(error));
    if (error == EACCES) return absl::PermissionDeniedError(message);
    return absl::NotFoundError(message);
  }
  std::stringstream contents;
  contents << in.rdbuf();
  absl::StatusOr<Policy> policy = Parse(contents.str());
  if (!policy.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", policy.status().message()));
  }
  return policy;
}

bool Policy::Allows(absl::Span<const std::string> identities,
                    Operation operation) const {
  if (identities.empty()) return false;
  if (auto it = rules_.find("*");
      it != rules_.end() && (it->second & Bit(operation)) != 0) {
    return true;
  }
  for (const std::string& identity : identities) {
    if (auto it = rules_.find(identity);
        it != rules_.end() && (it->second & Bit(operation)) != 0) {
      return true;
    }
  }
  return false;
}

absl::StatusOr<std::vector<std::string>> CallerIdentities(
    const grpc::ServerContextBase& context, bool allow_development_identity) {
  const auto& metadata = context.client_metadata();
  auto header = metadata.find(kDevelopmentIdentityHeader);
  const bool has_header = header != metadata.end();
  if (has_header && !allow_development_identity) {
    return absl::UnauthenticatedError(absl::StrCat(
        kDevelopmentIdentityHeader,
        " is accepted only by a plaintext development server "
        "(--insecure_plaintext_for_development); use an mTLS client "
        "certificate"));
  }
  std::vector<std::string> identities = server::PeerIdentities(context);
  if (!identities.empty()) return identities;
  if (has_header) {
    absl::string_view value(header->second.data(), header->second.size());
    if (value.empty() || value.size() > 256 || !IsPrintableAscii(value) ||
        value == "*") {
      return absl::UnauthenticatedError(absl::StrCat(
          kDevelopmentIdentityHeader,
          " must be 1-256 printable ASCII characters and not \"*\""));
    }
    return std::vector<std::string>{std::string(value)};
  }
  return absl::UnauthenticatedError(
      allow_development_identity
          ? absl::StrCat("no caller identity: send ",
                         kDevelopmentIdentityHeader,
                         " (development) or use an mTLS client certificate")
          : "no caller identity: the vault requires an mTLS client "
            "certificate");
}

}  // namespace certplane::vault
