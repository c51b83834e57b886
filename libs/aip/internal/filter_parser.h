// The syntax half of libs/aip/filter.h: parses an AIP-160 filter into a
// tree of AND / OR / NOT nodes over restrictions, without knowing any field.
// libs/aip/filter.cc checks the fields and compiles the tree to SQL.
//
// The parser never throws, recurses at most kMaxDepth levels of parentheses
// deep and reads each byte a bounded number of times, so any input (binary,
// very long, deeply nested) yields a tree or INVALID_ARGUMENT.
#ifndef CERTPLANE_LIBS_AIP_INTERNAL_FILTER_PARSER_H_
#define CERTPLANE_LIBS_AIP_INTERNAL_FILTER_PARSER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "libs/aip/filter.h"

namespace certplane::aip::internal {

inline constexpr int kMaxFilterBytes = 4096;
inline constexpr int kMaxDepth = 32;
inline constexpr int kMaxRestrictions = 64;

struct FilterNode {
  enum class Kind { kAnd, kOr, kNot, kRestriction };
  Kind kind = Kind::kRestriction;
  std::vector<FilterNode> children;  // kAnd, kOr: two or more; kNot: one.

  // kRestriction only.
  std::string field;
  Comparator op = Comparator::kEq;
  std::string value;
  bool quoted = false;
  int position = 0;  // 1-based byte position of the field.
};

// A tree for `filter`; an empty or all-blank filter gives an empty kAnd
// node. INVALID_ARGUMENT ("filter: ...") on a syntax error or a limit.
absl::StatusOr<FilterNode> ParseFilter(absl::string_view filter);

}  // namespace certplane::aip::internal

#endif  // CERTPLANE_LIBS_AIP_INTERNAL_FILTER_PARSER_H_
