#include "libs/crypto/chain.h"

#include <openssl/x509.h>

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "libs/crypto/internal/ssl_util.h"

namespace certplane::crypto {

using internal::SslInternal;
using internal::SslPtr;
using internal::X509StackPtr;

namespace {

std::string Quoted(const DistinguishedName& name) {
  std::string text = name.ToString();
  return text.empty() ? "(empty name)" : absl::StrCat("'", text, "'");
}

std::string Subject(const Certificate& certificate) {
  return Quoted(certificate.info().subject);
}

std::string Issuer(const Certificate& certificate) {
  return Quoted(certificate.info().issuer);
}

// "certificate 2 'CN=Int CA'" (1-based, as people count).
std::string Position(size_t index, const Certificate& certificate) {
  return absl::StrCat("certificate ", index + 1, " ", Subject(certificate));
}

std::string TimeText(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", time, absl::UTCTimeZone());
}

// The issuer name of `child` equals the subject name of `parent`.
bool NamesChain(const Certificate& child, const Certificate& parent) {
  return X509_NAME_cmp(X509_get_issuer_name(child.native()),
                       X509_get_subject_name(parent.native())) == 0;
}

std::string NamesOf(const Certificate& certificate) {
  const CertificateInfo& info = certificate.info();
  if (info.sans.empty()) {
    return absl::StrCat("it has no subject alternative names and its CN is '",
                        info.subject.Get("CN"), "'");
  }
  std::vector<std::string> names;
  for (const SubjectAltName& san : info.sans) {
    names.push_back(absl::StrCat(SanTypeName(san.type), ":", san.value));
  }
  return absl::StrCat("its names are ", absl::StrJoin(names, ", "));
}

// One step of the pre-checks: what issues presented[i].
absl::Status CheckIssuer(absl::Span<const Certificate> presented, size_t i,
                         const TrustStore& roots) {
  const Certificate& child = presented[i];
  if (i + 1 < presented.size()) {
    const Certificate& next = presented[i + 1];
    if (child.IsIssuedBy(next)) return absl::OkStatus();
    if (NamesChain(child, next)) {
      return absl::InvalidArgumentError(absl::StrCat(
          Position(i + 1, next), " has the name of the issuer of ",
          Position(i, child),
          " but its key does not verify that certificate's signature "
          "(mismatched issuer: same name, different key)"));
    }
    for (size_t k = 0; k < presented.size(); ++k) {
      if (k != i && k != i + 1 && child.IsIssuedBy(presented[k])) {
        return absl::InvalidArgumentError(absl::StrCat(
            Position(i + 1, next), " is not the issuer of ", Position(i, child),
            "; its issuer ", Issuer(child), " is certificate ", k + 1,
            ": the chain is misordered (present it leaf first, each "
            "certificate followed by its issuer)"));
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "no issuer found for ", Subject(child), " (issuer ", Issuer(child),
        "): ", Position(i + 1, next),
        " is not its issuer and no presented "
        "or trusted certificate is; the chain is incomplete (an intermediate "
        "is missing)"));
  }
  for (const Certificate& root : roots.roots()) {
    if (NamesChain(child, root)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "trust store certificate ", Subject(root),
          " has the name of the "
          "issuer of ",
          Position(i, child),
          " but its key does not verify that certificate's signature "
          "(mismatched issuer: same name, different key)"));
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "no issuer found for ", Subject(child), " (issuer ", Issuer(child),
      ") among the presented certificates or the trust store: the chain is "
      "incomplete (an intermediate is missing) or its root is not trusted"));
}

absl::Status CheckValidity(const Certificate& certificate,
                           absl::string_view label, absl::Time at) {
  const CertificateInfo& info = certificate.info();
  if (at > info.not_after) {
    return absl::FailedPreconditionError(absl::StrCat(
        label, " expired at ", TimeText(info.not_after),
        " (notAfter), before the verification time ", TimeText(at)));
  }
  if (at < info.not_before) {
    return absl::FailedPreconditionError(absl::StrCat(
        label, " is not valid until ", TimeText(info.not_before),
        " (notBefore), after the verification time ", TimeText(at)));
  }
  return absl::OkStatus();
}

