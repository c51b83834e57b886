// The audit log's records, checkpoints and verification, shared by the
// gateway (which writes the log) and `certplane audit verify` (which checks
// it without trusting the gateway's arithmetic).
//
// A record is one leaf of an RFC 9162 Merkle tree (merkle.h). Its leaf bytes
// are a fixed, unambiguous encoding of its fields (LeafBytes), so anyone
// holding the fields can recompute the leaf hash. A checkpoint is a tree
// size and root signed by the gateway's audit key (Ed25519) over
// CheckpointText. Verification recomputes every leaf hash and the running
// root from the records alone and compares them with what the log stored
// and with every signed checkpoint; it names the first record that does not
// match.
//
// Value types and pure functions; thread-safe.
#ifndef CERTPLANE_LIBS_AUDIT_AUDIT_LOG_H_
#define CERTPLANE_LIBS_AUDIT_AUDIT_LOG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace certplane::audit {

struct AuditRecord {
  uint64_t index = 0;     // Leaf index, from 0, dense.
  absl::Time time;        // Truncated to microseconds.
  std::string principal;  // "user:alice", "service:...", "token:..."
  std::string method;     // "/certplane.issuance.v1.IssuanceService/..."
  std::string resource;   // What it acted on, when known.
  std::string request_id;
  std::string phase;    // "attempt" (before the change) or "result".
  std::string code;     // gRPC code name for results ("OK", ...).
  std::string message;  // The error message of a failed result.
  // As stored by the log (hashes 32 raw bytes): the record's leaf hash and
  // the tree root after it was appended.
  std::string leaf_hash;
  std::string root_after;
};

// The leaf: "certplane-audit-v1" then each field as an 8-byte big-endian
// length and its bytes, in the order index (decimal), time (decimal
// microseconds since the epoch), principal, method, resource, request_id,
// phase, code, message.
std::string LeafBytes(const AuditRecord& record);

struct Checkpoint {
  uint64_t tree_size = 0;
  std::string root;  // 32 bytes.
  absl::Time time;
  std::string key_id;     // Hex SHA-256 of the signing key's SPKI.
  std::string signature;  // Ed25519 over CheckpointText.
};

// "certplane audit checkpoint v1\n<tree_size>\n<hex root>\n<unix micros>\n".
std::string CheckpointText(uint64_t tree_size, absl::string_view root,
                           absl::Time time);

struct VerifyReport {
  uint64_t records = 0;      // Records checked.
  uint64_t checkpoints = 0;  // Signed checkpoints checked.
  uint64_t latest_signed_size = 0;
};

// Checks `records` (in index order, from 0) against themselves, against
// each `checkpoints` entry (any order) and the checkpoint signatures under
// `public_key_der` (SubjectPublicKeyInfo). OK with the counts, or
// DATA_LOSS naming the first record that does not match:
//   "audit record 17 does not match its stored leaf hash (changed?)",
//   "audit records 12..19 do not match the checkpoint signed at tree size
//    20: the first record after the last good checkpoint is 12".
// INVALID_ARGUMENT when there are no checkpoints or records are missing.
absl::StatusOr<VerifyReport> VerifyLog(absl::Span<const AuditRecord> records,
                                       absl::Span<const Checkpoint> checkpoints,
                                       absl::string_view public_key_der);

}  // namespace certplane::audit

#endif  // CERTPLANE_LIBS_AUDIT_AUDIT_LOG_H_
