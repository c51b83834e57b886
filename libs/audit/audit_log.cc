#include "libs/audit/audit_log.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "libs/audit/merkle.h"
#include "libs/crypto/key.h"

namespace certplane::audit {
namespace {

void AppendField(std::string& out, absl::string_view field) {
  uint64_t n = field.size();
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((n >> shift) & 0xff));
  }
  out.append(field.data(), field.size());
}

}  // namespace

std::string LeafBytes(const AuditRecord& r) {
  std::string out = "certplane-audit-v1";
  AppendField(out, absl::StrCat(r.index));
  AppendField(out, absl::StrCat(absl::ToUnixMicros(r.time)));
  AppendField(out, r.principal);
  AppendField(out, r.method);
  AppendField(out, r.resource);
  AppendField(out, r.request_id);
  AppendField(out, r.phase);
  AppendField(out, r.code);
  AppendField(out, r.message);
  return out;
}

std::string CheckpointText(uint64_t tree_size, absl::string_view root,
                           absl::Time time) {
  return absl::StrCat("certplane audit checkpoint v1\n", tree_size, "\n",
                      crypto::HexEncode(root), "\n", absl::ToUnixMicros(time),
                      "\n");
}

absl::StatusOr<VerifyReport> VerifyLog(absl::Span<const AuditRecord> records,
                                       absl::Span<const Checkpoint> checkpoints,
                                       absl::string_view public_key_der) {
  if (checkpoints.empty()) {
    return absl::InvalidArgumentError(
        "the audit log has no signed checkpoint to verify against");
  }
  absl::StatusOr<crypto::PublicKey> key =
      crypto::PublicKey::FromDer(public_key_der);
  if (!key.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("audit public key: ", key.status().message()));
  }
  std::map<uint64_t, const Checkpoint*> by_size;
  for (const Checkpoint& c : checkpoints) {
    if (c.tree_size > records.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a checkpoint is signed at tree size ", c.tree_size, " but only ",
          records.size(), " records were given (records are missing)"));
    }
    if (absl::Status s = crypto::VerifySignature(
            *key, CheckpointText(c.tree_size, c.root, c.time), c.signature);
        !s.ok()) {
      return absl::DataLossError(
          absl::StrCat("the checkpoint at tree size ", c.tree_size,
                       " is not signed by the audit key (changed or forged)"));
    }
    by_size[c.tree_size] = &c;
  }

  VerifyReport report;
  CompactRange range;
  uint64_t last_good = 0;  // Tree size of the last checkpoint that matched.
  auto check_checkpoint = [&](uint64_t size) -> absl::Status {
    auto it = by_size.find(size);
    if (it == by_size.end()) return absl::OkStatus();
    if (range.Root() != it->second->root) {
      return absl::DataLossError(absl::StrCat(
          "audit records ", last_good, "..", size - 1,
          " do not match the checkpoint signed at tree size ", size,
          ": the first record after the last good checkpoint is ", last_good));
    }
    last_good = size;
    ++report.checkpoints;
    report.latest_signed_size = size;
    return absl::OkStatus();
  };
  if (absl::Status s = check_checkpoint(0); !s.ok()) return s;
  for (size_t i = 0; i < records.size(); ++i) {
    const AuditRecord& r = records[i];
    if (r.index != i) {
      return absl::InvalidArgumentError(absl::StrCat(
          "audit record ", i, " is missing (found index ", r.index, ")"));
    }
    std::string leaf_hash = LeafHash(LeafBytes(r));
    if (leaf_hash != r.leaf_hash) {
      return absl::DataLossError(
          absl::StrCat("audit record ", i,
                       " does not match its stored leaf hash: it was "
                       "changed after it was written"));
    }
    range.Append(leaf_hash);
    if (range.Root() != r.root_after) {
      return absl::DataLossError(
          absl::StrCat("audit record ", i,
                       " does not match the tree root stored with it: "
                       "it or an earlier record was changed"));
    }
    ++report.records;
    if (absl::Status s = check_checkpoint(i + 1); !s.ok()) return s;
  }
  return report;
}

}  // namespace certplane::audit