// The library's path validation, as the final word.
absl::Status VerifyWithLibrary(absl::Span<const Certificate> presented,
                               const TrustStore& roots, absl::Time at) {
  SslPtr<X509_STORE> store(X509_STORE_new());
  if (store == nullptr) return SslInternal("X509_STORE_new");
  for (const Certificate& root : roots.roots()) {
    if (!X509_STORE_add_cert(store.get(), root.native())) {
      return SslInternal("X509_STORE_add_cert");
    }
  }
  X509StackPtr untrusted(sk_X509_new_null());
  if (untrusted == nullptr) return SslInternal("sk_X509_new_null");
  for (size_t i = 1; i < presented.size(); ++i) {
    X509* x509 = presented[i].native();
    X509_up_ref(x509);
    if (!sk_X509_push(untrusted.get(), x509)) {
      X509_free(x509);
      return SslInternal("sk_X509_push");
    }
  }
  SslPtr<X509_STORE_CTX> context(X509_STORE_CTX_new());
  if (context == nullptr) return SslInternal("X509_STORE_CTX_new");
  if (!X509_STORE_CTX_init(context.get(), store.get(), presented[0].native(),
                           untrusted.get())) {
    return SslInternal("X509_STORE_CTX_init");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(context.get());
  if (param == nullptr) return SslInternal("X509_STORE_CTX_get0_param");
  X509_VERIFY_PARAM_set_time(param, absl::ToTimeT(at));
  // Trust anchors need not be self-signed (see TrustStore).
  if (!X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN)) {
    return SslInternal("X509_VERIFY_PARAM_set_flags");
  }
  if (X509_verify_cert(context.get()) == 1) {
    internal::ClearSslErrors();
    return absl::OkStatus();
  }
  int error = X509_STORE_CTX_get_error(context.get());
  int depth = X509_STORE_CTX_get_error_depth(context.get());
  X509* current = X509_STORE_CTX_get_current_cert(context.get());
  std::string which = absl::StrCat("the certificate at depth ", depth);
  if (current != nullptr) {
    for (size_t i = 0; i < presented.size(); ++i) {
      if (X509_cmp(current, presented[i].native()) == 0) {
        which = Position(i, presented[i]);
      }
    }
    for (const Certificate& root : roots.roots()) {
      if (X509_cmp(current, root.native()) == 0) {
        which = absl::StrCat("trust store certificate ", Subject(root));
      }
    }
  }
  internal::ClearSslErrors();
  return absl::InvalidArgumentError(
      absl::StrCat("chain verification failed at ", which, ": ",
                   X509_verify_cert_error_string(error),
                   " (X509_verify_cert error ", error, ")"));
}

}  // namespace

absl::StatusOr<OrderedChain> OrderChain(std::vector<Certificate> bag) {
  if (bag.size() > kMaxChainCertificates) {
    return absl::InvalidArgumentError(
        absl::StrCat("too many certificates in one chain (", bag.size(), " > ",
                     kMaxChainCertificates, ")"));
  }
  std::vector<Certificate> certificates;
  for (Certificate& certificate : bag) {
    if (std::find(certificates.begin(), certificates.end(), certificate) ==
        certificates.end()) {
      certificates.push_back(std::move(certificate));
    }
  }
  if (certificates.empty()) {
    return absl::InvalidArgumentError("no certificates to order");
  }
  const size_t count = certificates.size();
  // issuers[i]: every j (j != i) whose key signed certificate i.
  std::vector<std::vector<size_t>> issuers(count);
  std::vector<bool> issues_another(count, false);
  for (size_t i = 0; i < count; ++i) {
    for (size_t j = 0; j < count; ++j) {
      if (i != j && certificates[i].IsIssuedBy(certificates[j])) {
        issuers[i].push_back(j);
        issues_another[j] = true;
      }
    }
  }
  std::vector<size_t> ends;
  std::vector<size_t> leaves;
  for (size_t i = 0; i < count; ++i) {
    if (issues_another[i]) continue;
    ends.push_back(i);
    if (!certificates[i].info().is_ca) leaves.push_back(i);
  }
  auto subjects = [&](const std::vector<size_t>& indices) {
    std::vector<std::string> names;
    for (size_t i : indices) names.push_back(Subject(certificates[i]));
    return absl::StrJoin(names, ", ");
  };
  size_t leaf = 0;
  if (leaves.size() > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the certificates hold ", leaves.size(), " unrelated leaves (",
        subjects(leaves), "); give one chain per leaf"));
  } else if (leaves.size() == 1) {
    leaf = leaves[0];
  } else if (ends.size() == 1) {
    leaf = ends[0];
  } else if (ends.empty()) {
    return absl::InvalidArgumentError(
        "cannot find a leaf: every certificate issues another one "
        "(cross-signed certificates in a loop?)");
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot tell which certificate is the leaf: ", ends.size(),
        " CA certificates issue no other certificate (", subjects(ends), ")"));
  }

  std::vector<size_t> path = {leaf};
  std::vector<bool> on_path(count, false);
  on_path[leaf] = true;
  for (size_t current = leaf;;) {
    auto next = std::find_if(issuers[current].begin(), issuers[current].end(),
                             [&](size_t j) { return !on_path[j]; });
    if (next == issuers[current].end()) break;
    current = *next;
    on_path[current] = true;
    path.push_back(current);
  }

  OrderedChain out;
  std::vector<size_t> bag_order;  // Path members in the order given.
  for (size_t i = 0; i < count; ++i) {
    if (on_path[i]) bag_order.push_back(i);
  }
  out.was_reordered = bag_order != path;
  for (size_t i : path) out.certificates.push_back(certificates[i]);
  out.root_included = out.certificates.back().info().self_signed;
  for (size_t i = 0; i < count; ++i) {
    if (!on_path[i]) out.unrelated.push_back(certificates[i]);
  }
  return out;
}

