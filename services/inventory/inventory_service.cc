#include "services/inventory/inventory_service.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "grpcpp/grpcpp.h"
#include "libs/crypto/certificate.h"
#include "libs/crypto/ecies.h"
#include "libs/crypto/formats.h"
#include "libs/crypto/key.h"
#include "libs/crypto/secret_bytes.h"
#include "libs/crypto_proto/crypto_proto.h"
#include "libs/server/caller.h"
#include "libs/server/client.h"
#include "libs/server/peer_identity.h"
#include "libs/status/grpc_status.h"
#include "libs/status/status_macros.h"
#include "services/inventory/importer.h"

namespace certplane::inventory {
namespace {

namespace vault_v1 = ::certplane::vault::v1;

constexpr char kDevelopmentIdentityHeader[] = "x-certplane-dev-identity";
constexpr char kCertificatesPrefix[] = "certificates/";
constexpr char kCaCertificatesPrefix[] = "caCertificates/";
constexpr char kVersionsInfix[] = "/versions/";
constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;
constexpr size_t kMinExportPasswordCharacters = 12;
constexpr size_t kMaxRequestIdLength = 128;

// RFC 5280 CRLReason names.
constexpr const char* kRevocationReasons[] = {
    "unspecified",        "keyCompromise", "cACompromise",
    "affiliationChanged", "superseded",    "cessationOfOperation",
    "certificateHold",    "removeFromCRL", "privilegeWithdrawn",
    "aACompromise"};

std::string Quote(absl::string_view text) {
  return absl::StrCat("\"", text, "\"");
}

bool IsPrintableAscii(absl::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c >= 0x20 && c < 0x7f; });
}

bool IsLowerHex(absl::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return absl::ascii_isdigit(c) || (c >= 'a' && c <= 'f');
  });
}

size_t Utf8Characters(absl::string_view text) {
  return static_cast<size_t>(std::count_if(
      text.begin(), text.end(),
      [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
}

// Overwrites a std::string that held key material (a protobuf field) before
// it is freed. Through a volatile pointer, so the stores are not elided.
void WipeString(std::string* text) {
  volatile char* bytes = text->data();
  for (size_t i = 0; i < text->size(); ++i) bytes[i] = 0;
  text->clear();
}

// ---------------------------------------------------------------------------
// Names.

bool IsCertificateId(absl::string_view id) {
  return id.size() == 33 && id[0] == 'c' && IsLowerHex(id.substr(1));
}

std::string CertificateName(absl::string_view id) {
  return absl::StrCat(kCertificatesPrefix, id);
}

std::string VersionName(absl::string_view id, int64_t version) {
  return absl::StrCat(kCertificatesPrefix, id, kVersionsInfix, version);
}

absl::StatusOr<std::string> ParseCertificateName(absl::string_view field,
                                                 absl::string_view name) {
  if (name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": required, as certificates/{certificate_id}"));
  }
  absl::string_view id = name;
  if (!absl::ConsumePrefix(&id, kCertificatesPrefix) || !IsCertificateId(id)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": ", Quote(name),
        " is not a certificate name; expected certificates/{certificate_id} "
        "where certificate_id is \"c\" and 32 lowercase hex digits"));
  }
  return std::string(id);
}

struct VersionRef {
  std::string certificate_id;
  int64_t version = 0;
};

// "certificates/{id}/versions/{n}"; nullopt when `name` has no
// "/versions/" part (then it may be a certificate name).
absl::StatusOr<std::optional<VersionRef>> ParseMaybeVersionName(
    absl::string_view field, absl::string_view name) {
  size_t at = name.find(kVersionsInfix);
  if (at == absl::string_view::npos) return std::nullopt;
  CERTPLANE_ASSIGN_OR_RETURN(std::string id,
                             ParseCertificateName(field, name.substr(0, at)));
  absl::string_view number = name.substr(at + sizeof(kVersionsInfix) - 1);
  int64_t version = 0;
  if (number.empty() ||
      !std::all_of(number.begin(), number.end(), absl::ascii_isdigit) ||
      !absl::SimpleAtoi(number, &version) || version < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", Quote(name),
                     " is not a version name; expected "
                     "certificates/{certificate_id}/versions/{n} with n >= 1"));
  }
  return VersionRef{std::move(id), version};
}

absl::StatusOr<VersionRef> ParseVersionName(absl::string_view field,
                                            absl::string_view name) {
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": required, as certificates/{certificate_id}/versions/{n}"));
  }
  CERTPLANE_ASSIGN_OR_RETURN(std::optional<VersionRef> ref,
                             ParseMaybeVersionName(field, name));
  if (!ref.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", Quote(name),
                     " is not a version name; expected "
                     "certificates/{certificate_id}/versions/{n}"));
  }
  return *std::move(ref);
}

absl::Status ValidateKeyName(absl::string_view field, absl::string_view name) {
  absl::string_view id = name;
  if (!absl::ConsumePrefix(&id, "keys/") || id.size() != 33 || id[0] != 'k' ||
      !IsLowerHex(id.substr(1))) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": ", Quote(name),
        " is not a vault key name; expected keys/{key_id} where key_id is "
        "\"k\" and 32 lowercase hex digits"));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Metadata validation.

absl::Status ValidateOwner(absl::string_view field, absl::string_view owner) {
  bool ok = owner.size() <= 128 &&
            std::all_of(owner.begin(), owner.end(), [](char c) {
              return absl::ascii_isalnum(c) || c == '-' || c == '_' ||
                     c == '.' || c == '@';
            });
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", Quote(owner),
                     " must be at most 128 characters of letters, digits, "
                     "'-', '_', '.' and '@'"));
  }
  return absl::OkStatus();
}

absl::Status ValidateEnvironments(
    absl::string_view field,
    const google::protobuf::RepeatedPtrField<std::string>& environments) {
  if (environments.size() > 32) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": at most 32 environments"));
  }
  for (int i = 0; i < environments.size(); ++i) {
    const std::string& environment = environments[i];
    bool ok =
        !environment.empty() && environment.size() <= 64 &&
        std::all_of(environment.begin(), environment.end(), [](char c) {
          return absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.';
        });
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, "[", i, "]: ", Quote(environment),
          " must be 1-64 characters of letters, digits, '-', '_' and '.'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateTags(
    absl::string_view field,
    const google::protobuf::Map<std::string, std::string>& tags) {
  if (tags.size() > 64) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": at most 64 tags"));
  }
  for (const auto& [key, value] : tags) {
    bool key_ok = !key.empty() && key.size() <= 63 &&
                  std::all_of(key.begin(), key.end(), [](char c) {
                    return absl::ascii_isalnum(c) || c == '-' || c == '_';
                  });
    if (!key_ok) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": key ", Quote(key),
                       " must be 1-63 characters of letters, digits, '-' and "
                       "'_' (so that filters can name it as tags.<key>)"));
    }
    if (value.size() > 256) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", key, "]: value must be at most 256 bytes"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateDisplayName(absl::string_view field,
                                 absl::string_view name) {
  if (name.size() > 256) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": at most 256 bytes"));
  }
  return absl::OkStatus();
}

absl::Status ValidateRenewal(absl::string_view field,
                             const v1::RenewalSettings& renewal) {
  if (renewal.renew_before_days() < 0 || renewal.renew_before_days() > 3650) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".renew_before_days: ", renewal.renew_before_days(),
                     " is not between 0 and 3650"));
  }
  return absl::OkStatus();
}

