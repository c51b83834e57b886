#include "services/issuance/internal_ca.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "libs/crypto/csr.h"
#include "libs/crypto/issue.h"
#include "libs/crypto/key.h"
#include "libs/status/status_macros.h"

namespace certplane::issuance {
namespace {

namespace vault_v1 = ::certplane::vault::v1;

// Signs through the vault with the CA key `key_name`.
class VaultSigner final : public crypto::Signer {
 public:
  VaultSigner(Peers& peers, std::string key_name, crypto::PublicKey key)
      : peers_(peers), key_name_(std::move(key_name)), key_(std::move(key)) {}
  crypto::PublicKey public_key() const override { return key_; }
  absl::StatusOr<std::string> Sign(absl::string_view data,
                                   absl::string_view digest) const override {
    return peers_.Sign(key_name_, data, digest);
  }

 private:
  Peers& peers_;
  std::string key_name_;
  crypto::PublicKey key_;
};

absl::Time WholeSeconds(absl::Time t) {
  return absl::FromUnixSeconds(absl::ToUnixSeconds(t));
}

// The vault key for one CA certificate (made once; a repeat returns it).
absl::StatusOr<vault_v1::Key> CaKey(Peers& peers,
                                    const v1::IssuerConfig& config,
                                    absl::string_view which,
                                    const InternalCaOptions& options) {
  vault_v1::GenerateKeyRequest request;
  request.mutable_spec()->set_type(config.ca_key_type() ==
                                           common::v1::KEY_TYPE_UNSPECIFIED
                                       ? common::v1::ECDSA_P384
                                       : config.ca_key_type());
  request.set_owner(options.key_owner);
  (*request.mutable_labels())["issuer"] = config.id();
  (*request.mutable_labels())["role"] = std::string(which);
  request.set_request_id(absl::StrCat("issuance:ca:", config.id(), ":", which));
  return peers.GenerateKey(request);
}

crypto::DistinguishedName CaName(const std::string& common_name,
                                 const std::string& fallback) {
  crypto::DistinguishedName name;
  name.attributes.push_back(
      {.type = "O", .oid = "2.5.4.10", .value = "certplane"});
  name.attributes.push_back(
      {.type = "CN",
       .oid = "2.5.4.3",
       .value = common_name.empty() ? fallback : common_name});
  return name;
}

absl::StatusOr<CaRecord> MakeCa(const v1::IssuerConfig& config, Peers& peers,
                                absl::Time now,
                                const InternalCaOptions& options) {
  CERTPLANE_ASSIGN_OR_RETURN(vault_v1::Key root_key,
                             CaKey(peers, config, "root", options));
  CERTPLANE_ASSIGN_OR_RETURN(vault_v1::Key inter_key,
                             CaKey(peers, config, "intermediate", options));
  CERTPLANE_ASSIGN_OR_RETURN(
      crypto::PublicKey root_public,
      crypto::PublicKey::FromPem(root_key.public_key_pem()));
  CERTPLANE_ASSIGN_OR_RETURN(
      crypto::PublicKey inter_public,
      crypto::PublicKey::FromPem(inter_key.public_key_pem()));
  const absl::Time not_before = WholeSeconds(now) - absl::Hours(1);

  VaultSigner root_signer(peers, root_key.name(), root_public);
  crypto::IssueRequest root_request{
      .subject = CaName(config.root_common_name(),
                        absl::StrCat("certplane ", config.id(), " root CA")),
      .public_key = root_public,
      .sans = {}};
  crypto::CertificateProfile root_profile;
  root_profile.not_before = not_before;
  root_profile.not_after = not_before + absl::Hours(24 * 365 * 20);
  root_profile.is_ca = true;
  root_profile.path_length = 1;
  root_profile.key_usage = {"keyCertSign", "cRLSign"};
  CERTPLANE_ASSIGN_OR_RETURN(
      crypto::Certificate root,
      crypto::IssueCertificate(root_request, root_profile, nullptr,
                               root_signer));

  crypto::IssueRequest inter_request{
      .subject = CaName(config.intermediate_common_name(),
                        absl::StrCat("certplane ", config.id(), " issuing CA")),
      .public_key = inter_public,
      .sans = {}};
  crypto::CertificateProfile inter_profile = root_profile;
  inter_profile.not_after = not_before + absl::Hours(24 * 365 * 10);
  inter_profile.path_length = 0;
  CERTPLANE_ASSIGN_OR_RETURN(
      crypto::Certificate intermediate,
      crypto::IssueCertificate(inter_request, inter_profile, &root,
                               root_signer));
  CaRecord record;
  record.issuer_id = config.id();
  record.root_key_name = root_key.name();
  record.root_der = root.der();
  record.intermediate_key_name = inter_key.name();
  record.intermediate_der = intermediate.der();
  record.create_time = now;
  return record;
}

std::string BaseUrl(const v1::IssuerConfig& config) {
  return std::string(absl::StripSuffix(config.crl_base_url(), "/"));
}

}  // namespace

std::string CrlUrl(const v1::IssuerConfig& config) {
  if (config.crl_base_url().empty()) return "";
  return absl::StrCat(BaseUrl(config), "/crl/", config.id(), ".crl");
}

std::string CaCertificateUrl(const v1::IssuerConfig& config) {
  if (config.crl_base_url().empty()) return "";
  return absl::StrCat(BaseUrl(config), "/ca/", config.id(), ".crt");
}

absl::StatusOr<CrlSnapshot> Issuer::Revoke(const std::string&,
                                           const std::string&,
                                           const std::string&, absl::Time) {
  return absl::FailedPreconditionError(absl::StrCat(
      description().name(),
      " does not publish revocations; revoke the certificate at its CA"));
}

absl::StatusOr<CrlSnapshot> Issuer::CurrentCrl(absl::Time) {
  return absl::FailedPreconditionError(
      absl::StrCat(description().name(), " publishes no CRL here"));
}

bool Issuer::Issued(absl::string_view) const { return false; }

absl::StatusOr<std::unique_ptr<InternalCa>> InternalCa::Open(
    const v1::IssuerConfig& config, CaStore& store, Peers& peers,
    absl::Time now, InternalCaOptions options) {
  CERTPLANE_ASSIGN_OR_RETURN(std::optional<CaRecord> stored,
                             store.GetCa(config.id()));
  if (!stored.has_value()) {
    CERTPLANE_ASSIGN_OR_RETURN(CaRecord made,
                               MakeCa(config, peers, now, options));
    CERTPLANE_ASSIGN_OR_RETURN(stored, store.CreateCa(made));
  }
  CERTPLANE_ASSIGN_OR_RETURN(crypto::Certificate root,
                             crypto::Certificate::FromDer(stored->root_der));
  CERTPLANE_ASSIGN_OR_RETURN(
      crypto::Certificate intermediate,
      crypto::Certificate::FromDer(stored->intermediate_der));
  if (!intermediate.IsIssuedBy(root)) {
    return absl::DataLossError(absl::StrCat(
        "issuer ", config.id(),
        ": the stored intermediate is not signed by the stored root"));
  }
  return std::unique_ptr<InternalCa>(new InternalCa(
      config, store, peers, std::move(options), *std::move(stored),
      std::move(root), std::move(intermediate)));
}

InternalCa::InternalCa(const v1::IssuerConfig& config, CaStore& store,
                       Peers& peers, InternalCaOptions options, CaRecord record,
                       crypto::Certificate root,
                       crypto::Certificate intermediate)
    : config_(config),
      store_(store),
      peers_(peers),
      options_(std::move(options)),
      record_(std::move(record)),
      root_(std::move(root)),
      intermediate_(std::move(intermediate)) {
  description_.set_name(absl::StrCat("issuers/", config.id()));
  description_.set_type(v1::INTERNAL_CA);
  description_.set_display_name(config.display_name());
  description_.set_public_trust(config.public_trust());
  description_.set_certificate_pem(intermediate_.ToPem());
  description_.set_root_certificate_pem(root_.ToPem());
  description_.set_crl_url(CrlUrl(config));
}

absl::StatusOr<std::optional<IssuedCertificate>> InternalCa::Submit(
    const CaSubmission& submission) {
  if (submission.validity_days < 1) {
    return absl::InvalidArgumentError("validity_days must be positive");
  }
  CERTPLANE_ASSIGN_OR_RETURN(
      crypto::CertificateRequest csr,
      crypto::CertificateRequest::FromPem(submission.csr_pem));
  crypto::CsrPolicy policy;
  policy.public_trust = config_.public_trust();
  policy.allow_email_sans = !config_.public_trust();
  policy.allow_uri_sans = !config_.public_trust();
  CERTPLANE_RETURN_IF_ERROR(crypto::CheckCsrPolicy(csr, policy));
  CERTPLANE_ASSIGN_OR_RETURN(crypto::IssueRequest request,
                             crypto::IssueRequestFromCsr(csr));

  crypto::CertificateProfile profile;
  profile.not_before = WholeSeconds(submission.now);
  profile.not_after = profile.not_before +
                      absl::Hours(24) * submission.validity_days -
                      absl::Seconds(1);
  if (profile.not_after > intermediate_.info().not_after) {
    return absl::FailedPreconditionError(
        absl::StrCat("issuer ", config_.id(),
                     ": the certificate would outlive the "
                     "issuing CA (notAfter ",
                     absl::FormatTime(intermediate_.info().not_after), ")"));
  }
  profile.key_usage = {"digitalSignature"};
  if (request.public_key.info().algorithm == crypto::KeyAlgorithm::kRsa) {
    profile.key_usage.push_back("keyEncipherment");
  }
  profile.extended_key_usage.assign(
      submission.profile.extended_key_usages().begin(),
      submission.profile.extended_key_usages().end());
  if (const std::string crl = CrlUrl(config_); !crl.empty()) {
    profile.crl_distribution_points.push_back(crl);
    profile.ca_issuer_urls.push_back(CaCertificateUrl(config_));
  }
  VaultSigner signer(peers_, record_.intermediate_key_name,
                     intermediate_.public_key());
  CERTPLANE_ASSIGN_OR_RETURN(
      crypto::Certificate leaf,
      crypto::IssueCertificate(request, profile, &intermediate_, signer));
  return IssuedCertificate{.leaf = std::move(leaf),
                           .chain = {intermediate_, root_}};
}

bool InternalCa::Issued(absl::string_view certificate_der) const {
  absl::StatusOr<crypto::Certificate> cert =
      crypto::Certificate::FromDer(certificate_der);
  return cert.ok() && cert->IsIssuedBy(intermediate_);
}

absl::StatusOr<CrlSnapshot> InternalCa::Publish(absl::Time now) {
  VaultSigner signer(peers_, record_.intermediate_key_name,
                     intermediate_.public_key());
  for (int attempt = 0; attempt < 5; ++attempt) {
    CERTPLANE_ASSIGN_OR_RETURN(std::optional<CaRecord> ca,
                               store_.GetCa(config_.id()));
    if (!ca.has_value()) {
      return absl::DataLossError(
          absl::StrCat("issuer ", config_.id(), ": the CA record is gone"));
    }
    CERTPLANE_ASSIGN_OR_RETURN(std::vector<RevocationRecord> revocations,
                               store_.ListRevocations(config_.id()));
    crypto::CrlRequest request;
    request.crl_number = ca->crl_number + 1;
    request.this_update = WholeSeconds(now);
    request.next_update = request.this_update + options_.crl_validity;
    for (const RevocationRecord& r : revocations) {
      request.revoked.push_back({.serial_hex = r.serial_hex,
                                 .revocation_time = WholeSeconds(r.revoke_time),
                                 .reason = r.reason});
    }
    CERTPLANE_ASSIGN_OR_RETURN(
        std::string der, crypto::IssueCrl(request, intermediate_, signer));
    absl::StatusOr<CaRecord> published =
        store_.PublishCrl(config_.id(), request.crl_number, der,
                          request.this_update, request.next_update);
    if (absl::IsAborted(published.status())) continue;  // A replica won.
    if (!published.ok()) return published.status();
    return CrlSnapshot{.der = std::move(der),
                       .crl_number = request.crl_number,
                       .this_update = request.this_update,
                       .next_update = request.next_update,
                       .revoked_count = static_cast<int>(revocations.size())};
  }
  return absl::AbortedError(absl::StrCat(
      "issuer ", config_.id(), ": CRL publication kept racing other replicas"));
}

absl::StatusOr<CrlSnapshot> InternalCa::Revoke(
    const std::string& serial_hex, const std::string& reason,
    const std::string& certificate_version, absl::Time now) {
  if (crypto::CrlReasonCode(reason) < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "reason: \"", reason,
        "\" is not an RFC 5280 reason (unspecified, keyCompromise, "
        "cACompromise, affiliationChanged, superseded, cessationOfOperation, "
        "certificateHold, privilegeWithdrawn, aACompromise)"));
  }
  CERTPLANE_RETURN_IF_ERROR(
      store_
          .AddRevocation({.issuer_id = config_.id(),
                          .serial_hex = serial_hex,
                          .reason = reason,
                          .revoke_time = now,
                          .certificate_version = certificate_version})
          .status());
  return Publish(now);
}

absl::StatusOr<CrlSnapshot> InternalCa::CurrentCrl(absl::Time now) {
  CERTPLANE_ASSIGN_OR_RETURN(std::optional<CaRecord> ca,
                             store_.GetCa(config_.id()));
  if (ca.has_value() && ca->crl_number > 0 &&
      now < ca->crl_this_update + options_.crl_refresh) {
    CERTPLANE_ASSIGN_OR_RETURN(std::vector<RevocationRecord> revocations,
                               store_.ListRevocations(config_.id()));
    // A revocation recorded but not yet listed (its publisher crashed)
    // makes a new CRL now.
    bool all_listed = true;
    for (const RevocationRecord& r : revocations) {
      if (r.crl_number == 0) all_listed = false;
    }
    if (all_listed) {
      return CrlSnapshot{.der = ca->crl_der,
                         .crl_number = ca->crl_number,
                         .this_update = ca->crl_this_update,
                         .next_update = ca->crl_next_update,
                         .revoked_count = static_cast<int>(revocations.size())};
    }
  }
  return Publish(now);
}

}  // namespace certplane::issuance
