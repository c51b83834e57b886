#include "libs/audit/merkle.h"

#include <bit>

#include "absl/strings/str_cat.h"
#include "libs/crypto/digest.h"

namespace certplane::audit {
namespace {

using crypto::kSha256Size;

// The largest power of two smaller than n (n >= 2).
uint64_t SplitPoint(uint64_t n) { return std::bit_floor(n - 1); }

// MTH(D[lo:hi]) from perfect subtrees: a range whose size is a power of two
// and which starts at a multiple of it is one subtree; any other range is
// split as MTH splits it. The proofs below only ask for ranges whose left
// part is such a subtree, so a range costs O(log n) subtrees.
absl::StatusOr<std::string> RangeHash(SubtreeHashes subtree, uint64_t lo,
                                      uint64_t hi) {
  const uint64_t n = hi - lo;
  if (n == 0) return EmptyTreeHash();
  if (std::has_single_bit(n) && lo % n == 0) {
    return subtree(std::countr_zero(n), lo / n);
  }
  const uint64_t k = SplitPoint(n);
  absl::StatusOr<std::string> left = RangeHash(subtree, lo, lo + k);
  if (!left.ok()) return left.status();
  absl::StatusOr<std::string> right = RangeHash(subtree, lo + k, hi);
  if (!right.ok()) return right.status();
  return NodeHash(*left, *right);
}

// PATH(m, D[lo:hi]) (RFC 9162 2.1.3.1), appended to `out`.
absl::Status Path(SubtreeHashes subtree, uint64_t lo, uint64_t hi, uint64_t m,
                  std::vector<std::string>& out) {
  const uint64_t n = hi - lo;
  if (n <= 1) return absl::OkStatus();
  const uint64_t k = SplitPoint(n);
  absl::StatusOr<std::string> sibling;
  if (m < k) {
    if (absl::Status s = Path(subtree, lo, lo + k, m, out); !s.ok()) return s;
    sibling = RangeHash(subtree, lo + k, hi);
  } else {
    if (absl::Status s = Path(subtree, lo + k, hi, m - k, out); !s.ok()) {
      return s;
    }
    sibling = RangeHash(subtree, lo, lo + k);
  }
  if (!sibling.ok()) return sibling.status();
  out.push_back(*std::move(sibling));
  return absl::OkStatus();
}

// SUBPROOF(m, D[lo:hi], complete) (RFC 9162 2.1.4.1), appended to `out`.
absl::Status SubProof(SubtreeHashes subtree, uint64_t lo, uint64_t hi,
                      uint64_t m, bool complete,
                      std::vector<std::string>& out) {
  const uint64_t n = hi - lo;
  if (m == n) {
    if (complete) return absl::OkStatus();
    absl::StatusOr<std::string> root = RangeHash(subtree, lo, hi);
    if (!root.ok()) return root.status();
    out.push_back(*std::move(root));
    return absl::OkStatus();
  }
  const uint64_t k = SplitPoint(n);
  absl::StatusOr<std::string> sibling;
  if (m <= k) {
    if (absl::Status s = SubProof(subtree, lo, lo + k, m, complete, out);
        !s.ok()) {
      return s;
    }
    sibling = RangeHash(subtree, lo + k, hi);
  } else {
    if (absl::Status s = SubProof(subtree, lo + k, hi, m - k, false, out);
        !s.ok()) {
      return s;
    }
    sibling = RangeHash(subtree, lo, lo + k);
  }
  if (!sibling.ok()) return sibling.status();
  out.push_back(*std::move(sibling));
  return absl::OkStatus();
}

// Perfect subtrees hashed from the leaf hashes themselves.
auto FromLeaves(absl::Span<const std::string> leaf_hashes) {
  return
      [leaf_hashes](int level, uint64_t index) -> absl::StatusOr<std::string> {
        const uint64_t width = uint64_t{1} << level;
        return RootOf(leaf_hashes.subspan(index * width, width));
      };
}

absl::Status CheckHashSize(absl::string_view hash, absl::string_view what) {
  if (hash.size() != kSha256Size) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", hash.size(), " bytes, not 32"));
  }
  return absl::OkStatus();
}

}  // namespace

std::string LeafHash(absl::string_view leaf) {
  return crypto::Sha256Of({absl::string_view("\x00", 1), leaf});
}

std::string NodeHash(absl::string_view left, absl::string_view right) {
  return crypto::Sha256Of({"\x01", left, right});
}

std::string EmptyTreeHash() { return crypto::Sha256(""); }

std::string RootOf(absl::Span<const std::string> leaf_hashes) {
  uint64_t n = leaf_hashes.size();
  if (n == 0) return EmptyTreeHash();
  if (n == 1) return leaf_hashes[0];
  uint64_t k = SplitPoint(n);
  return NodeHash(RootOf(leaf_hashes.subspan(0, k)),
                  RootOf(leaf_hashes.subspan(k)));
}

absl::StatusOr<std::vector<std::string>> InclusionProof(
    absl::Span<const std::string> leaf_hashes, uint64_t index,
    uint64_t tree_size) {
  if (tree_size > leaf_hashes.size() || index >= tree_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("no leaf ", index, " in a tree of ", tree_size,
                     " (the log has ", leaf_hashes.size(), ")"));
  }
  return InclusionProof(FromLeaves(leaf_hashes), index, tree_size);
}

absl::StatusOr<std::vector<std::string>> InclusionProof(SubtreeHashes subtree,
                                                        uint64_t index,
                                                        uint64_t tree_size) {
  if (index >= tree_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("no leaf ", index, " in a tree of ", tree_size));
  }
  std::vector<std::string> proof;
  if (absl::Status s = Path(subtree, 0, tree_size, index, proof); !s.ok()) {
    return s;
  }
  return proof;
}