std::vector<std::string> SortedUnique(
    const google::protobuf::RepeatedPtrField<std::string>& values) {
  std::vector<std::string> out(values.begin(), values.end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

absl::StatusOr<int> PageSize(int requested) {
  if (requested < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_size: ", requested, " is negative; use 0 for the default (",
        kDefaultPageSize, ") or up to ", kMaxPageSize));
  }
  if (requested == 0) return kDefaultPageSize;
  return std::min(requested, kMaxPageSize);
}

// ---------------------------------------------------------------------------
// Enums.

v1::Source SourceToProto(absl::string_view source) {
  if (source == "issued") return v1::ISSUED;
  if (source == "imported") return v1::IMPORTED;
  if (source == "discovered") return v1::DISCOVERED;
  return v1::SOURCE_UNSPECIFIED;
}

absl::StatusOr<std::string> SourceFromProto(v1::Source source) {
  switch (source) {
    case v1::SOURCE_UNSPECIFIED:
    case v1::ISSUED:
      return std::string("issued");
    case v1::IMPORTED:
      return std::string("imported");
    case v1::DISCOVERED:
      return std::string("discovered");
    default:
      break;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("certificate.source: ", static_cast<int>(source),
                   " is not ISSUED, IMPORTED or DISCOVERED"));
}

v1::VersionStatus StatusToProto(const VersionRecord& record, absl::Time now) {
  if (record.status == "superseded") return v1::SUPERSEDED;
  if (record.status == "revoked") return v1::REVOKED;
  if (record.status == "active") {
    return record.facts.not_after_us < absl::ToUnixMicros(now) ? v1::EXPIRED
                                                               : v1::ACTIVE;
  }
  return v1::VERSION_STATUS_UNSPECIFIED;
}

v1::ChangeKind ChangeKindToProto(absl::string_view kind) {
  if (kind == "certificate_created") return v1::CERTIFICATE_CREATED;
  if (kind == "certificate_updated") return v1::CERTIFICATE_UPDATED;
  if (kind == "certificate_deleted") return v1::CERTIFICATE_DELETED;
  if (kind == "version_added") return v1::VERSION_ADDED;
  if (kind == "version_revoked") return v1::VERSION_REVOKED;
  if (kind == "ca_certificate_added") return v1::CA_CERTIFICATE_ADDED;
  return v1::CHANGE_KIND_UNSPECIFIED;
}

v1::Change ChangeToProto(const ChangeRecord& record) {
  v1::Change change;
  change.set_revision(record.revision);
  change.set_kind(ChangeKindToProto(record.kind));
  if (record.kind == "ca_certificate_added") {
    change.set_certificate(
        absl::StrCat(kCaCertificatesPrefix, record.certificate_id));
  } else {
    change.set_certificate(CertificateName(record.certificate_id));
  }
  if (record.version > 0) {
    change.set_version(VersionName(record.certificate_id, record.version));
  }
  *change.mutable_time() = crypto_proto::TimeToProto(record.time);
  change.set_actor(record.actor);
  for (const std::string& field : record.changed_fields) {
    change.add_changed_fields(field);
  }
  if (record.not_after_us.has_value()) {
    *change.mutable_not_after() =
        crypto_proto::TimeToProto(absl::FromUnixMicros(*record.not_after_us));
  }
  change.set_sha256_fingerprint_hex(record.sha256_hex);
  return change;
}

void CountsToProto(const std::vector<StatsCount>& counts,
                   google::protobuf::RepeatedPtrField<v1::Count>* out) {
  for (const StatsCount& count : counts) {
    v1::Count* added = out->Add();
    added->set_key(count.key);
    added->set_count(count.count);
  }
}

// A file name people can save: letters, digits, '.', '-' and '_'.
std::string SafeFileBase(absl::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '*') {
      out += "wildcard";
    } else if (absl::ascii_isalnum(c) || c == '.' || c == '-' || c == '_') {
      out.push_back(c);
    } else {
      out.push_back('_');
    }
  }
  if (out.size() > 100) out.resize(100);
  return out.empty() ? "certificate" : out;
}

std::string OutcomeText(const absl::Status& status) {
  return absl::StrCat(absl::StatusCodeToString(status.code()), ": ",
                      status.message());
}

// 64-bit FNV-1a, for request ids that must stay short.
std::string Fnv64Hex(absl::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 0x100000001b3ULL;
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kDigits[hash & 0xf];
    hash >>= 4;
  }
  return out;
}

// A stored version's certificate; DATA_LOSS when it no longer parses.
absl::StatusOr<crypto::Certificate> ParseStoredVersion(
    const VersionRecord& record) {
  absl::StatusOr<crypto::Certificate> certificate =
      crypto::Certificate::FromDer(record.der);
  if (!certificate.ok()) {
    return absl::DataLossError(
        absl::StrCat(VersionName(record.certificate_id, record.version),
                     ": stored certificate does not parse: ",
                     certificate.status().message()));
  }
  return certificate;
}

// An import item for `leaf` with its details serialized, so that reads of
// the version never parse the certificate again.
ImportItem MakeItemWithDetails(const ImportPlan& plan, const ImportedLeaf& leaf,
                               const ImportMetadata& metadata,
                               std::string key_name) {
  ImportItem item = MakeImportItem(plan, leaf, metadata, std::move(key_name));
  item.details =
      crypto_proto::CertificateDetailsToProto(leaf.certificate.info())
          .SerializeAsString();
  return item;
}

// What one unique certificate of an import came to.
struct Outcome {
  v1::ImportOutcome outcome = v1::IMPORT_OUTCOME_UNSPECIFIED;
  std::string certificate;
  std::string version;
  std::string key_name;
  bool key_added = false;
  std::string error;
};

}  // namespace

std::string VaultExportContext(absl::string_view key_id) {
  return absl::StrCat("certplane-vault-export|v1|", key_id.size(), ":", key_id);
}

std::string VaultImportRequestId(absl::string_view spki_sha256_hex,
                                 absl::string_view owner) {
  std::string id = absl::StrCat("inventory:", spki_sha256_hex, ":", owner);
  if (id.size() <= kMaxRequestIdLength) return id;
  return absl::StrCat("inventory:", spki_sha256_hex, ":fnv64-",
                      Fnv64Hex(owner));
}

struct InventoryService::ImportState {
  ImportPlan plan;
  std::string vault_owner;
  std::vector<std::string> key_names;   // By key index; empty: not stored.
  std::vector<std::string> key_errors;  // By key index; empty: no error.
  std::vector<bool> key_needed;         // By key index: send to the vault.
};

InventoryService::InventoryService(
    InventoryStore& store,
    std::unique_ptr<vault::v1::VaultService::StubInterface> vault, Clock clock,
    InventoryServiceOptions options)
    : store_(store),
      vault_(std::move(vault)),
      clock_(std::move(clock)),
      options_(std::move(options)) {}

InventoryService::~InventoryService() { Shutdown(); }

void InventoryService::Shutdown() {
  absl::MutexLock lock(&watch_mu_);
  shutting_down_ = true;
  watch_cv_.SignalAll();
}

void InventoryService::NotifyChange() {
  absl::MutexLock lock(&watch_mu_);
  ++change_epoch_;
  watch_cv_.SignalAll();
}