absl::StatusOr<TrustStore> TrustStore::Create(std::vector<Certificate> roots) {
  std::vector<Certificate> unique;
  for (Certificate& root : roots) {
    if (std::find(unique.begin(), unique.end(), root) == unique.end()) {
      unique.push_back(std::move(root));
    }
  }
  if (unique.empty()) {
    return absl::InvalidArgumentError(
        "a trust store needs at least one root certificate");
  }
  return TrustStore(std::move(unique));
}

bool TrustStore::Contains(const Certificate& certificate) const {
  return std::find(roots_.begin(), roots_.end(), certificate) != roots_.end();
}

absl::Status VerifyChain(absl::Span<const Certificate> presented,
                         const TrustStore& roots, absl::Time at,
                         std::optional<absl::string_view> hostname) {
  if (presented.empty()) {
    return absl::InvalidArgumentError("the chain holds no certificates");
  }
  // Walk the chain as presented until it reaches a trust anchor, naming the
  // first link that is missing, misordered or mismatched.
  std::vector<std::pair<std::string, const Certificate*>> path;
  size_t anchored_at = 0;  // Index of the last presented certificate used.
  for (size_t i = 0; i < presented.size(); ++i) {
    const Certificate& certificate = presented[i];
    anchored_at = i;
    path.emplace_back(Position(i, certificate), &certificate);
    if (roots.Contains(certificate)) break;
    auto root = std::find_if(
        roots.roots().begin(), roots.roots().end(),
        [&](const Certificate& r) { return certificate.IsIssuedBy(r); });
    if (root != roots.roots().end()) {
      path.emplace_back(
          absl::StrCat("trust store certificate ", Subject(*root)), &*root);
      break;
    }
    if (certificate.info().self_signed) {
      return absl::InvalidArgumentError(
          absl::StrCat(Position(i, certificate),
                       " is a self-signed root that is not in the trust store "
                       "(untrusted root)"));
    }
    if (absl::Status status = CheckIssuer(presented, i, roots); !status.ok()) {
      return status;
    }
  }
  // Certificates after the anchor are ignored (as TLS clients do) unless one
  // of them belongs below a certificate already on the path: then the chain
  // was presented out of order.
  for (size_t k = anchored_at + 1; k < presented.size(); ++k) {
    for (size_t j = 0; j <= anchored_at; ++j) {
      if (presented[k] != presented[j] &&
          presented[k].IsIssuedBy(presented[j])) {
        return absl::InvalidArgumentError(absl::StrCat(
            Position(k, presented[k]), " is issued by ",
            Position(j, presented[j]),
            " but comes after it: the chain is misordered (present it leaf "
            "first, each certificate followed by its issuer)"));
      }
    }
  }
  for (const auto& [label, certificate] : path) {
    if (absl::Status status = CheckValidity(*certificate, label, at);
        !status.ok()) {
      return status;
    }
  }
  if (hostname.has_value() && !presented[0].MatchesHostname(*hostname)) {
    return absl::InvalidArgumentError(
        absl::StrCat(Position(0, presented[0]), " does not match hostname '",
                     *hostname, "'; ", NamesOf(presented[0])));
  }
  return VerifyWithLibrary(presented, roots, at);
}

}  // namespace certplane::crypto
