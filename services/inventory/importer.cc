#include "services/inventory/importer.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/crypto/formats.h"

namespace certplane::inventory {
namespace {

// How far up a chain is followed (real chains have 2-4 levels).
constexpr int kMaxChainDepth = 10;

std::string KeyDescription(const crypto::KeyInfo& info) {
  std::string out(crypto::KeyAlgorithmName(info.algorithm));
  if (!info.curve.empty()) {
    absl::StrAppend(&out, " ", info.curve);
  } else if (info.algorithm == crypto::KeyAlgorithm::kRsa) {
    absl::StrAppend(&out, " ", info.bits);
  }
  return out;
}

std::string Quoted(absl::string_view text) {
  return absl::StrCat("'", text, "'");
}

// A file's error as shown to people: the reader's own message, which names
// the problem (empty, truncated, wrong password, not recognised).
absl::Status FileError(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kInvalidArgument ||
      status.code() == absl::StatusCode::kFailedPrecondition ||
      status.code() == absl::StatusCode::kUnimplemented) {
    return status;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("cannot be read: ", status.message()));
}

// Finds issuers: the request's CA certificates first (the leaf's own file
// before the others), then the store's, each checked by signature.
class ChainBuilder {
 public:
  ChainBuilder(const ImportPlan& plan, const CaLookup& lookup)
      : plan_(plan), lookup_(lookup) {}

  absl::Status Complete(ImportedLeaf& leaf) {
    const crypto::Certificate* current = &leaf.certificate;
    std::set<std::string> seen = {leaf.facts.sha256_hex};
    for (int depth = 0; depth < kMaxChainDepth; ++depth) {
      if (current->info().self_signed) {
        leaf.chain_complete = true;
        return absl::OkStatus();
      }
      absl::StatusOr<std::optional<crypto::Certificate>> issuer =
          FindIssuer(*current, leaf.file_index, seen);
      if (!issuer.ok()) return issuer.status();
      if (!issuer->has_value()) return absl::OkStatus();
      seen.insert((*issuer)->info().sha256_fingerprint_hex);
      leaf.chain.push_back(**std::move(issuer));
      current = &leaf.chain.back();
    }
    return absl::OkStatus();
  }

 private:
  absl::StatusOr<std::optional<crypto::Certificate>> FindIssuer(
      const crypto::Certificate& child, size_t file_index,
      const std::set<std::string>& seen) {
    auto usable = [&](const crypto::Certificate& candidate) {
      return candidate.info().subject == child.info().issuer &&
             !seen.contains(candidate.info().sha256_fingerprint_hex) &&
             IsIssuedBy(child, candidate);
    };
    // The leaf's own file, then the others, in request order.
    for (int pass = 0; pass < 2; ++pass) {
      for (size_t f = 0; f < plan_.files.size(); ++f) {
        if ((pass == 0) != (f == file_index)) continue;
        for (const ImportedCertificate& cert : plan_.files[f].certificates) {
          if (cert.is_ca && usable(cert.certificate)) return cert.certificate;
        }
      }
    }
    const std::string issuer_dn = child.info().issuer.ToString();
    auto cached = known_.find(issuer_dn);
    if (cached == known_.end()) {
      absl::StatusOr<std::vector<crypto::Certificate>> found =
          lookup_(issuer_dn);
      if (!found.ok()) return found.status();
      cached = known_.emplace(issuer_dn, *std::move(found)).first;
    }
    // Several stored CAs may share a name (renewed or cross-signed CAs):
    // prefer the one valid longest.
    const crypto::Certificate* best = nullptr;
    for (const crypto::Certificate& candidate : cached->second) {
      if (!candidate.info().is_ca || !usable(candidate)) continue;
      if (best == nullptr ||
          candidate.info().not_after > best->info().not_after) {
        best = &candidate;
      }
    }
    if (best == nullptr) return std::nullopt;
    return *best;
  }

  // child.IsIssuedBy(issuer), remembered for the request: every leaf under
  // one intermediate would otherwise verify the intermediate's signature
  // again, as costly as verifying the leaf.
  bool IsIssuedBy(const crypto::Certificate& child,
                  const crypto::Certificate& issuer) {
    auto key = std::make_pair(child.info().sha256_fingerprint_hex,
                              issuer.info().sha256_fingerprint_hex);
    auto found = verified_.find(key);
    if (found != verified_.end()) return found->second;
    const bool issued = child.IsIssuedBy(issuer);
    if (child.info().is_ca) verified_.emplace(std::move(key), issued);
    return issued;
  }

