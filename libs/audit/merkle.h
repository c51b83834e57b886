// Merkle tree hashing and proofs as RFC 9162 (Certificate Transparency 2.0,
// the same trees as RFC 6962) defines them, over SHA-256:
//
//   leaf hash  = SHA-256(0x00 || leaf)
//   node hash  = SHA-256(0x01 || left || right)
//   MTH(D[n])  = the root of n leaves, split at the largest power of two
//                smaller than n; MTH of no leaves is SHA-256("").
//
// The audit log (libs/audit/audit_record.h, services/gateway) appends one
// leaf per record; CompactRange keeps the log's root up to date with
// O(log n) state and names the perfect subtrees each leaf completes, which
// the log stores, so that a proof reads O(log^2 n) stored subtree hashes
// instead of every leaf.
//
// All functions are pure; CompactRange is a value type (not thread-safe to
// mutate from several threads).
#ifndef CERTPLANE_LIBS_AUDIT_MERKLE_H_
#define CERTPLANE_LIBS_AUDIT_MERKLE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace certplane::audit {

// 32 raw bytes each.
std::string LeafHash(absl::string_view leaf);
std::string NodeHash(absl::string_view left, absl::string_view right);
std::string EmptyTreeHash();

// MTH over the first `size` of `leaf_hashes` (size <= leaf_hashes.size()).
std::string RootOf(absl::Span<const std::string> leaf_hashes);

// PATH(index, D[tree_size]) from the leaf hashes of at least tree_size
// leaves. INVALID_ARGUMENT unless index < tree_size <= leaf_hashes.size().
absl::StatusOr<std::vector<std::string>> InclusionProof(
    absl::Span<const std::string> leaf_hashes, uint64_t index,
    uint64_t tree_size);

// PROOF(first, D[second]). INVALID_ARGUMENT unless
// 0 < first <= second <= leaf_hashes.size().
absl::StatusOr<std::vector<std::string>> ConsistencyProof(
    absl::Span<const std::string> leaf_hashes, uint64_t first, uint64_t second);

// The hash of the perfect subtree over leaves [index * 2^level,
// (index + 1) * 2^level): level 0 is a leaf hash. The proofs below ask
// only for subtrees inside the tree they prove.
using SubtreeHashes =
    absl::FunctionRef<absl::StatusOr<std::string>(int level, uint64_t index)>;

// The same proofs from stored subtree hashes; `subtree`'s errors come back
// as they are. INVALID_ARGUMENT unless index < tree_size, resp.
// 0 < first <= second.
absl::StatusOr<std::vector<std::string>> InclusionProof(SubtreeHashes subtree,
                                                        uint64_t index,
                                                        uint64_t tree_size);
absl::StatusOr<std::vector<std::string>> ConsistencyProof(SubtreeHashes subtree,
                                                          uint64_t first,
                                                          uint64_t second);

// RFC 9162 2.1.3.2: whether `proof` shows the leaf with `leaf_hash` at
// `index` in the tree of `tree_size` with `root`. OK or INVALID_ARGUMENT
// saying why not.
absl::Status VerifyInclusion(absl::string_view leaf_hash, uint64_t index,
                             uint64_t tree_size,
                             absl::Span<const std::string> proof,
                             absl::string_view root);

// RFC 9162 2.1.4.2: whether `proof` shows the tree of `first` leaves with
// `first_root` is a prefix of the tree of `second` leaves with
// `second_root`.
absl::Status VerifyConsistency(uint64_t first, uint64_t second,
                               absl::string_view first_root,
                               absl::string_view second_root,
                               absl::Span<const std::string> proof);

// The right edge of a tree: the roots of its perfect subtrees, largest
// first, enough to append leaves and compute the root without the leaves.
class CompactRange {
 public:
  CompactRange() = default;

  // Restores a range from Encode()'s output; INVALID_ARGUMENT when it is
  // malformed or does not match `size`.
  static absl::StatusOr<CompactRange> Decode(uint64_t size,
                                             absl::string_view encoded);

  // Appends a leaf. `completed`, when set, receives the hashes of the
  // perfect subtrees of level 1 and up that this leaf completes, lowest
  // first: after the append, level L's is the subtree (L, size() / 2^L - 1)
  // for every L with size() divisible by 2^L.
  void Append(absl::string_view leaf_hash,
              std::vector<std::string>* completed = nullptr);
  uint64_t size() const { return size_; }
  std::string Root() const;
  // The subtree hashes concatenated (32 bytes each).
  std::string Encode() const;

 private:
  uint64_t size_ = 0;
  std::vector<std::string> hashes_;  // One per set bit of size_, high first.
};

}  // namespace certplane::audit

#endif  // CERTPLANE_LIBS_AUDIT_MERKLE_H_
