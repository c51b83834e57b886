#include "services/issuance/order_plan.h"

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "libs/crypto/csr.h"
#include "libs/crypto_proto/crypto_proto.h"
#include "libs/status/status_macros.h"
#include "services/issuance/policy.h"

namespace certplane::issuance {
namespace {

namespace common = ::certplane::common::v1;

constexpr int kMaxSans = 100;
constexpr int kMaxRenewBeforeDays = 3650;

bool IsNameChar(char c) {
  return absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.';
}

absl::Status CheckName(absl::string_view field, absl::string_view value,
                       bool required) {
  if (value.empty()) {
    if (!required) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  }
  if (value.size() > 63 ||
      !std::all_of(value.begin(), value.end(), IsNameChar)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": \"", absl::CHexEscape(value.substr(0, 64)),
                     "\" must be 1-63 letters, digits, '-', '_' or '.'"));
  }
  return absl::OkStatus();
}

bool IsPrintableAscii(absl::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c >= 0x20 && c < 0x7f; });
}

// FNV-1a 64, hex: stable across processes and builds.
std::string HashHex(absl::string_view data) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : data) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  std::string out(16, '0');
  static constexpr char kDigits[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kDigits[hash & 0xf];
    hash >>= 4;
  }
  return out;
}

std::string DeterministicBytes(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);
  message.SerializeToCodedStream(&coded);
  coded.Trim();
  return out;
}

v1::Profile DefaultProfile(const char* name, std::vector<const char*> ekus) {
  v1::Profile p;
  p.set_name(name);
  for (const char* eku : ekus) p.add_extended_key_usages(eku);
  p.set_default_validity_days(90);
  p.set_max_validity_days(397);
  return p;
}

}  // namespace

absl::StatusOr<const v1::IssuerConfig*> FindIssuer(
    const v1::IssuanceConfig& config, absl::string_view name) {
  absl::string_view id = name;
  if (!absl::ConsumePrefix(&id, "issuers/") || id.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("issuer: \"", absl::CHexEscape(name.substr(0, 64)),
                     "\" is not an issuer name (\"issuers/{id}\")"));
  }
  for (const v1::IssuerConfig& issuer : config.issuers()) {
    if (issuer.id() == id) return &issuer;
  }
  return absl::NotFoundError(absl::StrCat("issuer: ", name, " does not exist"));
}

std::vector<v1::Profile> IssuerProfiles(const v1::IssuerConfig& issuer) {
  if (issuer.profiles_size() > 0) {
    return {issuer.profiles().begin(), issuer.profiles().end()};
  }
  return {DefaultProfile("tls-server", {"serverAuth"}),
          DefaultProfile("tls-client", {"clientAuth"}),
          DefaultProfile("tls-server-client", {"serverAuth", "clientAuth"})};
}