  const ImportPlan& plan_;
  const CaLookup& lookup_;
  std::map<std::string, std::vector<crypto::Certificate>> known_;
  std::map<std::pair<std::string, std::string>, bool> verified_;
};

}  // namespace

CertificateFacts FactsFromInfo(const crypto::CertificateInfo& info) {
  CertificateFacts facts;
  facts.sha256_hex = info.sha256_fingerprint_hex;
  facts.subject_dn = info.subject.ToString();
  facts.common_name = info.subject.Get("CN");
  facts.issuer_dn = info.issuer.ToString();
  facts.issuer_cn = info.issuer.Get("CN");
  facts.serial_hex = info.serial_hex;
  facts.not_before_us = absl::ToUnixMicros(info.not_before);
  facts.not_after_us = absl::ToUnixMicros(info.not_after);
  facts.key_algorithm =
      std::string(crypto::KeyAlgorithmName(info.key.algorithm));
  facts.key_bits = info.key.bits;
  facts.key_curve = info.key.curve;
  facts.signature_algorithm = info.signature_algorithm;
  for (const crypto::SubjectAltName& san : info.sans) {
    facts.sans.push_back(san.value);
  }
  facts.subject_key_id_hex = info.subject_key_id_hex;
  facts.authority_key_id_hex = info.authority_key_id_hex;
  facts.is_ca = info.is_ca;
  facts.self_signed = info.self_signed;
  return facts;
}

std::string DefaultDisplayName(const crypto::CertificateInfo& info) {
  std::string common_name = info.subject.Get("CN");
  if (!common_name.empty()) return common_name;
  if (!info.sans.empty()) return info.sans.front().value;
  return info.subject.ToString();
}

CaLookup StoreCaLookup(InventoryStore& store) {
  return [&store](absl::string_view subject_dn)
             -> absl::StatusOr<std::vector<crypto::Certificate>> {
    absl::StatusOr<std::vector<CaCertificateRecord>> records =
        store.FindCaBySubject(subject_dn);
    if (!records.ok()) return records.status();
    std::vector<crypto::Certificate> certificates;
    for (const CaCertificateRecord& record : *records) {
      absl::StatusOr<crypto::Certificate> certificate =
          crypto::Certificate::FromDer(record.der);
      if (certificate.ok()) certificates.push_back(*std::move(certificate));
    }
    return certificates;
  };
}

