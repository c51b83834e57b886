#include "libs/audit/merkle.h"

#include <bit>
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "libs/testing/status_matchers.h"

namespace certplane::audit {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;

// The eight leaves of the Certificate Transparency reference tests and the
// roots of their first 1..8 leaves (RFC 6962 trees; RFC 9162 keeps them).
std::vector<std::string> ReferenceLeafHashes() {
  std::vector<std::string> leaves = {
      "",
      absl::HexStringToBytes("00"),
      absl::HexStringToBytes("10"),
      absl::HexStringToBytes("2021"),
      absl::HexStringToBytes("3031"),
      absl::HexStringToBytes("40414243"),
      absl::HexStringToBytes("5051525354555657"),
      absl::HexStringToBytes("606162636465666768696a6b6c6d6e6f")};
  std::vector<std::string> hashes;
  for (const std::string& leaf : leaves) hashes.push_back(LeafHash(leaf));
  return hashes;
}

constexpr const char* kReferenceRoots[] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

std::vector<std::string> SyntheticLeafHashes(int n) {
  std::vector<std::string> hashes;
  for (int i = 0; i < n; ++i)
    hashes.push_back(LeafHash(absl::StrCat("leaf ", i)));
  return hashes;
}

TEST_CASE("RootsMatchTheCertificateTransparencyReferenceVectors") {
  std::vector<std::string> hashes = ReferenceLeafHashes();
  CHECK(absl::BytesToHexString(EmptyTreeHash()) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  for (size_t n = 1; n <= hashes.size(); ++n) {
    INFO("tree size " << n);
    CHECK(absl::BytesToHexString(RootOf(absl::MakeConstSpan(hashes).subspan(
              0, n))) == kReferenceRoots[n - 1]);
  }
}

TEST_CASE("CompactRangeKeepsTheRootOfEveryPrefixAndSurvivesEncoding") {
  std::vector<std::string> hashes = SyntheticLeafHashes(70);
  CompactRange range;
  CHECK(range.Root() == EmptyTreeHash());
  for (size_t i = 0; i < hashes.size(); ++i) {
    range.Append(hashes[i]);
    REQUIRE(range.Root() ==
            RootOf(absl::MakeConstSpan(hashes).subspan(0, i + 1)));
    CompactRange copy =
        ValueOrDie(CompactRange::Decode(range.size(), range.Encode()));
    REQUIRE(copy.Root() == range.Root());
  }
  CHECK_THAT(CompactRange::Decode(3, std::string(32, 'x')).status(),
             StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_CASE("EveryInclusionProofVerifiesAndAnyChangeFails") {
  std::vector<std::string> hashes = SyntheticLeafHashes(33);
  for (uint64_t n = 1; n <= hashes.size(); ++n) {
    std::string root = RootOf(absl::MakeConstSpan(hashes).subspan(0, n));
    for (uint64_t i = 0; i < n; ++i) {
      INFO("leaf " << i << " of " << n);
      std::vector<std::string> proof = ValueOrDie(InclusionProof(hashes, i, n));
      REQUIRE_THAT(VerifyInclusion(hashes[i], i, n, proof, root), IsOk());
      // Another leaf, another index, or a bent proof must not verify.
      CHECK_FALSE(VerifyInclusion(LeafHash("other"), i, n, proof, root).ok());
      if (n > 1) {
        CHECK_FALSE(
            VerifyInclusion(hashes[i], (i + 1) % n, n, proof, root).ok());
      }
      if (!proof.empty()) {
        std::vector<std::string> bent = proof;
        bent.back()[0] ^= 1;
        CHECK_FALSE(VerifyInclusion(hashes[i], i, n, bent, root).ok());
        bent = proof;
        bent.pop_back();
        CHECK_FALSE(VerifyInclusion(hashes[i], i, n, bent, root).ok());
      }
    }
  }
  CHECK_THAT(InclusionProof(hashes, 5, 5).status(),
             StatusIs(absl::StatusCode::kInvalidArgument));
  CHECK_THAT(InclusionProof(hashes, 0, 34).status(),
             StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_CASE("EveryConsistencyProofVerifiesAndAnyChangeFails") {
  std::vector<std::string> hashes = SyntheticLeafHashes(33);
  for (uint64_t second = 1; second <= hashes.size(); ++second) {
    std::string second_root =
        RootOf(absl::MakeConstSpan(hashes).subspan(0, second));
    for (uint64_t first = 1; first <= second; ++first) {
      INFO("from " << first << " to " << second);
      std::string first_root =
          RootOf(absl::MakeConstSpan(hashes).subspan(0, first));
      std::vector<std::string> proof =
          ValueOrDie(ConsistencyProof(hashes, first, second));
      REQUIRE_THAT(
          VerifyConsistency(first, second, first_root, second_root, proof),
          IsOk());
      if (first < second) {
        // A history that differs anywhere in the first tree must fail.
        std::vector<std::string> other = hashes;
        other[first - 1] = LeafHash("rewritten");
        std::string forged_first =
            RootOf(absl::MakeConstSpan(other).subspan(0, first));
        CHECK_FALSE(
            VerifyConsistency(first, second, forged_first, second_root, proof)
                .ok());
        std::vector<std::string> bent = proof;
        bent.back()[5] ^= 1;
        CHECK_FALSE(
            VerifyConsistency(first, second, first_root, second_root, bent)
                .ok());
      }
    }
  }
  CHECK_THAT(ConsistencyProof(hashes, 0, 3).status(),
             StatusIs(absl::StatusCode::kInvalidArgument));
  CHECK_THAT(ConsistencyProof(hashes, 4, 3).status(),
             StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_CASE("ProofsFromStoredSubtreesEqualTheProofsFromEveryLeaf") {
  // The subtrees a log stores: the leaves (level 0) and every subtree
  // CompactRange::Append reports, at the position it documents.
  const std::vector<std::string> leaves = SyntheticLeafHashes(70);
  std::map<std::pair<int, uint64_t>, std::string> stored;
  CompactRange range;
  for (uint64_t i = 0; i < leaves.size(); ++i) {
    stored[{0, i}] = leaves[i];
    std::vector<std::string> completed;
    range.Append(leaves[i], &completed);
    for (size_t j = 0; j < completed.size(); ++j) {
      const int level = static_cast<int>(j) + 1;
      REQUIRE(range.size() % (uint64_t{1} << level) == 0);
      stored[{level, (range.size() >> level) - 1}] = completed[j];
    }
    // No more subtrees than the size's trailing zero bits.
    CHECK(completed.size() ==
          static_cast<size_t>(std::countr_zero(range.size())));
  }
  int reads = 0;
  auto subtree = [&](int level, uint64_t index) -> absl::StatusOr<std::string> {
    ++reads;
    auto it = stored.find({level, index});
    if (it == stored.end()) {
      return absl::NotFoundError(
          absl::StrCat("no subtree ", level, "/", index));
    }
    return it->second;
  };
  for (uint64_t size = 1; size <= leaves.size(); ++size) {
    for (uint64_t i = 0; i < size; ++i) {
      INFO("inclusion of " << i << " in " << size);
      reads = 0;
      auto from_subtrees = InclusionProof(subtree, i, size);
      REQUIRE_THAT(from_subtrees, IsOk());
      CHECK(*from_subtrees == ValueOrDie(InclusionProof(leaves, i, size)));
      CHECK(reads <= 2 * 7 * 7);  // O(log^2 n): at most 7 levels here.
    }
    for (uint64_t first = 1; first <= size; ++first) {
      INFO("consistency of " << first << " with " << size);
      auto from_subtrees = ConsistencyProof(subtree, first, size);
      REQUIRE_THAT(from_subtrees, IsOk());
      CHECK(*from_subtrees ==
            ValueOrDie(ConsistencyProof(leaves, first, size)));
    }
  }
  CHECK_THAT(InclusionProof(subtree, 5, 5),
             StatusIs(absl::StatusCode::kInvalidArgument, "no leaf 5"));
  CHECK_THAT(ConsistencyProof(subtree, 0, 5),
             StatusIs(absl::StatusCode::kInvalidArgument, "0 < first"));
  // A missing subtree comes back as the source said it.
  stored.erase({2, 1});
  CHECK_THAT(InclusionProof(subtree, 0, 16),
             StatusIs(absl::StatusCode::kNotFound, "no subtree 2/1"));
}

}  // namespace
}  // namespace certplane::audit