absl::StatusOr<std::string> InventoryService::Actor(
    const grpc::ServerContext& context) const {
  // The mTLS peer, the person a trusted delegator (the gateway) acts for, or
  // on a development server the x-certplane-dev-identity header.
  server::CallerOptions caller_options;
  caller_options.allow_development_identity =
      options_.allow_development_identity;
  caller_options.trusted_delegators = options_.trusted_delegators;
  absl::StatusOr<server::Caller> caller =
      server::IdentifyCaller(context, caller_options);
  if (!caller.ok()) return caller.status();
  return caller->identity;
}

// ---------------------------------------------------------------------------
// Records to protos.

absl::StatusOr<crypto::Certificate> InventoryService::CaCertificate(
    const std::string& sha256_hex) {
  {
    absl::MutexLock lock(&ca_mu_);
    auto found = ca_cache_.find(sha256_hex);
    if (found != ca_cache_.end()) return found->second;
  }
  absl::StatusOr<CaCertificateRecord> record =
      store_.GetCaCertificate(sha256_hex);
  if (absl::IsNotFound(record.status())) {
    return absl::DataLossError(absl::StrCat("CA certificate ", sha256_hex,
                                            " of a stored chain is missing"));
  }
  if (!record.ok()) return record.status();
  absl::StatusOr<crypto::Certificate> certificate =
      crypto::Certificate::FromDer(record->der);
  if (!certificate.ok()) {
    return absl::DataLossError(
        absl::StrCat("stored CA certificate ", sha256_hex,
                     " does not parse: ", certificate.status().message()));
  }
  absl::MutexLock lock(&ca_mu_);
  // CA certificates never change; the cache only bounds its size.
  if (ca_cache_.size() >= 10000) ca_cache_.clear();
  ca_cache_.emplace(sha256_hex, *certificate);
  return *std::move(certificate);
}

absl::StatusOr<v1::CertificateVersion> InventoryService::VersionToProto(
    const VersionRecord& record, absl::Time now) {
  v1::CertificateVersion out;
  out.set_name(VersionName(record.certificate_id, record.version));
  out.set_version(record.version);
  out.set_status(StatusToProto(record, now));
  if (record.details.empty()) {
    CERTPLANE_ASSIGN_OR_RETURN(crypto::Certificate certificate,
                               ParseStoredVersion(record));
    *out.mutable_details() =
        crypto_proto::CertificateDetailsToProto(certificate.info());
  } else if (!out.mutable_details()->ParseFromString(record.details)) {
    return absl::DataLossError(
        absl::StrCat(out.name(), ": stored certificate details do not parse"));
  }
  out.set_der(record.der);
  for (const std::string& sha : record.chain_sha256) {
    CERTPLANE_ASSIGN_OR_RETURN(crypto::Certificate ca, CaCertificate(sha));
    v1::ChainCertificate* chain = out.add_chain();
    chain->set_der(ca.der());
    chain->set_sha256_fingerprint_hex(sha);
    *chain->mutable_subject() =
        crypto_proto::DistinguishedNameToProto(ca.info().subject);
    *chain->mutable_not_after() =
        crypto_proto::TimeToProto(ca.info().not_after);
  }
  out.set_chain_complete(record.chain_complete);
  out.set_key_name(record.key_name);
  *out.mutable_create_time() = crypto_proto::TimeToProto(record.create_time);
  if (record.revoke_time.has_value()) {
    *out.mutable_revoke_time() = crypto_proto::TimeToProto(*record.revoke_time);
  }
  out.set_revocation_reason(record.revocation_reason);
  out.set_origin(record.origin);
  return out;
}

absl::StatusOr<v1::ManagedCertificate> InventoryService::CertificateToProto(
    const CertificateRecord& record, absl::Time now) {
  v1::ManagedCertificate out;
  out.set_name(CertificateName(record.certificate_id));
  out.set_certificate_id(record.certificate_id);
  out.set_display_name(record.display_name);
  out.set_owner(record.owner);
  for (const std::string& environment : record.environments) {
    out.add_environments(environment);
  }
  for (const auto& [key, value] : record.tags) {
    (*out.mutable_tags())[key] = value;
  }
  out.set_source(SourceToProto(record.source));
  if (!record.desired.empty() &&
      !out.mutable_desired()->ParseFromString(record.desired)) {
    return absl::DataLossError(
        absl::StrCat(out.name(), ": stored desired state does not parse"));
  }
  out.mutable_renewal()->set_auto_renew(record.auto_renew);
  out.mutable_renewal()->set_renew_before_days(record.renew_before_days);
  out.mutable_renewal()->set_reuse_key(record.reuse_key);
  if (record.current.has_value()) {
    CERTPLANE_ASSIGN_OR_RETURN(*out.mutable_current_version(),
                               VersionToProto(*record.current, now));
  }
  out.set_version_count(record.version_count);
  *out.mutable_create_time() = crypto_proto::TimeToProto(record.create_time);
  *out.mutable_update_time() = crypto_proto::TimeToProto(record.update_time);
  if (record.delete_time.has_value()) {
    *out.mutable_delete_time() = crypto_proto::TimeToProto(*record.delete_time);
  }
  out.set_etag(record.etag);
  return out;
}

// ---------------------------------------------------------------------------
// ImportCertificates.

grpc::Status InventoryService::ImportCertificates(
    grpc::ServerContext* context, const v1::ImportCertificatesRequest* request,
    v1::ImportCertificatesResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    CERTPLANE_ASSIGN_OR_RETURN(std::string actor, Actor(*context));
    return Import(*context, *request, actor, *response);
  }();
  return ToGrpcStatus(status);
}

absl::StatusOr<std::string> InventoryService::ImportKeyToVault(
    const grpc::ServerContext& context, const crypto::PrivateKey& key,
    absl::string_view spki_sha256_hex, absl::string_view owner) {
  if (vault_ == nullptr) {
    return absl::FailedPreconditionError(
        "the private key cannot be stored: this inventory has no vault "
        "(start it with --vault_address); import the certificate without "
        "its key, or configure the vault");
  }
  CERTPLANE_ASSIGN_OR_RETURN(crypto::SecretBytes pkcs8, key.ToPkcs8Der());
  vault_v1::ImportKeyRequest request;
  request.set_data(std::string(pkcs8.view()));
  request.set_format(vault_v1::PKCS8_DER);
  request.set_owner(std::string(owner));
  request.set_request_id(VaultImportRequestId(spki_sha256_hex, owner));
  std::unique_ptr<grpc::ClientContext> call =
      server::NewClientContext(options_.vault_timeout, &context);
  if (!options_.vault_development_identity.empty()) {
    call->AddMetadata(kDevelopmentIdentityHeader,
                      options_.vault_development_identity);
  }
  vault_v1::Key stored;
  absl::Status status =
      FromGrpcStatus(vault_->ImportKey(call.get(), request, &stored));
  WipeString(request.mutable_data());
  if (!status.ok()) return status;
  return stored.name();
}

void InventoryService::StoreKeys(const grpc::ServerContext& context,
                                 ImportState& state) {
  ImportPlan& plan = state.plan;
  state.key_names.assign(plan.keys.size(), "");
  state.key_errors.assign(plan.keys.size(), "");
  for (size_t k = 0; k < plan.keys.size(); ++k) {
    const ImportedKey& key = plan.keys[k];
    if (!state.key_needed[k]) continue;
    absl::StatusOr<std::string> name = ImportKeyToVault(
        context, key.key, key.spki_sha256_hex, state.vault_owner);
    if (name.ok()) {
      state.key_names[k] = *std::move(name);
    } else {
      state.key_errors[k] = absl::StrCat(
          "private key not stored in the vault, so the certificate was not "
          "imported: ",
          OutcomeText(name.status()));
    }
  }
}

