#include "libs/aip/internal/filter_parser.h"

#include <cstddef>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace certplane::aip::internal {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

bool IsAlnum(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c));
}

// A field name is segments joined by '.'; the first segment starts with a
// letter or '_', later ones (map keys such as tags.<key>) may start with a
// digit; '-' is allowed after the first character.
bool IsNameStart(char c) {
  return absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool IsSegmentStart(char c) { return IsAlnum(c) || c == '_'; }
bool IsNameChar(char c) { return IsAlnum(c) || c == '_' || c == '-'; }

// Characters of a bare-word value; ':' only after the first.
bool IsBareStart(char c) {
  return IsAlnum(c) || c == '_' || c == '-' || c == '.' || c == '*' || c == '+';
}
bool IsBareChar(char c) { return IsBareStart(c) || c == ':'; }

// Characters that continue a word, so "ANDROID" is not the keyword AND.
bool IsWordChar(char c) { return IsBareChar(c); }

// Text quoted for a message: escaped, and cut at 64 bytes.
std::string Quote(absl::string_view text) {
  constexpr size_t kMax = 64;
  if (text.size() > kMax) {
    return absl::StrCat("\"", absl::CHexEscape(text.substr(0, kMax)), "...\"");
  }
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

absl::Status Error(absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("filter: ", message));
}

// Recursive descent over the grammar in libs/aip/filter.h. Every loop
// consumes input or returns, and recursion happens only through "(", which
// ParseSimple counts against kMaxDepth.
class Parser {
 public:
  explicit Parser(absl::string_view input) : in_(input) {}

  absl::StatusOr<FilterNode> Parse() {
    absl::StatusOr<FilterNode> node = ParseExpression(0);
    if (!node.ok()) return node;
    SkipSpace();
    if (!AtEnd()) {
      // ParseExpression stops only at the end or at ")".
      return Error(absl::StrCat("unbalanced \")\" at position ", pos_ + 1));
    }
    return node;
  }

 private:
  bool AtEnd() const { return pos_ >= in_.size(); }
  char Peek() const { return AtEnd() ? '\0' : in_[pos_]; }
  int Position() const { return static_cast<int>(pos_) + 1; }

  void SkipSpace() {
    while (!AtEnd() && IsSpace(in_[pos_])) ++pos_;
  }

  // Whether the keyword `word` (AND, OR, NOT) starts at the current position.
  bool KeywordAt(absl::string_view word) const {
    if (in_.substr(pos_, word.size()) != word) return false;
    size_t next = pos_ + word.size();
    return next >= in_.size() || !IsWordChar(in_[next]);
  }
  bool AnyKeywordAt() const {
    return KeywordAt("AND") || KeywordAt("OR") || KeywordAt("NOT");
  }

  // Describes what is at the current position, for messages.
  std::string Found() const {
    if (AtEnd()) return "the end of the filter";
    if (AnyKeywordAt()) {
      return absl::StrCat("keyword ",
                          in_.substr(pos_, KeywordAt("OR") ? 2 : 3));
    }
    return Quote(in_.substr(pos_, 1));
  }

  static FilterNode Collapse(FilterNode node) {
    if (node.children.size() == 1) {
      FilterNode only = std::move(node.children.front());
      return only;
    }
    return node;
  }

  // expression = sequence {"AND" sequence}
  absl::StatusOr<FilterNode> ParseExpression(int depth) {
    FilterNode all;
    all.kind = FilterNode::Kind::kAnd;
    while (true) {
      absl::StatusOr<FilterNode> sequence = ParseSequence(depth);
      if (!sequence.ok()) return sequence.status();
      all.children.push_back(*std::move(sequence));
      SkipSpace();
      if (!KeywordAt("AND")) break;
      pos_ += 3;
    }
    return Collapse(std::move(all));
  }

  // sequence = factor {factor}: juxtaposed factors are ANDed.
  absl::StatusOr<FilterNode> ParseSequence(int depth) {
    FilterNode all;
    all.kind = FilterNode::Kind::kAnd;
    while (true) {
      absl::StatusOr<FilterNode> factor = ParseFactor(depth);
      if (!factor.ok()) return factor.status();
      all.children.push_back(*std::move(factor));
      SkipSpace();
      if (AtEnd() || Peek() == ')' || KeywordAt("AND")) break;
    }
    return Collapse(std::move(all));
  }

  // factor = term {"OR" term}
  absl::StatusOr<FilterNode> ParseFactor(int depth) {
    FilterNode any;
    any.kind = FilterNode::Kind::kOr;
    while (true) {
      absl::StatusOr<FilterNode> term = ParseTerm(depth);
      if (!term.ok()) return term.status();
      any.children.push_back(*std::move(term));
      SkipSpace();
      if (!KeywordAt("OR")) break;
      pos_ += 2;
    }
    return Collapse(std::move(any));
  }

  // term = ["NOT" | "-"] simple
  absl::StatusOr<FilterNode> ParseTerm(int depth) {
    SkipSpace();
    bool negate = false;
    if (KeywordAt("NOT")) {
      pos_ += 3;
      negate = true;
    } else if (Peek() == '-') {
      ++pos_;
      negate = true;
    }
    absl::StatusOr<FilterNode> simple = ParseSimple(depth);
    if (!simple.ok() || !negate) return simple;
    FilterNode node;
    node.kind = FilterNode::Kind::kNot;
    node.children.push_back(*std::move(simple));
    return node;
  }

  // simple = restriction | "(" expression ")"
  absl::StatusOr<FilterNode> ParseSimple(int depth) {
    SkipSpace();
    if (Peek() != '(') return ParseRestriction();
    int open = Position();
    if (depth + 1 > kMaxDepth) {
      return Error(absl::StrCat("parentheses nested deeper than ", kMaxDepth,
                                " levels at position ", open));
    }
    ++pos_;
    absl::StatusOr<FilterNode> inner = ParseExpression(depth + 1);
    if (!inner.ok()) return inner;
    SkipSpace();
    if (Peek() != ')') {
      return Error(absl::StrCat("unbalanced \"(\" at position ", open));
    }
    ++pos_;
    return inner;
  }

  // restriction = field comparator value
  absl::StatusOr<FilterNode> ParseRestriction() {
    SkipSpace();
    FilterNode node;
    node.kind = FilterNode::Kind::kRestriction;
    node.position = Position();
    if (AtEnd() || AnyKeywordAt() || !IsNameStart(Peek())) {
      return Error(absl::StrCat("expected a field name at position ",
                                Position(), ", found ", Found()));
    }
    size_t start = pos_;
    while (true) {
      while (!AtEnd() && IsNameChar(Peek())) ++pos_;
      if (Peek() != '.') break;
      ++pos_;
      if (!IsSegmentStart(Peek())) {
        return Error(
            absl::StrCat("field name ", Quote(in_.substr(start, pos_ - start)),
                         " at position ", node.position, " ends with \".\""));
      }
    }
    node.field = std::string(in_.substr(start, pos_ - start));
    if (++restrictions_ > kMaxRestrictions) {
      return Error(absl::StrCat("more than ", kMaxRestrictions,
                                " restrictions; simplify the filter"));
    }

    SkipSpace();
    int op_position = Position();
    absl::string_view rest = in_.substr(pos_);
    absl::string_view symbol;
    if (absl::StartsWith(rest, "<=")) {
      node.op = Comparator::kLe;
      symbol = "<=";
    } else if (absl::StartsWith(rest, ">=")) {
      node.op = Comparator::kGe;
      symbol = ">=";
    } else if (absl::StartsWith(rest, "!=")) {
      node.op = Comparator::kNe;
      symbol = "!=";
    } else if (absl::StartsWith(rest, "<")) {
      node.op = Comparator::kLt;
      symbol = "<";
    } else if (absl::StartsWith(rest, ">")) {
      node.op = Comparator::kGt;
      symbol = ">";
    } else if (absl::StartsWith(rest, "=")) {
      node.op = Comparator::kEq;
      symbol = "=";
    } else if (absl::StartsWith(rest, ":")) {
      node.op = Comparator::kHas;
      symbol = ":";
    } else {
      std::string hint;
      if (node.field == "and" || node.field == "or" || node.field == "not") {
        hint = " (the keywords AND, OR and NOT are upper case)";
      }
      return Error(absl::StrCat(
          "expected a comparator (=, !=, <, <=, >, >=, :) after field ",
          Quote(node.field), " at position ", op_position, ", found ", Found(),
          hint));
    }
    pos_ += symbol.size();

    SkipSpace();
    auto missing_value = [&] {
      return Error(absl::StrCat("expected a value after \"", symbol,
                                "\" at position ", op_position, ", found ",
                                Found()));
    };
    if (Peek() == '"' || Peek() == '\'') {
      absl::Status s = ParseQuoted(node.value);
      if (!s.ok()) return s;
      node.quoted = true;
    } else if (!AtEnd() && IsBareStart(Peek()) && !AnyKeywordAt()) {
      size_t value_start = pos_;
      while (!AtEnd() && IsBareChar(Peek())) ++pos_;
      node.value = std::string(in_.substr(value_start, pos_ - value_start));
    } else {
      return missing_value();
    }
    return node;
  }

  // A string in double or single quotes, with the escapes \" \' \\ \n \t.
  absl::Status ParseQuoted(std::string& out) {
    char quote = Peek();
    int start = Position();
    ++pos_;
    while (true) {
      if (AtEnd()) {
        return Error(
            absl::StrCat("unterminated string starting at position ", start));
      }
      char c = in_[pos_];
      if (c == quote) {
        ++pos_;
        return absl::OkStatus();
      }
      if (c != '\\') {
        out.push_back(c);
        ++pos_;
        continue;
      }
      if (pos_ + 1 >= in_.size()) {
        return Error(
            absl::StrCat("unterminated string starting at position ", start));
      }
      char e = in_[pos_ + 1];
      switch (e) {
        case '"':
        case '\'':
        case '\\':
          out.push_back(e);
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 't':
          out.push_back('\t');
          break;
        default:
          return Error(absl::StrCat(
              "unknown escape ", Quote(in_.substr(pos_, 2)), " at position ",
              Position(), " (known: \\\" \\' \\\\ \\n \\t)"));
      }
      pos_ += 2;
    }
  }

  absl::string_view in_;
  size_t pos_ = 0;
  int restrictions_ = 0;
};

}  // namespace

absl::StatusOr<FilterNode> ParseFilter(absl::string_view filter) {
  if (filter.size() > static_cast<size_t>(kMaxFilterBytes)) {
    return Error(absl::StrCat("longer than ", kMaxFilterBytes, " bytes (",
                              filter.size(), ")"));
  }
  bool blank = true;
  for (char c : filter) {
    if (!IsSpace(c)) {
      blank = false;
      break;
    }
  }
  if (blank) {
    FilterNode all;
    all.kind = FilterNode::Kind::kAnd;
    return all;
  }
  return Parser(filter).Parse();
}

}  // namespace certplane::aip::internal