absl::StatusOr<PlannedOrder> PlanNewOrder(const v1::CreateOrderRequest& request,
                                          const v1::IssuanceConfig& config,
                                          absl::string_view requester,
                                          absl::Time now) {
  CERTPLANE_ASSIGN_OR_RETURN(const v1::IssuerConfig* issuer,
                             FindIssuer(config, request.issuer()));
  if (request.reuse_key()) {
    return absl::InvalidArgumentError(
        "reuse_key: only renewals keep their key (RenewCertificate)");
  }
  CERTPLANE_RETURN_IF_ERROR(CheckName("owner", request.owner(), true));
  CERTPLANE_RETURN_IF_ERROR(
      CheckName("environment", request.environment(), false));
  if (request.display_name().size() > 256) {
    return absl::InvalidArgumentError("display_name: at most 256 bytes");
  }
  if (request.request_id().size() > 128 ||
      !IsPrintableAscii(request.request_id())) {
    return absl::InvalidArgumentError(
        "request_id: at most 128 printable ASCII characters");
  }
  if (request.renew_before_days() < 0 ||
      request.renew_before_days() > kMaxRenewBeforeDays) {
    return absl::InvalidArgumentError(
        absl::StrCat("renew_before_days: ", request.renew_before_days(),
                     " is outside [0, ", kMaxRenewBeforeDays, "]"));
  }

  // Profile and key type.
  const std::vector<v1::Profile> profiles = IssuerProfiles(*issuer);
  std::string profile_name = request.profile();
  if (profile_name.empty()) {
    profile_name = issuer->default_profile().empty()
                       ? profiles.front().name()
                       : issuer->default_profile();
  }
  auto profile = std::find_if(
      profiles.begin(), profiles.end(),
      [&](const v1::Profile& p) { return p.name() == profile_name; });
  if (profile == profiles.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("profile: \"", absl::CHexEscape(profile_name),
                     "\" is not a profile of ", request.issuer()));
  }
  CERTPLANE_RETURN_IF_ERROR(
      crypto_proto::KeyTypeFromProto(request.key_spec().type(), "key_spec.type")
          .status());
  if (profile->allowed_key_types_size() > 0 &&
      std::find(profile->allowed_key_types().begin(),
                profile->allowed_key_types().end(),
                request.key_spec().type()) ==
          profile->allowed_key_types().end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key_spec.type: ", common::KeyType_Name(request.key_spec().type()),
        " is not allowed by profile ", profile_name));
  }
  if (issuer->public_trust() && request.key_spec().type() == common::ED25519) {
    return absl::FailedPreconditionError(
        "key_spec.type: the Baseline Requirements do not allow Ed25519 keys "
        "in publicly trusted certificates");
  }

  // Subject and SANs.
  CERTPLANE_ASSIGN_OR_RETURN(
      crypto::DistinguishedName subject,
      crypto_proto::DistinguishedNameFromProto(request.subject(), "subject"));
  CERTPLANE_RETURN_IF_ERROR(crypto::CheckSingleCommonName(subject));
  CERTPLANE_ASSIGN_OR_RETURN(
      std::vector<crypto::SubjectAltName> sans,
      crypto_proto::SubjectAltNamesFromProto(request.sans(), "sans"));
  if (sans.empty()) {
    return absl::InvalidArgumentError(
        "sans: at least one subject alternative name is required");
  }
  if (sans.size() > static_cast<size_t>(kMaxSans)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sans: at most ", kMaxSans, " names"));
  }
  std::set<std::string> seen;
  std::vector<std::string> dns_names;
  std::vector<std::string> san_values;
  for (size_t i = 0; i < sans.size(); ++i) {
    if (absl::Status s = crypto::ValidateSan(sans[i]); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sans[", i, "]: ", s.message()));
    }
    const std::string key = absl::AsciiStrToLower(sans[i].value);
    if (!seen.insert(key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("sans[", i, "]: ", sans[i].value, " is repeated"));
    }
    if (sans[i].type == crypto::SanType::kDns) dns_names.push_back(key);
    san_values.push_back(sans[i].value);
  }
  const std::string common_name = subject.Get("CN");
  if (!common_name.empty() &&
      !seen.contains(absl::AsciiStrToLower(common_name))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "subject: the common name ", common_name,
        " must also be one of the SANs (Baseline Requirements 7.1.4.3)"));
  }

  // Policy.
  const ApprovalDecision approval =
      DecideApproval(config, issuer->id(), request.owner());
  CERTPLANE_RETURN_IF_ERROR(
      CheckDomainsAllowed(approval, request.owner(), dns_names));
  CERTPLANE_ASSIGN_OR_RETURN(
      int validity_days, ResolveValidityDays(request.validity_days(), *profile,
                                             issuer->public_trust(), now));

  PlannedOrder plan;
  plan.spec = request;
  plan.spec.set_profile(profile_name);
  plan.spec.set_validity_days(validity_days);
  plan.spec.clear_request_id();
  plan.spec.clear_validate_only();
  plan.spec.clear_wait();
  OrderRecord& r = plan.record;
  r.state = approval.auto_approve ? kApproved : kPendingApproval;
  r.reason = "new";
  r.issuer_id = issuer->id();
  r.owner = request.owner();
  r.environment = request.environment();
  r.requester = std::string(requester);
  r.common_name = common_name;
  r.sans = std::move(san_values);
  r.spec = DeterministicBytes(plan.spec);
  r.request_id = request.request_id();
  r.request_hash = HashHex(r.spec);
  r.required_approvals = approval.required_approvals;
  r.next_attempt_time = now;
  return plan;
}