absl::Status InventoryService::Import(
    const grpc::ServerContext& context,
    const v1::ImportCertificatesRequest& request, const std::string& actor,
    v1::ImportCertificatesResponse& response) {
  // Limits and metadata.
  if (request.files_size() == 0) {
    return absl::InvalidArgumentError("files: at least one file is required");
  }
  if (request.files_size() > options_.max_import_files) {
    return absl::InvalidArgumentError(
        absl::StrCat("files: ", request.files_size(), " files; at most ",
                     options_.max_import_files, " per request"));
  }
  size_t total_bytes = 0;
  for (int i = 0; i < request.files_size(); ++i) {
    const v1::ImportFile& file = request.files(i);
    total_bytes += file.data().size();
    if (file.filename().size() > 255 || !IsPrintableAscii(file.filename())) {
      return absl::InvalidArgumentError(
          absl::StrCat("files[", i,
                       "].filename: must be at most 255 printable ASCII "
                       "characters"));
    }
    if (file.data().size() > crypto::kMaxInputBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "files[", i, "].data: ", file.data().size(), " bytes; at most ",
          crypto::kMaxInputBytes, " per file"));
    }
  }
  if (total_bytes > options_.max_import_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("files: ", total_bytes, " bytes in total; at most ",
                     options_.max_import_bytes, " per request"));
  }
  CERTPLANE_RETURN_IF_ERROR(ValidateOwner("owner", request.owner()));
  CERTPLANE_RETURN_IF_ERROR(
      ValidateEnvironments("environments", request.environments()));
  CERTPLANE_RETURN_IF_ERROR(ValidateTags("tags", request.tags()));

  const absl::Time now = clock_();
  ImportMetadata metadata;
  metadata.owner = request.owner();
  metadata.environments = SortedUnique(request.environments());
  metadata.tags = {request.tags().begin(), request.tags().end()};
  ImportState state;
  state.vault_owner = request.owner();
  if (!request.target().empty()) {
    CERTPLANE_ASSIGN_OR_RETURN(
        metadata.target_certificate_id,
        ParseCertificateName("target", request.target()));
    absl::StatusOr<CertificateRecord> target =
        store_.GetCertificate(metadata.target_certificate_id);
    if (absl::IsNotFound(target.status())) {
      return absl::NotFoundError(
          absl::StrCat("target: ", request.target(), " does not exist"));
    }
    if (!target.ok()) return target.status();
    if (target->delete_time.has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat("target: ", request.target(),
                       " is deleted; versions cannot be added to it"));
    }
    if (state.vault_owner.empty()) state.vault_owner = target->owner;
  }

  std::vector<ImportFileInput> inputs;
  inputs.reserve(static_cast<size_t>(request.files_size()));
  for (int i = 0; i < request.files_size(); ++i) {
    const v1::ImportFile& file = request.files(i);
    ImportFileInput input;
    input.filename = file.filename().empty() ? absl::StrCat("files[", i, "]")
                                             : file.filename();
    input.data = file.data();
    if (!file.password().empty()) input.password = file.password();
    inputs.push_back(std::move(input));
  }
  CERTPLANE_ASSIGN_OR_RETURN(state.plan,
                             Analyze(inputs, StoreCaLookup(store_), now));
  const ImportPlan& plan = state.plan;
  size_t certificate_count = 0;
  for (const ImportedFile& file : plan.files) {
    certificate_count += file.certificates.size();
  }
  if (certificate_count > options_.max_import_certificates) {
    return absl::InvalidArgumentError(
        absl::StrCat("files: ", certificate_count, " certificates; at most ",
                     options_.max_import_certificates, " per request"));
  }
  if (!metadata.target_certificate_id.empty() && plan.leaves.size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "target: exactly one leaf certificate can be added to ",
        request.target(), "; the files hold ", plan.leaves.size()));
  }

  std::vector<Outcome> leaf_outcomes(plan.leaves.size());
  std::vector<Outcome> ca_outcomes(plan.ca_certificates.size());
  if (request.dry_run()) {
    for (size_t i = 0; i < plan.leaves.size(); ++i) {
      CERTPLANE_ASSIGN_OR_RETURN(
          std::optional<VersionRecord> stored,
          store_.FindVersionBySha256(plan.leaves[i].facts.sha256_hex));
      Outcome& outcome = leaf_outcomes[i];
      if (stored.has_value()) {
        outcome.outcome = v1::IMPORT_OUTCOME_ALREADY_PRESENT;
        outcome.certificate = CertificateName(stored->certificate_id);
        outcome.version = VersionName(stored->certificate_id, stored->version);
        outcome.key_name = stored->key_name;
      } else {
        outcome.outcome = v1::IMPORT_OUTCOME_WOULD_IMPORT;
      }
    }
    for (size_t i = 0; i < plan.ca_certificates.size(); ++i) {
      const std::string& sha = plan.ca_certificates[i].sha256_hex;
      absl::StatusOr<CaCertificateRecord> stored = store_.GetCaCertificate(sha);
      if (!stored.ok() && !absl::IsNotFound(stored.status())) {
        return stored.status();
      }
      ca_outcomes[i].outcome = stored.ok() ? v1::IMPORT_OUTCOME_ALREADY_PRESENT
                                           : v1::IMPORT_OUTCOME_WOULD_IMPORT;
      ca_outcomes[i].certificate = absl::StrCat(kCaCertificatesPrefix, sha);
    }
  } else {
    // A key goes to the vault only for a leaf that is new or stored without
    // a key: re-imports make no vault calls (and leave no orphan keys when
    // another owner re-imports).
    state.key_needed.assign(plan.keys.size(), false);
    for (const ImportedLeaf& leaf : plan.leaves) {
      if (!leaf.key_index.has_value()) continue;
      CERTPLANE_ASSIGN_OR_RETURN(
          std::optional<VersionRecord> stored,
          store_.FindVersionBySha256(leaf.facts.sha256_hex));
      if (stored.has_value() && !stored->key_name.empty()) continue;
      state.key_needed[*leaf.key_index] = true;
    }
    const bool has_keys =
        std::find(state.key_needed.begin(), state.key_needed.end(), true) !=
        state.key_needed.end();
    if (has_keys && state.vault_owner.empty()) {
      return absl::InvalidArgumentError(
          "owner: required when the files carry private keys (it becomes the "
          "owner of the keys in the vault)");
    }
    StoreKeys(context, state);

    std::vector<ImportItem> items;
    std::vector<size_t> item_leaf;  // Leaf index of each item.
    for (size_t i = 0; i < plan.leaves.size(); ++i) {
      const ImportedLeaf& leaf = plan.leaves[i];
      std::string key_name;
      if (leaf.key_index.has_value()) {
        if (!state.key_errors[*leaf.key_index].empty()) {
          leaf_outcomes[i].outcome = v1::IMPORT_OUTCOME_FAILED;
          leaf_outcomes[i].error = state.key_errors[*leaf.key_index];
          continue;
        }
        key_name = state.key_names[*leaf.key_index];
      }
      items.push_back(MakeItemWithDetails(plan, leaf, metadata, key_name));
      item_leaf.push_back(i);
    }
    std::vector<CaCertificateRecord> cas = plan.ca_certificates;
    for (CaCertificateRecord& ca : cas) ca.create_time = now;

    const size_t batch_size =
        static_cast<size_t>(std::max(1, options_.import_batch_size));
    size_t start = 0;
    bool first_batch = true;
    while (first_batch || start < items.size()) {
      const size_t end = std::min(items.size(), start + batch_size);
      std::vector<ImportItem> batch(
          std::make_move_iterator(items.begin() + static_cast<long>(start)),
          std::make_move_iterator(items.begin() + static_cast<long>(end)));
      if (batch.empty() && cas.empty()) break;
      static const std::vector<CaCertificateRecord> kNoCas;
      absl::StatusOr<ImportBatchResult> result =
          store_.ImportBatch(first_batch ? cas : kNoCas, batch, actor, now);
      if (!result.ok()) {
        return absl::Status(
            result.status().code(),
            absl::StrCat(
                "storing the certificates: ", result.status().message(),
                start > 0 ? " (earlier batches were stored; a retry "
                            "is safe)"
                          : ""));
      }
      NotifyChange();
      if (first_batch) {
        for (size_t c = 0; c < cas.size(); ++c) {
          bool added = c < result->ca_certificates_added.size() &&
                       result->ca_certificates_added[c];
          ca_outcomes[c].outcome =
              added ? v1::IMPORT_OUTCOME_CA_CERTIFICATE_STORED
                    : v1::IMPORT_OUTCOME_ALREADY_PRESENT;
          ca_outcomes[c].certificate =
              absl::StrCat(kCaCertificatesPrefix, cas[c].sha256_hex);
        }
      }
      for (size_t j = 0; j < result->items.size() && start + j < end; ++j) {
        const ImportItemResult& item = result->items[j];
        Outcome& outcome = leaf_outcomes[item_leaf[start + j]];
        switch (item.outcome) {
          case ImportItemOutcome::kImported:
            outcome.outcome = v1::IMPORT_OUTCOME_IMPORTED;
            break;
          case ImportItemOutcome::kAlreadyPresent:
            outcome.outcome = v1::IMPORT_OUTCOME_ALREADY_PRESENT;
            break;
          case ImportItemOutcome::kFailed:
            outcome.outcome = v1::IMPORT_OUTCOME_FAILED;
            outcome.error = item.error;
            break;
        }
        if (item.outcome != ImportItemOutcome::kFailed) {
          outcome.certificate = CertificateName(item.certificate_id);
          outcome.version = VersionName(item.certificate_id, item.version);
          outcome.key_name = item.key_name;
          outcome.key_added = item.key_added;
        }
      }
      first_batch = false;
      start = end;
    }
  }

  // The response, file by file.
  for (const ImportedFile& file : plan.files) {
    v1::FileResult* result = response.add_files();
    result->set_filename(file.filename);
    result->set_format(file.format);
    result->set_ok(file.status.ok());
    if (!file.status.ok()) {
      result->set_error(std::string(file.status.message()));
      response.set_failed_count(response.failed_count() + 1);
    }
    for (const std::string& note : file.notes) result->add_notes(note);
    for (const ImportedCertificate& cert : file.certificates) {
      const Outcome& outcome = cert.is_ca ? ca_outcomes[cert.unique_index]
                                          : leaf_outcomes[cert.unique_index];
      v1::CertificateResult* out = result->add_certificates();
      *out->mutable_details() =
          crypto_proto::CertificateDetailsToProto(cert.certificate.info());
      v1::ImportOutcome code = outcome.outcome;
      // A repeat of a certificate earlier in the request is present by the
      // time it comes up.
      if (!cert.first_occurrence && code != v1::IMPORT_OUTCOME_FAILED) {
        code = v1::IMPORT_OUTCOME_ALREADY_PRESENT;
      }
      out->set_outcome(code);
      out->set_certificate(outcome.certificate);
      out->set_version(outcome.version);
      out->set_key_name(outcome.key_name);
      out->set_key_added(cert.first_occurrence && outcome.key_added);
      out->set_error(outcome.error);
      switch (code) {
        case v1::IMPORT_OUTCOME_IMPORTED:
        case v1::IMPORT_OUTCOME_WOULD_IMPORT:
          if (!cert.is_ca) {
            response.set_imported_count(response.imported_count() + 1);
          }
          break;
        case v1::IMPORT_OUTCOME_ALREADY_PRESENT:
          response.set_already_present_count(response.already_present_count() +
                                             1);
          break;
        case v1::IMPORT_OUTCOME_FAILED:
          response.set_failed_count(response.failed_count() + 1);
          break;
        default:
          break;
      }
    }
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Managed certificates.

grpc::Status InventoryService::CreateCertificate(
    grpc::ServerContext* context, const v1::CreateCertificateRequest* request,
    v1::ManagedCertificate* response) {
  absl::Status status = [&]() -> absl::Status {
    CERTPLANE_ASSIGN_OR_RETURN(std::string actor, Actor(*context));
    const v1::ManagedCertificate& in = request->certificate();
    CERTPLANE_RETURN_IF_ERROR(
        ValidateDisplayName("certificate.display_name", in.display_name()));
    CERTPLANE_RETURN_IF_ERROR(ValidateOwner("certificate.owner", in.owner()));
    CERTPLANE_RETURN_IF_ERROR(
        ValidateEnvironments("certificate.environments", in.environments()));
    CERTPLANE_RETURN_IF_ERROR(ValidateTags("certificate.tags", in.tags()));
    CERTPLANE_RETURN_IF_ERROR(
        ValidateRenewal("certificate.renewal", in.renewal()));
    if (request->request_id().size() > kMaxRequestIdLength ||
        !IsPrintableAscii(request->request_id())) {
      return absl::InvalidArgumentError(
          "request_id: must be at most 128 printable ASCII characters");
    }
    CertificateRecord record;
    record.display_name = in.display_name();
    record.owner = in.owner();
    record.environments = SortedUnique(in.environments());
    record.tags = {in.tags().begin(), in.tags().end()};
    CERTPLANE_ASSIGN_OR_RETURN(record.source, SourceFromProto(in.source()));
    if (in.has_desired()) record.desired = in.desired().SerializeAsString();
    record.auto_renew = in.renewal().auto_renew();
    record.renew_before_days = in.renewal().renew_before_days();
    record.reuse_key = in.renewal().reuse_key();
    record.request_id = request->request_id();
    const absl::Time now = clock_();
    CERTPLANE_ASSIGN_OR_RETURN(CertificateRecord created,
                               store_.CreateCertificate(record, actor, now));
    NotifyChange();
    CERTPLANE_ASSIGN_OR_RETURN(*response, CertificateToProto(created, now));
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status InventoryService::AddCertificateVersion(
    grpc::ServerContext* context,
    const v1::AddCertificateVersionRequest* request,
    v1::CertificateVersion* response) {
  absl::Status status = [&]() -> absl::Status {
    CERTPLANE_ASSIGN_OR_RETURN(std::string actor, Actor(*context));
    CERTPLANE_ASSIGN_OR_RETURN(
        std::string id, ParseCertificateName("parent", request->parent()));
    if (request->certificate().empty()) {
      return absl::InvalidArgumentError(
          "certificate: required (PEM or DER, optionally followed by its "
          "chain in PEM)");
    }
    if (!request->key_name().empty()) {
      CERTPLANE_RETURN_IF_ERROR(
          ValidateKeyName("key_name", request->key_name()));
    }
    if (request->origin().size() > 255 ||
        !IsPrintableAscii(request->origin())) {
      return absl::InvalidArgumentError(
          "origin: must be at most 255 printable ASCII characters");
    }
    const absl::Time now = clock_();
    std::string origin = request->origin();
    CERTPLANE_ASSIGN_OR_RETURN(
        ImportPlan plan,
        Analyze({{origin, request->certificate(), std::nullopt}},
                StoreCaLookup(store_), now));
    const ImportedFile& file = plan.files[0];
    if (!file.status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("certificate: ", file.status.message()));
    }
    if (!plan.keys.empty()) {
      return absl::InvalidArgumentError(
          "certificate: holds a private key; keys go to the vault (ImportKey) "
          "and only their name is given here as key_name");
    }
    if (plan.leaves.size() != 1 || file.certificates.empty() ||
        file.certificates[0].is_ca) {
      return absl::InvalidArgumentError(absl::StrCat(
          "certificate: must be one leaf (not a CA) certificate, followed "
          "only by CA certificates of its chain; found ",
          plan.leaves.size(), " leaf certificates"));
    }
    const ImportedLeaf& leaf = plan.leaves[0];
    if (!request->key_name().empty() && vault_ != nullptr) {
      vault_v1::GetKeyRequest get;
      get.set_name(request->key_name());
      std::unique_ptr<grpc::ClientContext> call =
          server::NewClientContext(options_.vault_timeout, context);
      if (!options_.vault_development_identity.empty()) {
        call->AddMetadata(kDevelopmentIdentityHeader,
                          options_.vault_development_identity);
      }
      vault_v1::Key key;
      absl::Status got = FromGrpcStatus(vault_->GetKey(call.get(), get, &key));
      if (absl::IsNotFound(got)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "key_name: ", request->key_name(), " is not in the vault"));
      }
      if (!got.ok()) {
        return absl::Status(got.code(), absl::StrCat("vault: ", got.message()));
      }
      if (key.spki_sha256() != leaf.certificate.info().spki_sha256_hex) {
        return absl::InvalidArgumentError(
            absl::StrCat("key_name: ", request->key_name(),
                         " does not hold this certificate's private key"));
      }
    }
    if (!plan.ca_certificates.empty()) {
      std::vector<CaCertificateRecord> cas = plan.ca_certificates;
      for (CaCertificateRecord& ca : cas) ca.create_time = now;
      CERTPLANE_RETURN_IF_ERROR(
          store_.ImportBatch(cas, {}, actor, now).status());
      NotifyChange();
    }
    ImportItem item = MakeItemWithDetails(plan, leaf, ImportMetadata(), "");
    VersionRecord version;
    version.certificate_id = id;
    version.status = "active";
    version.der = item.der;
    version.details = item.details;
    version.facts = item.facts;
    version.chain_sha256 = item.chain_sha256;
    version.chain_complete = item.chain_complete;
    version.key_name = request->key_name();
    version.origin = origin;
    version.create_time = now;
    absl::StatusOr<VersionRecord> added =
        store_.AddVersion(id, version, actor, now);
    if (absl::IsNotFound(added.status())) {
      return absl::NotFoundError(
          absl::StrCat("parent: ", request->parent(), " does not exist"));
    }
    if (!added.ok()) return added.status();
    NotifyChange();
    CERTPLANE_ASSIGN_OR_RETURN(*response, VersionToProto(*added, now));
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status InventoryService::GetCertificate(
    grpc::ServerContext* context, const v1::GetCertificateRequest* request,
    v1::ManagedCertificate* response) {
  absl::Status status = [&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(Actor(*context).status());
    CERTPLANE_ASSIGN_OR_RETURN(std::string id,
                               ParseCertificateName("name", request->name()));
    CERTPLANE_ASSIGN_OR_RETURN(CertificateRecord record,
                               store_.GetCertificate(id));
    CERTPLANE_ASSIGN_OR_RETURN(*response, CertificateToProto(record, clock_()));
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status InventoryService::ListCertificates(
    grpc::ServerContext* context, const v1::ListCertificatesRequest* request,
    v1::ListCertificatesResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(Actor(*context).status());
    ListQuery query;
    CERTPLANE_ASSIGN_OR_RETURN(query.page_size, PageSize(request->page_size()));
    query.filter = request->filter();
    query.order_by = request->order_by();
    query.page_token = request->page_token();
    query.show_deleted = request->show_deleted();
    query.now = clock_();
    CERTPLANE_ASSIGN_OR_RETURN(CertificatePage page,
                               store_.ListCertificates(query));
    for (const CertificateRecord& record : page.certificates) {
      CERTPLANE_ASSIGN_OR_RETURN(*response->add_certificates(),
                                 CertificateToProto(record, query.now));
    }
    response->set_next_page_token(page.next_page_token);
    response->set_total_size(static_cast<int32_t>(std::min<int64_t>(
        page.total_size, std::numeric_limits<int32_t>::max())));
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status InventoryService::ListCertificateVersions(
    grpc::ServerContext* context,
    const v1::ListCertificateVersionsRequest* request,
    v1::ListCertificateVersionsResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(Actor(*context).status());
    CERTPLANE_ASSIGN_OR_RETURN(
        std::string id, ParseCertificateName("parent", request->parent()));
    CERTPLANE_ASSIGN_OR_RETURN(int page_size, PageSize(request->page_size()));
    CERTPLANE_ASSIGN_OR_RETURN(
        VersionPage page,
        store_.ListVersions(id, page_size, request->page_token()));
    const absl::Time now = clock_();
    for (const VersionRecord& record : page.versions) {
      CERTPLANE_ASSIGN_OR_RETURN(*response->add_versions(),
                                 VersionToProto(record, now));
    }
    response->set_next_page_token(page.next_page_token);
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status InventoryService::GetCertificateVersion(
    grpc::ServerContext* context,
    const v1::GetCertificateVersionRequest* request,
    v1::CertificateVersion* response) {
  absl::Status status = [&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(Actor(*context).status());
    CERTPLANE_ASSIGN_OR_RETURN(VersionRef ref,
                               ParseVersionName("name", request->name()));
    CERTPLANE_ASSIGN_OR_RETURN(
        VersionRecord record,
        store_.GetVersion(ref.certificate_id, ref.version));
    CERTPLANE_ASSIGN_OR_RETURN(*response, VersionToProto(record, clock_()));
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status InventoryService::UpdateCertificate(
    grpc::ServerContext* context, const v1::UpdateCertificateRequest* request,
    v1::ManagedCertificate* response) {
  absl::Status status = [&]() -> absl::Status {
    CERTPLANE_ASSIGN_OR_RETURN(std::string actor, Actor(*context));
    const v1::ManagedCertificate& in = request->certificate();
    CERTPLANE_ASSIGN_OR_RETURN(
        std::string id, ParseCertificateName("certificate.name", in.name()));
    if (request->update_mask().paths_size() == 0) {
      return absl::InvalidArgumentError(
          "update_mask: required; name the fields to change among "
          "display_name, owner, environments, tags, renewal, "
          "renewal.auto_renew, renewal.renew_before_days, renewal.reuse_key, "
          "desired");
    }
    MetadataUpdate update;
    std::set<std::string> fields;
    for (const std::string& path : request->update_mask().paths()) {
      if (path == "display_name") {
        CERTPLANE_RETURN_IF_ERROR(
            ValidateDisplayName("certificate.display_name", in.display_name()));
        fields.insert("display_name");
      } else if (path == "owner") {
        CERTPLANE_RETURN_IF_ERROR(
            ValidateOwner("certificate.owner", in.owner()));
        fields.insert("owner");
      } else if (path == "environments") {
        CERTPLANE_RETURN_IF_ERROR(ValidateEnvironments(
            "certificate.environments", in.environments()));
        fields.insert("environments");
      } else if (path == "tags") {
        CERTPLANE_RETURN_IF_ERROR(ValidateTags("certificate.tags", in.tags()));
        fields.insert("tags");
      } else if (path == "desired") {
        fields.insert("desired");
      } else if (path == "renewal") {
        CERTPLANE_RETURN_IF_ERROR(
            ValidateRenewal("certificate.renewal", in.renewal()));
        fields.insert({"auto_renew", "renew_before_days", "reuse_key"});
      } else if (path == "renewal.auto_renew") {
        fields.insert("auto_renew");
      } else if (path == "renewal.renew_before_days") {
        CERTPLANE_RETURN_IF_ERROR(
            ValidateRenewal("certificate.renewal", in.renewal()));
        fields.insert("renew_before_days");
      } else if (path == "renewal.reuse_key") {
        fields.insert("reuse_key");
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "update_mask: ", Quote(path),
            " cannot be updated; allowed paths are display_name, owner, "
            "environments, tags, renewal, renewal.auto_renew, "
            "renewal.renew_before_days, renewal.reuse_key, desired"));
      }
    }
    update.fields.assign(fields.begin(), fields.end());
    update.values.display_name = in.display_name();
    update.values.owner = in.owner();
    update.values.environments = SortedUnique(in.environments());
    update.values.tags = {in.tags().begin(), in.tags().end()};
    if (in.has_desired()) {
      update.values.desired = in.desired().SerializeAsString();
    }
    update.values.auto_renew = in.renewal().auto_renew();
    update.values.renew_before_days = in.renewal().renew_before_days();
    update.values.reuse_key = in.renewal().reuse_key();
    update.expected_etag = in.etag();
    const absl::Time now = clock_();
    CERTPLANE_ASSIGN_OR_RETURN(CertificateRecord updated,
                               store_.UpdateMetadata(id, update, actor, now));
    NotifyChange();
    CERTPLANE_ASSIGN_OR_RETURN(*response, CertificateToProto(updated, now));
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status InventoryService::DeleteCertificate(
    grpc::ServerContext* context, const v1::DeleteCertificateRequest* request,
    v1::ManagedCertificate* response) {
  absl::Status status = [&]() -> absl::Status {
    CERTPLANE_ASSIGN_OR_RETURN(std::string actor, Actor(*context));
    CERTPLANE_ASSIGN_OR_RETURN(std::string id,
                               ParseCertificateName("name", request->name()));
    const absl::Time now = clock_();
    CERTPLANE_ASSIGN_OR_RETURN(
        CertificateRecord deleted,
        store_.DeleteCertificate(id, request->etag(), actor, now));
    NotifyChange();
    CERTPLANE_ASSIGN_OR_RETURN(*response, CertificateToProto(deleted, now));
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status InventoryService::RevokeCertificateVersion(
    grpc::ServerContext* context,
    const v1::RevokeCertificateVersionRequest* request,
    v1::CertificateVersion* response) {
  absl::Status status = [&]() -> absl::Status {
    CERTPLANE_ASSIGN_OR_RETURN(std::string actor, Actor(*context));
    CERTPLANE_ASSIGN_OR_RETURN(VersionRef ref,
                               ParseVersionName("name", request->name()));
    std::string reason =
        request->reason().empty() ? "unspecified" : request->reason();
    if (std::none_of(std::begin(kRevocationReasons),
                     std::end(kRevocationReasons),
                     [&](const char* known) { return reason == known; })) {
      return absl::InvalidArgumentError(absl::StrCat(
          "reason: ", Quote(reason), " is not an RFC 5280 reason; use one of ",
          absl::StrJoin(kRevocationReasons, ", ")));
    }
    const absl::Time now = clock_();
    absl::Time revoke_time =
        request->has_revoke_time()
            ? crypto_proto::TimeFromProto(request->revoke_time())
            : now;
    CERTPLANE_ASSIGN_OR_RETURN(
        VersionRecord revoked,
        store_.RevokeVersion(ref.certificate_id, ref.version, reason,
                             revoke_time, actor, now));
    NotifyChange();
    CERTPLANE_ASSIGN_OR_RETURN(*response, VersionToProto(revoked, now));
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

// ---------------------------------------------------------------------------
// Export.

absl::StatusOr<VersionRecord> InventoryService::ResolveVersion(
    absl::string_view field, absl::string_view name) {
  CERTPLANE_ASSIGN_OR_RETURN(std::optional<VersionRef> ref,
                             ParseMaybeVersionName(field, name));
  if (ref.has_value())
    return store_.GetVersion(ref->certificate_id, ref->version);
  CERTPLANE_ASSIGN_OR_RETURN(std::string id, ParseCertificateName(field, name));
  CERTPLANE_ASSIGN_OR_RETURN(CertificateRecord record,
                             store_.GetCertificate(id));
  if (!record.current.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat(field, ": ", name, " has no version yet"));
  }
  return *std::move(record.current);
}

grpc::Status InventoryService::ExportCertificate(
    grpc::ServerContext* context, const v1::ExportCertificateRequest* request,
    v1::ExportCertificateResponse* response) {
  absl::Status status = [&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(Actor(*context).status());
    if (request->format() == v1::EXPORT_FORMAT_UNSPECIFIED ||
        !v1::ExportFormat_IsValid(request->format())) {
      return absl::InvalidArgumentError(
          "format: required; one of PEM, FULLCHAIN_PEM, DER, PKCS7, PKCS12, "
          "NGINX_BUNDLE");
    }
    if (request->format() == v1::PKCS12 &&
        Utf8Characters(request->password()) < kMinExportPasswordCharacters) {
      return absl::InvalidArgumentError(
          absl::StrCat("password: at least ", kMinExportPasswordCharacters,
                       " characters are required for PKCS12"));
    }
    CERTPLANE_ASSIGN_OR_RETURN(VersionRecord version,
                               ResolveVersion("name", request->name()));
    std::string base = SafeFileBase(
        !version.facts.common_name.empty() ? version.facts.common_name
        : !version.facts.sans.empty()      ? version.facts.sans.front()
                                           : version.certificate_id);
    if (request->format() == v1::PKCS12 ||
        request->format() == v1::NGINX_BUNDLE) {
      return ExportWithKey(*context, *request, version, base, *response);
    }
    CERTPLANE_ASSIGN_OR_RETURN(crypto::Certificate leaf,
                               ParseStoredVersion(version));
    std::vector<crypto::Certificate> chain = {leaf};
    std::vector<crypto::Certificate> fullchain = {leaf};
    for (const std::string& sha : version.chain_sha256) {
      CERTPLANE_ASSIGN_OR_RETURN(crypto::Certificate ca, CaCertificate(sha));
      if (!ca.info().self_signed) fullchain.push_back(ca);
      chain.push_back(std::move(ca));
    }
    v1::ExportedFile* file = response->add_files();
    switch (request->format()) {
      case v1::PEM:
        file->set_filename(absl::StrCat(base, ".pem"));
        file->set_data(crypto::WritePem({leaf}));
        break;
      case v1::FULLCHAIN_PEM:
        file->set_filename(absl::StrCat(base, ".fullchain.pem"));
        file->set_data(crypto::WritePem(fullchain));
        break;
      case v1::DER:
        file->set_filename(absl::StrCat(base, ".der"));
        file->set_data(crypto::WriteDer(leaf));
        break;
      case v1::PKCS7: {
        file->set_filename(absl::StrCat(base, ".p7b"));
        CERTPLANE_ASSIGN_OR_RETURN(*file->mutable_data(),
                                   crypto::WritePkcs7(chain, /*pem=*/false));
        break;
      }
      default:
        return absl::InvalidArgumentError(
            absl::StrCat("format: ", static_cast<int>(request->format()),
                         " is not a known export format"));
    }
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

absl::Status InventoryService::ExportWithKey(
    const grpc::ServerContext& context,
    const v1::ExportCertificateRequest& request, const VersionRecord& version,
    const std::string& base, v1::ExportCertificateResponse& response) {
  const std::string name = VersionName(version.certificate_id, version.version);
  if (version.key_name.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        name, " has no private key in the vault, so it cannot be exported as ",
        v1::ExportFormat_Name(request.format()),
        "; export PEM, FULLCHAIN_PEM, DER or PKCS7, or import the key"));
  }
  if (vault_ == nullptr) {
    return absl::FailedPreconditionError(
        "exporting a private key needs the vault; start the inventory with "
        "--vault_address");
  }
  CERTPLANE_ASSIGN_OR_RETURN(crypto::Certificate leaf,
                             ParseStoredVersion(version));
  std::vector<crypto::Certificate> chain = {leaf};
  for (const std::string& sha : version.chain_sha256) {
    CERTPLANE_ASSIGN_OR_RETURN(crypto::Certificate ca, CaCertificate(sha));
    chain.push_back(std::move(ca));
  }

  // The key, wrapped by the vault to a key pair that exists only for this
  // call.
  CERTPLANE_ASSIGN_OR_RETURN(
      crypto::PrivateKey recipient,
      crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
  vault_v1::ExportKeyRequest export_request;
  export_request.set_name(version.key_name);
  export_request.set_format(vault_v1::EXPORT_WRAPPED_TO_RECIPIENT);
  export_request.set_recipient_public_key_pem(recipient.public_key().ToPem());
  std::unique_ptr<grpc::ClientContext> call =
      server::NewClientContext(options_.vault_timeout, &context);
  if (!options_.vault_development_identity.empty()) {
    call->AddMetadata(kDevelopmentIdentityHeader,
                      options_.vault_development_identity);
  }
  vault_v1::ExportKeyResponse exported;
  absl::Status status =
      FromGrpcStatus(vault_->ExportKey(call.get(), export_request, &exported));
  if (absl::IsNotFound(status)) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": its key ", version.key_name,
                     " is no longer in the vault: ", status.message()));
  }
  if (!status.ok()) {
    return absl::Status(status.code(),
                        absl::StrCat("vault refused to export ",
                                     version.key_name, ": ", status.message()));
  }
  const std::string key_id(absl::StripPrefix(version.key_name, "keys/"));
  absl::StatusOr<crypto::SecretBytes> pkcs8 =
      crypto::EciesOpen(recipient, exported.data(), VaultExportContext(key_id));
  if (!pkcs8.ok()) {
    return absl::InternalError(
        absl::StrCat("the vault's export of ", version.key_name,
                     " does not open: ", pkcs8.status().message()));
  }
  CERTPLANE_ASSIGN_OR_RETURN(crypto::PrivateKey key,
                             crypto::PrivateKey::FromDer(pkcs8->view()));
  if (!leaf.CheckKeyMatches(key).ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(name, ": the vault key ", version.key_name,
                     " does not match the certificate"));
  }

  if (request.format() == v1::PKCS12) {
    crypto::Pkcs12Options options;
    options.legacy = request.legacy_pkcs12();
    options.friendly_name = base;
    CERTPLANE_ASSIGN_OR_RETURN(
        std::string p12,
        crypto::WritePkcs12(&key, chain, request.password(), options));
    v1::ExportedFile* file = response.add_files();
    file->set_filename(absl::StrCat(base, ".p12"));
    file->set_data(std::move(p12));
    return absl::OkStatus();
  }
  CERTPLANE_ASSIGN_OR_RETURN(crypto::NginxBundle bundle,
                             crypto::WriteNginxBundle(chain, &key));
  v1::ExportedFile* fullchain = response.add_files();
  fullchain->set_filename(absl::StrCat(base, ".fullchain.pem"));
  fullchain->set_data(std::move(bundle.fullchain_pem));
  v1::ExportedFile* key_file = response.add_files();
  key_file->set_filename(absl::StrCat(base, ".key.pem"));
  key_file->set_data(std::string(bundle.key_pem.view()));
  key_file->set_sensitive(true);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Stats and the change feed.

grpc::Status InventoryService::GetStats(grpc::ServerContext* context,
                                        const v1::GetStatsRequest* request,
                                        v1::Stats* response) {
  absl::Status status = [&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(Actor(*context).status());
    const absl::Time now = clock_();
    CERTPLANE_ASSIGN_OR_RETURN(StatsRecord stats,
                               store_.Stats(request->filter(), now));
    response->set_total(stats.total);
    CountsToProto(stats.by_status, response->mutable_by_status());
    CountsToProto(stats.by_issuer, response->mutable_by_issuer());
    CountsToProto(stats.by_key, response->mutable_by_key());
    CountsToProto(stats.by_signature_algorithm,
                  response->mutable_by_signature_algorithm());
    CountsToProto(stats.by_owner, response->mutable_by_owner());
    CountsToProto(stats.by_environment, response->mutable_by_environment());
    CountsToProto(stats.by_source, response->mutable_by_source());
    CountsToProto(stats.by_expiry, response->mutable_by_expiry());
    response->set_weak_key_count(stats.weak_key_count);
    response->set_weak_signature_count(stats.weak_signature_count);
    *response->mutable_compute_time() = crypto_proto::TimeToProto(now);
    return absl::OkStatus();
  }();
  return ToGrpcStatus(status);
}

grpc::Status InventoryService::WatchChanges(
    grpc::ServerContext* context, const v1::WatchChangesRequest* request,
    grpc::ServerWriter<v1::Change>* writer) {
  absl::Status status = [&]() -> absl::Status {
    CERTPLANE_RETURN_IF_ERROR(Actor(*context).status());
    if (request->since_revision() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("since_revision: ", request->since_revision(),
                       " is negative; use 0 for the beginning"));
    }
    const int page = std::max(1, options_.watch_page_size);
    int64_t last = request->since_revision();
    std::optional<int64_t> stop_at;
    if (request->no_wait()) {
      CERTPLANE_ASSIGN_OR_RETURN(stop_at, store_.LatestRevision());
    }
    for (;;) {
      if (context->IsCancelled()) return absl::OkStatus();
      uint64_t epoch;
      {
        absl::MutexLock lock(&watch_mu_);
        if (shutting_down_) return absl::OkStatus();
        epoch = change_epoch_;
      }
      CERTPLANE_ASSIGN_OR_RETURN(std::vector<ChangeRecord> changes,
                                 store_.ChangesAfter(last, page));
      for (const ChangeRecord& change : changes) {
        if (stop_at.has_value() && change.revision > *stop_at) {
          return absl::OkStatus();
        }
        if (!writer->Write(ChangeToProto(change))) return absl::OkStatus();
        last = change.revision;
      }
      if (static_cast<int>(changes.size()) == page) continue;
      if (stop_at.has_value()) return absl::OkStatus();
      absl::MutexLock lock(&watch_mu_);
      if (change_epoch_ == epoch && !shutting_down_) {
        watch_cv_.WaitWithTimeout(&watch_mu_, options_.watch_poll_interval);
      }
    }
  }();
  return ToGrpcStatus(status);
}

}  // namespace certplane::inventory