absl::StatusOr<std::vector<std::string>> ConsistencyProof(
    absl::Span<const std::string> leaf_hashes, uint64_t first,
    uint64_t second) {
  if (first == 0 || first > second || second > leaf_hashes.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("no consistency proof from tree size ", first, " to ",
                     second, " (the log has ", leaf_hashes.size(),
                     "; sizes must satisfy 0 < first <= second)"));
  }
  return ConsistencyProof(FromLeaves(leaf_hashes), first, second);
}

absl::StatusOr<std::vector<std::string>> ConsistencyProof(SubtreeHashes subtree,
                                                          uint64_t first,
                                                          uint64_t second) {
  if (first == 0 || first > second) {
    return absl::InvalidArgumentError(
        absl::StrCat("no consistency proof from tree size ", first, " to ",
                     second, " (sizes must satisfy 0 < first <= second)"));
  }
  std::vector<std::string> proof;
  if (absl::Status s = SubProof(subtree, 0, second, first, true, proof);
      !s.ok()) {
    return s;
  }
  return proof;
}

absl::Status VerifyInclusion(absl::string_view leaf_hash, uint64_t index,
                             uint64_t tree_size,
                             absl::Span<const std::string> proof,
                             absl::string_view root) {
  if (index >= tree_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "leaf index ", index, " is not below the tree size ", tree_size));
  }
  if (absl::Status s = CheckHashSize(leaf_hash, "leaf hash"); !s.ok()) return s;
  uint64_t fn = index;
  uint64_t sn = tree_size - 1;
  std::string r(leaf_hash);
  for (const std::string& p : proof) {
    if (absl::Status s = CheckHashSize(p, "a proof hash"); !s.ok()) return s;
    if (sn == 0) {
      return absl::InvalidArgumentError("inclusion proof is too long");
    }
    if ((fn & 1) != 0 || fn == sn) {
      r = NodeHash(p, r);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0)
    return absl::InvalidArgumentError("inclusion proof is too short");
  if (r != root) {
    return absl::InvalidArgumentError(
        "inclusion proof does not lead to the tree's root");
  }
  return absl::OkStatus();
}

absl::Status VerifyConsistency(uint64_t first, uint64_t second,
                               absl::string_view first_root,
                               absl::string_view second_root,
                               absl::Span<const std::string> proof) {
  if (first == 0 || first > second) {
    return absl::InvalidArgumentError(
        absl::StrCat("tree sizes ", first, " and ", second,
                     " do not satisfy 0 < first <= second"));
  }
  if (absl::Status s = CheckHashSize(first_root, "first root"); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckHashSize(second_root, "second root"); !s.ok()) {
    return s;
  }
  if (first == second) {
    if (!proof.empty()) {
      return absl::InvalidArgumentError(
          "consistency proof between equal sizes must be empty");
    }
    if (first_root != second_root) {
      return absl::InvalidArgumentError(
          "two roots of the same tree size differ");
    }
    return absl::OkStatus();
  }
  std::vector<std::string> path;
  if (std::has_single_bit(first)) path.emplace_back(first_root);
  for (const std::string& p : proof) {
    if (absl::Status s = CheckHashSize(p, "a proof hash"); !s.ok()) return s;
    path.push_back(p);
  }
  if (path.empty())
    return absl::InvalidArgumentError("consistency proof is empty");
  uint64_t fn = first - 1;
  uint64_t sn = second - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  std::string fr = path[0];
  std::string sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const std::string& c = path[i];
    if (sn == 0) {
      return absl::InvalidArgumentError("consistency proof is too long");
    }
    if ((fn & 1) != 0 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      if ((fn & 1) == 0) {
        while ((fn & 1) == 0 && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return absl::InvalidArgumentError("consistency proof is too short");
  }
  if (fr != first_root) {
    return absl::InvalidArgumentError(
        "consistency proof does not lead to the first root");
  }
  if (sr != second_root) {
    return absl::InvalidArgumentError(
        "consistency proof does not lead to the second root");
  }
  return absl::OkStatus();
}

absl::StatusOr<CompactRange> CompactRange::Decode(uint64_t size,
                                                  absl::string_view encoded) {
  size_t count = std::popcount(size);
  if (encoded.size() != count * kSha256Size) {
    return absl::InvalidArgumentError(
        absl::StrCat("compact range of ", size, " leaves needs ", count,
                     " hashes, got ", encoded.size(), " bytes"));
  }
  CompactRange range;
  range.size_ = size;
  for (size_t i = 0; i < count; ++i) {
    range.hashes_.emplace_back(encoded.substr(i * kSha256Size, kSha256Size));
  }
  return range;
}

void CompactRange::Append(absl::string_view leaf_hash,
                          std::vector<std::string>* completed) {
  std::string carry(leaf_hash);
  // Merge with the subtrees the new leaf completes: one per trailing set bit.
  for (uint64_t s = size_; (s & 1) != 0; s >>= 1) {
    carry = NodeHash(hashes_.back(), carry);
    hashes_.pop_back();
    if (completed != nullptr) completed->push_back(carry);
  }
  hashes_.push_back(std::move(carry));
  ++size_;
}

std::string CompactRange::Root() const {
  if (hashes_.empty()) return EmptyTreeHash();
  std::string r = hashes_.back();
  for (size_t i = hashes_.size() - 1; i-- > 0;) r = NodeHash(hashes_[i], r);
  return r;
}

std::string CompactRange::Encode() const {
  std::string out;
  for (const std::string& h : hashes_) out += h;
  return out;
}

}  // namespace certplane::audit