namespace {

// The KeySpec of an existing key, for renewing with a new key of the same
// kind.
::certplane::common::v1::KeyType KeyTypeOf(
    const ::certplane::common::v1::KeyInfo& key) {
  switch (key.algorithm()) {
    case ::certplane::common::v1::RSA:
      if (key.bits() >= 4096) return ::certplane::common::v1::RSA_4096;
      if (key.bits() >= 3072) return ::certplane::common::v1::RSA_3072;
      return ::certplane::common::v1::RSA_2048;
    case ::certplane::common::v1::ECDSA:
      return key.curve() == "P-384" || key.curve() == "P-521"
                 ? ::certplane::common::v1::ECDSA_P384
                 : ::certplane::common::v1::ECDSA_P256;
    case ::certplane::common::v1::ED25519:
      return ::certplane::common::v1::ED25519;
    default:
      return ::certplane::common::v1::KEY_TYPE_UNSPECIFIED;
  }
}

}  // namespace

absl::StatusOr<PlannedOrder> PlanRenewal(
    const inventory::v1::ManagedCertificate& certificate,
    const v1::IssuanceConfig& config, absl::string_view requester,
    absl::string_view request_id, absl::Time now) {
  const std::string& name = certificate.name();
  if (certificate.has_delete_time()) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, " is deleted; it is not renewed"));
  }
  if (!certificate.has_current_version()) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, " has no version yet; there is nothing to renew"));
  }
  const inventory::v1::DesiredState& desired = certificate.desired();
  const ::certplane::common::v1::CertificateDetails& current =
      certificate.current_version().details();
  if (desired.issuer().empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        name,
        " has no issuer to renew with: set desired.issuer (imported "
        "certificates are renewed only once someone chooses their CA)"));
  }
  v1::CreateOrderRequest request;
  *request.mutable_subject() =
      desired.has_subject() ? desired.subject() : current.subject();
  if (desired.sans_size() > 0) {
    *request.mutable_sans() = desired.sans();
  } else {
    *request.mutable_sans() = current.sans();
  }
  if (desired.key_spec().type() !=
      ::certplane::common::v1::KEY_TYPE_UNSPECIFIED) {
    *request.mutable_key_spec() = desired.key_spec();
  } else {
    request.mutable_key_spec()->set_type(KeyTypeOf(current.key()));
  }
  request.set_issuer(desired.issuer());
  request.set_validity_days(desired.validity_days());
  request.set_owner(certificate.owner());
  if (certificate.environments_size() > 0) {
    request.set_environment(certificate.environments(0));
  }
  request.set_display_name(certificate.display_name());
  request.set_auto_renew(certificate.renewal().auto_renew());
  request.set_renew_before_days(certificate.renewal().renew_before_days());
  request.set_request_id(std::string(request_id));
  const bool reuse_key = certificate.renewal().reuse_key();
  const std::string& key_name = certificate.current_version().key_name();
  if (reuse_key && key_name.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        name,
        " is set to renew with its current key (renewal.reuse_key), "
        "but its current version has no key in the vault"));
  }
  absl::StatusOr<PlannedOrder> plan =
      PlanNewOrder(request, config, requester, now);
  if (!plan.ok()) {
    return absl::Status(
        plan.status().code(),
        absl::StrCat("renewing ", name, ": ", plan.status().message()));
  }
  plan->spec.set_reuse_key(reuse_key);
  OrderRecord& r = plan->record;
  r.spec = DeterministicBytes(plan->spec);
  r.request_hash = HashHex(r.spec);
  r.state = kApproved;
  r.reason = "renewal";
  r.required_approvals = 0;
  r.renewal_of = certificate.certificate_id();
  r.certificate_id = certificate.certificate_id();
  if (reuse_key) r.key_name = key_name;
  return plan;
}

}  // namespace certplane::issuance