absl::StatusOr<ImportPlan> Analyze(const std::vector<ImportFileInput>& files,
                                   const CaLookup& ca_lookup, absl::Time now) {
  ImportPlan plan;
  // SHA-256 -> index into plan.leaves / plan.ca_certificates.
  std::map<std::string, size_t> leaf_by_sha;
  std::map<std::string, size_t> ca_by_sha;

  for (size_t f = 0; f < files.size(); ++f) {
    const ImportFileInput& input = files[f];
    ImportedFile& file = plan.files.emplace_back();
    file.filename = input.filename;
    if (input.data.empty()) {
      file.status = absl::InvalidArgumentError("the file is empty");
      continue;
    }
    absl::StatusOr<crypto::ParsedBundle> bundle =
        crypto::ReadBundle(input.data, input.password);
    if (!bundle.ok()) {
      file.status = FileError(bundle.status());
      continue;
    }
    file.format = std::string(crypto::FormatName(bundle->format));
    file.notes = std::move(bundle->notes);

    std::map<std::string, size_t> position_in_file;  // SHA-256 -> 1-based.
    for (size_t i = 0; i < bundle->certificates.size(); ++i) {
      crypto::Certificate& certificate = bundle->certificates[i];
      const crypto::CertificateInfo& info = certificate.info();
      auto [repeat, inserted] =
          position_in_file.emplace(info.sha256_fingerprint_hex, i + 1);
      if (!inserted) {
        file.notes.push_back(absl::StrCat(
            "certificate ", i + 1, " ", Quoted(info.subject.ToString()),
            " repeats certificate ", repeat->second, "; read once"));
        continue;
      }
      ImportedCertificate& cert = file.certificates.emplace_back(
          ImportedCertificate{certificate, FactsFromInfo(info), info.is_ca});
      std::map<std::string, size_t>& index =
          info.is_ca ? ca_by_sha : leaf_by_sha;
      auto [first, is_new] = index.emplace(
          info.sha256_fingerprint_hex,
          info.is_ca ? plan.ca_certificates.size() : plan.leaves.size());
      cert.unique_index = first->second;
      cert.first_occurrence = is_new;
      if (!is_new) continue;
      if (info.is_ca) {
        CaCertificateRecord record;
        record.sha256_hex = info.sha256_fingerprint_hex;
        record.der = certificate.der();
        record.facts = cert.facts;
        plan.ca_certificates.push_back(std::move(record));
        continue;
      }
      plan.leaves.push_back(ImportedLeaf{f,
                                         file.certificates.size() - 1,
                                         certificate,
                                         cert.facts,
                                         {},
                                         false,
                                         std::nullopt});
      if (info.not_after < now) {
        file.notes.push_back(
            absl::StrCat(Quoted(info.subject.ToString()), " expired on ",
                         absl::FormatTime(absl::RFC3339_sec, info.not_after,
                                          absl::UTCTimeZone())));
      } else if (info.not_before > now) {
        file.notes.push_back(absl::StrCat(
            Quoted(info.subject.ToString()), " is not valid before ",
            absl::FormatTime(absl::RFC3339_sec, info.not_before,
                             absl::UTCTimeZone())));
      }
    }
    for (crypto::PrivateKey& key : bundle->keys) {
      ImportedKey& imported = plan.keys.emplace_back(
          ImportedKey{std::move(key), f, std::string(), false});
      imported.spki_sha256_hex =
          crypto::HexEncode(imported.key.public_key().SpkiSha256());
    }
  }

  // Keys: the leaf's own file first, then the other files.
  for (ImportedLeaf& leaf : plan.leaves) {
    const std::string& spki = leaf.certificate.info().spki_sha256_hex;
    for (int pass = 0; pass < 2 && !leaf.key_index.has_value(); ++pass) {
      for (size_t k = 0; k < plan.keys.size(); ++k) {
        ImportedKey& key = plan.keys[k];
        if ((pass == 0) != (key.file_index == leaf.file_index)) continue;
        if (key.spki_sha256_hex != spki) continue;
        if (!leaf.certificate.CheckKeyMatches(key.key).ok()) continue;
        leaf.key_index = k;
        key.matches_leaf = true;
        break;
      }
    }
  }
  // Keys that match no leaf stay out of the vault.
  for (size_t k = 0; k < plan.keys.size(); ++k) {
    const ImportedKey& key = plan.keys[k];
    if (key.matches_leaf) continue;
    std::string what =
        absl::StrCat("private key (", KeyDescription(key.key.info()), ")");
    std::string ca_subject;
    for (const ImportedFile& file : plan.files) {
      for (const ImportedCertificate& cert : file.certificates) {
        if (cert.is_ca &&
            cert.certificate.info().spki_sha256_hex == key.spki_sha256_hex) {
          ca_subject = cert.facts.subject_dn;
        }
      }
    }
    ImportedFile& file = plan.files[key.file_index];
    if (!ca_subject.empty()) {
      file.notes.push_back(absl::StrCat(what, " belongs to CA certificate ",
                                        Quoted(ca_subject),
                                        "; CA keys are not imported"));
    } else {
      file.notes.push_back(absl::StrCat(
          what, " matches no certificate in the request; not imported"));
    }
  }

  ChainBuilder chains(plan, ca_lookup);
  for (ImportedLeaf& leaf : plan.leaves) {
    absl::Status status = chains.Complete(leaf);
    if (!status.ok()) {
      return absl::Status(
          status.code(),
          absl::StrCat("looking up CA certificates: ", status.message()));
    }
  }
  return plan;
}

ImportItem MakeImportItem(const ImportPlan& plan, const ImportedLeaf& leaf,
                          const ImportMetadata& metadata,
                          std::string key_name) {
  ImportItem item;
  item.der = leaf.certificate.der();
  item.facts = leaf.facts;
  for (const crypto::Certificate& issuer : leaf.chain) {
    item.chain_sha256.push_back(issuer.info().sha256_fingerprint_hex);
  }
  item.chain_complete = leaf.chain_complete;
  item.key_name = std::move(key_name);
  item.origin = plan.files[leaf.file_index].filename;
  item.display_name = DefaultDisplayName(leaf.certificate.info());
  item.owner = metadata.owner;
  item.environments = metadata.environments;
  std::sort(item.environments.begin(), item.environments.end());
  item.environments.erase(
      std::unique(item.environments.begin(), item.environments.end()),
      item.environments.end());
  item.tags = metadata.tags;
  item.source = metadata.source;
  item.target_certificate_id = metadata.target_certificate_id;
  return item;
}

}  // namespace certplane::inventory
