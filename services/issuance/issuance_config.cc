#include "services/issuance/issuance_config.h"

#include <set>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "libs/status/status_macros.h"
#include "services/issuance/order_plan.h"

namespace certplane::issuance {
namespace {

constexpr absl::string_view kKnownEkus[] = {"serverAuth",   "clientAuth",
                                            "codeSigning",  "emailProtection",
                                            "timeStamping", "OCSPSigning"};

bool ValidId(absl::string_view id) {
  if (id.empty() || id.size() > 63) return false;
  for (char c : id) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-') {
      return false;
    }
  }
  return true;
}

class ErrorCollector final : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (first_.empty()) {
      first_ = absl::StrCat("line ", line + 1, ", column ", column + 1, ": ",
                            message);
    }
  }
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

}  // namespace

absl::Status ValidateConfig(const v1::IssuanceConfig& config) {
  std::set<std::string> ids;
  for (int i = 0; i < config.issuers_size(); ++i) {
    const v1::IssuerConfig& issuer = config.issuers(i);
    const std::string where = absl::StrCat("issuers[", i, "]");
    if (!ValidId(issuer.id())) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".id: \"", issuer.id(),
                       "\" must be 1-63 lowercase letters, digits and '-'"));
    }
    if (!ids.insert(issuer.id()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".id: ", issuer.id(), " is repeated"));
    }
    if (issuer.type() != v1::INTERNAL_CA &&
        issuer.type() != v1::EXTERNAL_UPLOAD) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".type: set INTERNAL_CA or EXTERNAL_UPLOAD"));
    }
    if (!issuer.crl_base_url().empty() &&
        !absl::StartsWith(issuer.crl_base_url(), "http://") &&
        !absl::StartsWith(issuer.crl_base_url(), "https://")) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".crl_base_url: must start with http:// or https://"));
    }
    std::set<std::string> profiles;
    for (int j = 0; j < issuer.profiles_size(); ++j) {
      const v1::Profile& p = issuer.profiles(j);
      const std::string pw = absl::StrCat(where, ".profiles[", j, "]");
      if (!ValidId(p.name()) || !profiles.insert(p.name()).second) {
        return absl::InvalidArgumentError(absl::StrCat(
            pw, ".name: \"", p.name(), "\" is empty, malformed or repeated"));
      }
      for (const std::string& eku : p.extended_key_usages()) {
        if (std::find(std::begin(kKnownEkus), std::end(kKnownEkus), eku) ==
            std::end(kKnownEkus)) {
          return absl::InvalidArgumentError(
              absl::StrCat(pw, ".extended_key_usages: unknown \"", eku, "\""));
        }
      }
      if (p.max_validity_days() < 1 || p.default_validity_days() < 1 ||
          p.default_validity_days() > p.max_validity_days()) {
        return absl::InvalidArgumentError(absl::StrCat(
            pw,
            ": default_validity_days and max_validity_days must be "
            "positive, the default at most the maximum"));
      }
    }
    if (!issuer.default_profile().empty()) {
      bool found = false;
      for (const v1::Profile& p : IssuerProfiles(issuer)) {
        found = found || p.name() == issuer.default_profile();
      }
      if (!found) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".default_profile: ", issuer.default_profile(),
                         " is not one of the issuer's profiles"));
      }
    }
  }
  std::set<std::pair<std::string, std::string>> rules;
  for (int i = 0; i < config.approval_rules_size(); ++i) {
    const v1::ApprovalRule& rule = config.approval_rules(i);
    const std::string where = absl::StrCat("approval_rules[", i, "]");
    if (!rule.issuer().empty() && !ids.contains(rule.issuer())) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".issuer: ", rule.issuer(), " is not a configured issuer"));
    }
    if (rule.required_approvals() < 0 || rule.required_approvals() > 10) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".required_approvals: must be 0-10"));
    }
    if (!rules.insert({rule.issuer(), rule.team()}).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": a second rule for issuer \"", rule.issuer(),
                       "\" and team \"", rule.team(), "\""));
    }
  }
  return ServiceRoles(config).status();
}

absl::StatusOr<absl::flat_hash_map<std::string, std::vector<RoleGrant>>>
ServiceRoles(const v1::IssuanceConfig& config) {
  absl::flat_hash_map<std::string, std::vector<RoleGrant>> out;
  for (int i = 0; i < config.role_grants_size(); ++i) {
    const v1::RoleGrantConfig& grant = config.role_grants(i);
    if (grant.identity().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("role_grants[", i, "].identity: required"));
    }
    absl::StatusOr<std::vector<RoleGrant>> roles = server::ParseRoles(grant.roles());
    if (!roles.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "role_grants[", i, "].roles: ", roles.status().message()));
    }
    auto& list = out[grant.identity()];
    list.insert(list.end(), roles->begin(), roles->end());
  }
  return out;
}

absl::StatusOr<v1::IssuanceConfig> ParseConfig(absl::string_view text,
                                               absl::string_view source) {
  v1::IssuanceConfig config;
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(std::string(text), &config)) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": ", errors.first()));
  }
  if (absl::Status s = ValidateConfig(config); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", s.message()));
  }
  return config;
}

v1::IssuanceConfig DefaultConfig(const std::string& crl_base_url) {
  v1::IssuanceConfig config;
  v1::IssuerConfig& internal = *config.add_issuers();
  internal.set_id("internal");
  internal.set_type(v1::INTERNAL_CA);
  internal.set_display_name("certplane internal CA");
  internal.set_crl_base_url(crl_base_url);
  v1::IssuerConfig& external = *config.add_issuers();
  external.set_id("external");
  external.set_type(v1::EXTERNAL_UPLOAD);
  external.set_display_name("External CA (CSR download, certificate upload)");
  external.set_public_trust(true);
  return config;
}

absl::StatusOr<IssuerMap> BuildIssuers(const v1::IssuanceConfig& config,
                                       CaStore& cas, Peers& peers,
                                       absl::Time now,
                                       InternalCaOptions ca_options) {
  IssuerMap issuers;
  for (const v1::IssuerConfig& c : config.issuers()) {
    if (c.type() == v1::INTERNAL_CA) {
      absl::StatusOr<std::unique_ptr<InternalCa>> ca =
          InternalCa::Open(c, cas, peers, now, ca_options);
      if (!ca.ok()) {
        return absl::Status(
            ca.status().code(),
            absl::StrCat("issuer ", c.id(), ": ", ca.status().message()));
      }
      issuers[c.id()] = *std::move(ca);
    } else {
      v1::Issuer description;
      description.set_name(absl::StrCat("issuers/", c.id()));
      description.set_type(c.type());
      description.set_display_name(c.display_name());
      description.set_public_trust(c.public_trust());
      issuers[c.id()] = std::make_unique<UploadIssuer>(std::move(description));
    }
  }
  return issuers;
}

}  // namespace certplane::issuance
