#include "services/vault/vault_service.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "google/protobuf/timestamp.pb.h"
#include "grpcpp/server_context.h"
#include "libs/crypto/aead.h"
#include "libs/crypto/csr.h"
#include "libs/crypto/ecies.h"
#include "libs/crypto/formats.h"
#include "libs/crypto/key.h"
#include "libs/crypto_proto/crypto_proto.h"
#include "libs/server/json_log.h"
#include "libs/server/request_id.h"
#include "libs/status/grpc_status.h"
#include "libs/status/status_macros.h"

namespace certplane::vault {
namespace {

namespace common = ::certplane::common::v1;

constexpr char kExportAssociatedDataPrefix[] = "certplane-vault-export|v1|";
constexpr int kDefaultPageSize = 50;
constexpr int kMaxPageSize = 1000;
constexpr size_t kMaxImportBytes = 1 << 20;
constexpr size_t kMinPasswordCharacters = 12;
constexpr size_t kMaxDetailBytes = 400;

// ---------------------------------------------------------------------------
// Validation.

bool IsLowerHex(absl::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

bool IsPrintableAscii(absl::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e; });
}

// A user-supplied value quoted for an error message, bounded.
std::string Quote(absl::string_view value) {
  if (value.size() > 80) {
    return absl::StrCat("\"", value.substr(0, 80), "...\"");
  }
  return absl::StrCat("\"", value, "\"");
}

absl::StatusOr<std::string> ParseKeyName(absl::string_view name) {
  if (name.empty()) {
    return absl::InvalidArgumentError("name: required, as keys/{key_id}");
  }
  absl::string_view id = name;
  if (!absl::ConsumePrefix(&id, "keys/") || id.size() != 33 || id[0] != 'k' ||
      !IsLowerHex(id.substr(1))) {
    return absl::InvalidArgumentError(
        absl::StrCat("name: ", Quote(name),
                     " is not a key name; expected keys/{key_id} where "
                     "key_id is \"k\" and 32 lowercase hex digits"));
  }
  return std::string(id);
}

absl::Status ValidateOwner(absl::string_view owner) {
  if (owner.empty()) {
    return absl::InvalidArgumentError(
        "owner: required (the owning team, e.g. \"payments\")");
  }
  bool ok = owner.size() <= 128 &&
            std::all_of(owner.begin(), owner.end(), [](char c) {
              return absl::ascii_isalnum(c) || c == '-' || c == '_' ||
                     c == '.' || c == '@';
            });
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("owner: ", Quote(owner),
                     " must be 1-128 characters of letters, digits, '-', "
                     "'_', '.' and '@'"));
  }
  return absl::OkStatus();
}

absl::Status ValidateLabels(
    const google::protobuf::Map<std::string, std::string>& labels) {
  if (labels.size() > 64) {
    return absl::InvalidArgumentError("labels: at most 64 labels");
  }
  for (const auto& [key, value] : labels) {
    bool key_ok = !key.empty() && key.size() <= 63 &&
                  std::all_of(key.begin(), key.end(), [](char c) {
                    return absl::ascii_islower(c) || absl::ascii_isdigit(c) ||
                           c == '-' || c == '_' || c == '.' || c == '/';
                  });
    if (!key_ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("labels: key ", Quote(key),
                       " must be 1-63 characters of lowercase letters, "
                       "digits, '-', '_', '.' and '/'"));
    }
    if (value.size() > 256 || !IsPrintableAscii(value)) {
      return absl::InvalidArgumentError(
          absl::StrCat("labels[", key,
                       "]: value must be at most 256 printable ASCII "
                       "characters"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateRequestId(absl::string_view request_id) {
  if (request_id.size() > 128 || !IsPrintableAscii(request_id)) {
    return absl::InvalidArgumentError(
        "request_id: must be at most 128 printable ASCII characters");
  }
  return absl::OkStatus();
}

size_t Utf8Characters(absl::string_view text) {
  return static_cast<size_t>(std::count_if(
      text.begin(), text.end(),
      [](char c) { return (static_cast<unsigned char>(c) & 0xc0) != 0x80; }));
}

absl::Status ValidateExportPassword(absl::string_view password) {
  if (Utf8Characters(password) < kMinPasswordCharacters) {
    return absl::InvalidArgumentError(
        absl::StrCat("password: at least ", kMinPasswordCharacters,
                     " characters are required for this export format"));
  }
  return absl::OkStatus();
}

absl::StatusOr<crypto::KeyType> KeyTypeFromProto(int type) {
  return crypto_proto::KeyTypeFromProto(type, "spec.type");
}

// Whether `record` is a key of `type` (for idempotent retries).
bool RecordIsOfType(const KeyRecord& record, crypto::KeyType type) {
  switch (type) {
    case crypto::KeyType::kRsa2048:
      return record.algorithm == "RSA" && record.bits == 2048;
    case crypto::KeyType::kRsa3072:
      return record.algorithm == "RSA" && record.bits == 3072;
    case crypto::KeyType::kRsa4096:
      return record.algorithm == "RSA" && record.bits == 4096;
    case crypto::KeyType::kEcdsaP256:
      return record.algorithm == "ECDSA" && record.curve == "P-256";
    case crypto::KeyType::kEcdsaP384:
      return record.algorithm == "ECDSA" && record.curve == "P-384";
    case crypto::KeyType::kEd25519:
      return record.algorithm == "Ed25519";
  }
  return false;
}

// Keys the vault accepts on import.
absl::Status CheckImportableKey(const crypto::KeyInfo& info) {
  switch (info.algorithm) {
    case crypto::KeyAlgorithm::kRsa:
      if (info.bits < 2048 || info.bits > 8192) {
        return absl::InvalidArgumentError(
            absl::StrCat("data: RSA key of ", info.bits,
                         " bits; the vault accepts 2048 to 8192 bits"));
      }
      return absl::OkStatus();
    case crypto::KeyAlgorithm::kEcdsa:
      if (info.explicit_curve_parameters ||
          (info.curve != "P-256" && info.curve != "P-384" &&
           info.curve != "P-521")) {
        return absl::InvalidArgumentError(
            absl::StrCat("data: EC key on curve ", Quote(info.curve),
                         "; the vault accepts named P-256, P-384 and P-521"));
      }
      return absl::OkStatus();
    case crypto::KeyAlgorithm::kEd25519:
      return absl::OkStatus();
    case crypto::KeyAlgorithm::kUnknown:
      break;
  }
  return absl::InvalidArgumentError(
      "data: unsupported key algorithm; the vault accepts RSA, ECDSA and "
      "Ed25519");
}

// ---------------------------------------------------------------------------
// Proto conversion.

void SetTimestamp(absl::Time time, google::protobuf::Timestamp* out) {
  int64_t seconds = absl::ToUnixSeconds(time);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>((time - absl::FromUnixSeconds(seconds)) /
                                      absl::Nanoseconds(1)));
}

absl::StatusOr<v1::Key> KeyToProto(const KeyRecord& record) {
  v1::Key key;
  key.set_name(absl::StrCat("keys/", record.key_id));
  key.set_key_id(record.key_id);
  key.set_version(record.version);
  key.set_owner(record.owner);
  for (const auto& [name, value] : record.labels) {
    (*key.mutable_labels())[name] = value;
  }
  key.mutable_info()->set_algorithm(
      crypto_proto::KeyAlgorithmNameToProto(record.algorithm));
  key.mutable_info()->set_bits(record.bits);
  key.mutable_info()->set_curve(record.curve);
  // Checked when the key was stored; re-encoded here, not decoded again.
  absl::StatusOr<std::string> public_key_pem =
      crypto::SpkiDerToPem(record.public_key_der);
  if (!public_key_pem.ok()) {
    return absl::DataLossError(absl::StrCat(
        "key ", record.key_id, ": stored public key is not a valid key"));
  }
  key.set_public_key_pem(*std::move(public_key_pem));
  key.set_spki_sha256(record.spki_sha256);
  key.set_state(record.state == KeyState::kActive ? v1::ACTIVE : v1::DESTROYED);
  key.set_origin(record.origin);
  SetTimestamp(record.create_time, key.mutable_create_time());
  if (record.destroy_time.has_value()) {
    SetTimestamp(*record.destroy_time, key.mutable_destroy_time());
  }
  return key;
}

absl::StatusOr<crypto::CsrOptions> CsrOptionsFromProto(
    const v1::CreateCsrRequest& request) {
  crypto::CsrOptions options;
  CERTPLANE_ASSIGN_OR_RETURN(
      options.subject,
      crypto_proto::DistinguishedNameFromProto(request.subject(), "subject"));
  CERTPLANE_ASSIGN_OR_RETURN(
      options.sans,
      crypto_proto::SubjectAltNamesFromProto(request.sans(), "sans"));
  if (options.subject.attributes.empty() && options.sans.empty()) {
    return absl::InvalidArgumentError(
        "subject, sans: a CSR needs a subject or at least one SAN");
  }
  return options;
}

// AIP-160 subset: `field = value` terms joined by AND; values bare or
// double-quoted (with \" and \\ escapes).
absl::StatusOr<KeyFilter> ParseFilter(absl::string_view filter) {
  KeyFilter result;
  absl::flat_hash_set<std::string> seen;
  size_t pos = 0;
  auto skip_space = [&] {
    while (pos < filter.size() && absl::ascii_isspace(filter[pos])) ++pos;
  };
  auto error = [&](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat("filter: ", what, " at offset ", pos,
                     "; write terms like owner = \"payments\" AND "
                     "labels.env = prod"));
  };
  skip_space();
  if (pos == filter.size()) return result;
  for (;;) {
    size_t start = pos;
    while (pos < filter.size() &&
           (absl::ascii_isalnum(filter[pos]) || filter[pos] == '_' ||
            filter[pos] == '.' || filter[pos] == '-' || filter[pos] == '/')) {
      ++pos;
    }
    std::string field(filter.substr(start, pos - start));
    if (field.empty()) return error("expected a field name");
    skip_space();
    if (pos >= filter.size() || filter[pos] != '=') {
      return error(absl::StrCat("expected '=' after ", Quote(field)));
    }
    ++pos;
    skip_space();
    std::string value;
    if (pos < filter.size() && filter[pos] == '"') {
      ++pos;
      bool closed = false;
      while (pos < filter.size()) {
        char c = filter[pos++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && pos < filter.size()) c = filter[pos++];
        value.push_back(c);
      }
      if (!closed) return error("unterminated string");
    } else {
      while (pos < filter.size() && !absl::ascii_isspace(filter[pos])) {
        value.push_back(filter[pos++]);
      }
      if (value.empty()) return error("expected a value");
    }
    if (!seen.insert(field).second) {
      return error(absl::StrCat("field ", Quote(field), " appears twice"));
    }
    if (field == "owner") {
      result.owner = value;
    } else if (field == "origin") {
      result.origin = value;
    } else if (field == "algorithm") {
      std::string upper = absl::AsciiStrToUpper(value);
      if (upper == "RSA") {
        result.algorithm = "RSA";
      } else if (upper == "ECDSA") {
        result.algorithm = "ECDSA";
      } else if (upper == "ED25519") {
        result.algorithm = "Ed25519";
      } else {
        return error(absl::StrCat("algorithm ", Quote(value),
                                  " is not RSA, ECDSA or Ed25519"));
      }
    } else if (field == "state") {
      if (value == "ACTIVE") {
        result.state = KeyState::kActive;
      } else if (value == "DESTROYED") {
        result.state = KeyState::kDestroyed;
      } else {
        return error(absl::StrCat("state ", Quote(value),
                                  " is not ACTIVE or DESTROYED"));
      }
    } else if (absl::StartsWith(field, "labels.") && field.size() > 7) {
      result.labels[field.substr(7)] = value;
    } else {
      return error(absl::StrCat(
          "unknown field ", Quote(field),
          " (known: owner, origin, algorithm, state, labels.<key>)"));
    }
    skip_space();
    if (pos == filter.size()) break;
    if (filter.substr(pos, 3) != "AND" || pos + 3 >= filter.size() ||
        !absl::ascii_isspace(filter[pos + 3])) {
      return error("expected AND");
    }
    pos += 3;
    skip_space();
  }
  return result;
}

std::string SignatureAlgorithm(absl::string_view algorithm,
                               absl::string_view digest) {
  std::string bits = std::string(digest.substr(3));  // "256", ...
  if (algorithm == "RSA") return absl::StrCat("sha", bits, "WithRSAEncryption");
  if (algorithm == "ECDSA") return absl::StrCat("ecdsa-with-SHA", bits);
  return "ED25519";
}

absl::StatusOr<std::string> NewKeyId() {
  CERTPLANE_ASSIGN_OR_RETURN(crypto::SecretBytes random,
                             crypto::Aes256Gcm::GenerateKey());
  return absl::StrCat("k", crypto::HexEncode(random.view().substr(0, 16)));
}

// Times as the store keeps them (microseconds), so that a response built
// before a write equals what later reads return.
absl::Time StoredTime(absl::Time time) {
  return absl::FromUnixMicros(absl::ToUnixMicros(time));
}

std::string TruncatedDetail(absl::string_view detail) {
  if (detail.size() <= kMaxDetailBytes) return std::string(detail);
  return absl::StrCat(detail.substr(0, kMaxDetailBytes), "...");
}

}  // namespace

std::string ExportAssociatedData(absl::string_view key_id) {
  return absl::StrCat(kExportAssociatedDataPrefix, key_id.size(), ":", key_id);
}

VaultService::VaultService(VaultStore& store, KekSource& kek,
                           const Policy& policy, Clock clock,
                           VaultServiceOptions options)
    : store_(store),
      kek_(kek),
      policy_(policy),
      clock_(clock ? std::move(clock) : Clock([] { return absl::Now(); })),
      options_(std::move(options)),
      envelope_(kek),
      opened_keys_(options_.opened_keys),
      metrics_(options_.metrics_registry) {}

absl::StatusOr<std::shared_ptr<const crypto::PrivateKey>> VaultService::OpenKey(
    const KeyRecord& record) {
  const absl::Time now = absl::Now();  // Idle time is real time.
  if (auto cached = opened_keys_.Find(record, now)) return cached;
  CERTPLANE_ASSIGN_OR_RETURN(crypto::PrivateKey key, envelope_.Open(record));
  auto opened = std::make_shared<const crypto::PrivateKey>(std::move(key));
  opened_keys_.Put(record, opened, now);
  return opened;
}

VaultService::~VaultService() { Stop(); }

// ---------------------------------------------------------------------------
// Lifecycle and KEK versions.

absl::Status VaultService::Start() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = false;
  }
  CERTPLANE_ASSIGN_OR_RETURN(std::vector<int> versions, kek_.Versions());
  if (versions.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("KEK source ", kek_.Describe(), " has no versions"));
  }
  CERTPLANE_ASSIGN_OR_RETURN(std::vector<KekVersionRecord> stored,
                             store_.KekVersions());
  for (int version : versions) {
    bool known = std::any_of(
        stored.begin(), stored.end(),
        [&](const KekVersionRecord& r) { return r.version == version; });
    if (known) continue;
    absl::Time now = clock_();
    CERTPLANE_RETURN_IF_ERROR(store_.AddKekVersion(
        version, now,
        AuditRecord{
            now, kSystemIdentity, "RegisterKekVersion", "", "OK",
            absl::StrCat("KEK version ", version, " of ", kek_.Describe()),
            ""}));
  }
  CERTPLANE_ASSIGN_OR_RETURN(std::vector<KeyRecord> below,
                             store_.KeysWrappedBelow(versions.back(), 1));
  if (!below.empty()) {
    log::Info("vault: resuming rewrap of data keys",
              {{"kek_version", versions.back()}});
    RequestRewrap();
  }
  return absl::OkStatus();
}

void VaultService::Stop() {
  std::thread worker;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    worker = std::move(worker_);
  }
  if (worker.joinable()) worker.join();
  absl::MutexLock lock(&mu_);
  rewrap_running_ = false;
}

void VaultService::WaitForRewrapIdle() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(
      +[](bool* running) { return !*running; }, &rewrap_running_));
}

absl::StatusOr<int> VaultService::CurrentKekVersion() const {
  CERTPLANE_ASSIGN_OR_RETURN(std::vector<int> versions, kek_.Versions());
  if (versions.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("KEK source ", kek_.Describe(), " has no versions"));
  }
  return versions.back();
}

absl::Status VaultService::EnsureEncryptionBudget() {
  CERTPLANE_ASSIGN_OR_RETURN(int current, CurrentKekVersion());
  CERTPLANE_ASSIGN_OR_RETURN(
      std::vector<KekVersionRecord> stored,
      store_.KekVersions(VaultStore::KekCounts::kEncryptionsOnly));
  auto it = std::find_if(
      stored.begin(), stored.end(),
      [&](const KekVersionRecord& r) { return r.version == current; });
  if (it == stored.end()) {
    absl::Time now = clock_();
    return store_.AddKekVersion(
        current, now,
        AuditRecord{
            now, kSystemIdentity, "RegisterKekVersion", "", "OK",
            absl::StrCat("KEK version ", current, " of ", kek_.Describe()),
            ""});
  }
  metrics_.SetKekEncryptions(current, it->encryption_count);
  if (it->encryption_count < options_.kek_encryption_limit) {
    return absl::OkStatus();
  }
  if (dynamic_cast<RotatableKekSource*>(&kek_) == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "KEK version ", current, " of ", kek_.Describe(),
        " has reached its limit of ", options_.kek_encryption_limit,
        " encryptions; add a new KEK version to the source and restart the "
        "vault"));
  }
  absl::MutexLock lock(&rotate_mu_);
  CERTPLANE_ASSIGN_OR_RETURN(int now_current, CurrentKekVersion());
  if (now_current != current) return absl::OkStatus();  // Rotated meanwhile.
  log::Warning("vault: KEK version reached its encryption limit; rotating",
               {{"kek_version", current},
                {"encryptions", it->encryption_count},
                {"limit", options_.kek_encryption_limit}});
  return RotateLocked(kSystemIdentity, "").status();
}

absl::StatusOr<int> VaultService::RotateLocked(absl::string_view identity,
                                               absl::string_view request_id) {
  auto* rotatable = dynamic_cast<RotatableKekSource*>(&kek_);
  if (rotatable == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "KEK source ", kek_.Describe(),
        " cannot create versions; add a version to it and restart the "
        "vault"));
  }
  CERTPLANE_ASSIGN_OR_RETURN(int version, rotatable->CreateVersion());
  absl::Time now = clock_();
  CERTPLANE_RETURN_IF_ERROR(store_.AddKekVersion(
      version, now,
      AuditRecord{now, std::string(identity), "RotateKek", "", "OK",
                  absl::StrCat("created KEK version ", version, " of ",
                               kek_.Describe(), "; rewrapping data keys"),
                  std::string(request_id)}));
  opened_keys_.Clear();
  log::Info("vault: KEK rotated",
            {{"kek_version", version}, {"source", kek_.Describe()}});
  RequestRewrap();
  return version;
}

absl::StatusOr<v1::KekStatus> VaultService::BuildKekStatus() {
  v1::KekStatus status;
  status.set_source(kek_.Describe());
  CERTPLANE_ASSIGN_OR_RETURN(int current, CurrentKekVersion());
  status.set_current_version(current);
  CERTPLANE_ASSIGN_OR_RETURN(std::vector<KekVersionRecord> stored,
                             store_.KekVersions());
  bool old_keys_left = false;
  int64_t to_rewrap = 0;
  for (const KekVersionRecord& record : stored) {
    v1::KekVersion* version = status.add_versions();
    version->set_version(record.version);
    SetTimestamp(record.create_time, version->mutable_create_time());
    version->set_encryption_count(record.encryption_count);
    version->set_wrapped_key_count(record.wrapped_key_count);
    metrics_.SetKekEncryptions(record.version, record.encryption_count);
    if (record.version < current && record.wrapped_key_count > 0) {
      old_keys_left = true;
      to_rewrap += record.wrapped_key_count;
    }
  }
  metrics_.SetKeysToRewrap(to_rewrap);
  bool running;
  {
    absl::MutexLock lock(&mu_);
    running = rewrap_running_;
  }
  status.set_rewrap_in_progress(old_keys_left || running);
  return status;
}

// ---------------------------------------------------------------------------
// Rewrap worker.

void VaultService::RequestRewrap() {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  rewrap_requested_ = true;
  if (rewrap_running_) return;
  if (worker_.joinable()) worker_.join();  // A finished worker.
  rewrap_running_ = true;
  worker_ = std::thread([this] { RewrapWorker(); });
}

void VaultService::RewrapWorker() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_ || !rewrap_requested_) {
        rewrap_running_ = false;
        return;
      }
      rewrap_requested_ = false;
    }
    absl::Status status = RewrapAll();
    if (!status.ok()) {
      log::Warning("vault: rewrap batch failed; retrying",
                   {{"error", status.ToString()}});
      absl::MutexLock lock(&mu_);
      rewrap_requested_ = true;
      mu_.AwaitWithTimeout(absl::Condition(&stopping_),
                           options_.rewrap_retry_backoff);
    }
  }
}

absl::Status VaultService::RewrapAll() {
  CERTPLANE_ASSIGN_OR_RETURN(int current, CurrentKekVersion());
  absl::flat_hash_set<std::string> skipped;
  int64_t rewrapped = 0;
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return absl::OkStatus();
    }
    int limit = static_cast<int>(std::min<size_t>(
        static_cast<size_t>(options_.rewrap_batch_size) + skipped.size(),
        kMaxPageSize));
    CERTPLANE_ASSIGN_OR_RETURN(std::vector<KeyRecord> batch,
                               store_.KeysWrappedBelow(current, limit));
    int considered = 0;
    for (const KeyRecord& record : batch) {
      if (skipped.contains(record.key_id)) continue;
      ++considered;
      absl::StatusOr<std::string> wrapped = envelope_.Rewrap(record, current);
      if (!wrapped.ok()) {
        // Tampered or unopenable: leave the row as it is, for people to
        // look at; it keeps failing with DATA_LOSS when used.
        log::Error("vault: cannot rewrap data key",
                   {{"key_id", record.key_id},
                    {"kek_version", record.kek_version},
                    {"error", wrapped.status().ToString()}});
        metrics_.CountRewrapFailure();
        skipped.insert(record.key_id);
        continue;
      }
      absl::Status status = store_.ReplaceWrappedDek(
          record.key_id, record.kek_version, current, *wrapped);
      if (status.code() == absl::StatusCode::kFailedPrecondition) {
        skipped.insert(record.key_id);  // Changed meanwhile (destroyed).
        continue;
      }
      CERTPLANE_RETURN_IF_ERROR(status);
      ++rewrapped;
      metrics_.CountRewrapped();
    }
    if (considered == 0) break;
    // A short batch held every key below `current`: all are handled.
    if (static_cast<int>(batch.size()) < limit) break;
  }
  log::Info("vault: rewrap finished", {{"kek_version", current},
                                       {"rewrapped", rewrapped},
                                       {"not_rewrapped", skipped.size()}});
  if (rewrapped > 0 || !skipped.empty()) {
    absl::Time now = clock_();
    absl::Status audit = store_.AppendAudit(AuditRecord{
        now, kSystemIdentity, "RewrapKeys", "",
        skipped.empty() ? "OK" : "DATA_LOSS",
        absl::StrCat("rewrapped ", rewrapped, " data keys under KEK version ",
                     current, "; ", skipped.size(), " could not be rewrapped"),
        ""});
    if (!audit.ok()) {
      log::Warning("vault: cannot audit rewrap", {{"error", audit.ToString()}});
    }
  }
  metrics_.SetKeysToRewrap(static_cast<int64_t>(skipped.size()));
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Common call handling.

AuditRecord VaultService::Audit(const Call& call, absl::string_view result,
                                absl::string_view detail) const {
  return AuditRecord{
      clock_(),       call.identity,       call.rpc,
      call.key_id,    std::string(result), TruncatedDetail(detail),
      call.request_id};
}

grpc::Status VaultService::Handle(grpc::ServerContext* context,
                                  absl::string_view rpc, Operation operation,
                                  absl::string_view request_id, Body body) {
  Call call;
  call.rpc = std::string(rpc);
  call.request_id = server::RequestId(*context);
  if (call.request_id.empty()) call.request_id = std::string(request_id);

  absl::Status status;
  absl::StatusOr<std::vector<std::string>> identities =
      CallerIdentities(*context, options_.allow_development_identity);
  if (!identities.ok()) {
    call.identity = "(unauthenticated)";
    status = identities.status();
  } else {
    call.identity = absl::StrJoin(*identities, ",");
    if (!policy_.Allows(*identities, operation)) {
      status = absl::PermissionDeniedError(
          absl::StrCat("caller \"", call.identity, "\" may not ",
                       OperationName(operation), " keys (vault policy)"));
    } else {
      status = body(call);
    }
  }
  if (!status.ok()) {
    absl::Status audit = store_.AppendAudit(
        Audit(call, absl::StatusCodeToString(status.code()), status.message()));
    if (!audit.ok()) {
      log::Warning("vault: cannot audit a failed call",
                   {{"rpc", call.rpc}, {"error", audit.ToString()}});
    }
  }
  metrics_.CountOperation(rpc, status.code());
  return ToGrpcStatus(status);
}

absl::StatusOr<std::optional<KeyRecord>> VaultService::FindRetry(
    Call& call, absl::string_view request_id, absl::string_view owner,
    absl::string_view origin,
    absl::FunctionRef<bool(const KeyRecord&)> same_request) {
  if (request_id.empty()) return std::nullopt;
  CERTPLANE_ASSIGN_OR_RETURN(std::optional<KeyRecord> existing,
                             store_.FindByRequestId(request_id));
  if (!existing.has_value()) return std::nullopt;
  if (existing->owner != owner) {
    // The caller may act for its own owner only: another owner's key is
    // not named.
    return absl::AlreadyExistsError(absl::StrCat(
        "request_id: ", Quote(request_id),
        " was already used for another owner's key; use a new request_id"));
  }
  if (existing->origin != origin || !same_request(*existing)) {
    return absl::AlreadyExistsError(absl::StrCat(
        "request_id: ", Quote(request_id), " was already used for key ",
        existing->key_id, " with a different request; use a new request_id"));
  }
  call.key_id = existing->key_id;
  CERTPLANE_RETURN_IF_ERROR(store_.AppendAudit(Audit(
      call, "OK", "retry of an earlier request_id; returned the same key")));
  return existing;
}

absl::StatusOr<KeyRecord> VaultService::SealNewKey(
    const crypto::PrivateKey& key, absl::string_view owner,
    const google::protobuf::Map<std::string, std::string>& labels,
    absl::string_view origin, absl::string_view request_id) {
  KeyRecord record;
  CERTPLANE_ASSIGN_OR_RETURN(record.key_id, NewKeyId());
  record.version = 1;
  record.owner = std::string(owner);
  record.labels = {labels.begin(), labels.end()};
  crypto::PublicKey public_key = key.public_key();
  crypto::KeyInfo info = public_key.info();
  record.algorithm = std::string(crypto::KeyAlgorithmName(info.algorithm));
  record.bits = info.bits;
  record.curve = info.curve;
  record.public_key_der = public_key.ToDer();
  record.spki_sha256 = crypto::HexEncode(public_key.SpkiSha256());
  record.state = KeyState::kActive;
  record.origin = std::string(origin);
  record.request_id = std::string(request_id);
  record.create_time = StoredTime(clock_());
  CERTPLANE_ASSIGN_OR_RETURN(
      SealedKey sealed,
      envelope_.Seal(key, record.key_id, record.version, record.owner));
  record.sealed_key = std::move(sealed.sealed_key);
  record.wrapped_dek = std::move(sealed.wrapped_dek);
  record.kek_version = sealed.kek_version;
  return record;
}

absl::StatusOr<KeyRecord> VaultService::InsertOrFindIdempotent(
    Call& call, KeyRecord record, absl::string_view detail) {
  call.key_id = record.key_id;
  absl::Status status = store_.InsertKey(record, Audit(call, "OK", detail));
  if (status.ok()) return record;
  if (status.code() == absl::StatusCode::kAlreadyExists &&
      !record.request_id.empty()) {
    // A concurrent retry with the same request_id won the race.
    CERTPLANE_ASSIGN_OR_RETURN(
        std::optional<KeyRecord> existing,
        FindRetry(call, record.request_id, record.owner, record.origin,
                  [&](const KeyRecord& other) {
                    return other.algorithm == record.algorithm &&
                           other.bits == record.bits &&
                           other.curve == record.curve;
                  }));
    if (existing.has_value()) return *std::move(existing);
  }
  return status;
}

absl::StatusOr<KeyRecord> VaultService::LoadActiveKey(Call& call,
                                                      absl::string_view name) {
  CERTPLANE_ASSIGN_OR_RETURN(call.key_id, ParseKeyName(name));
  CERTPLANE_ASSIGN_OR_RETURN(KeyRecord record, store_.GetKey(call.key_id));
  if (record.state != KeyState::kActive) {
    return absl::FailedPreconditionError(absl::StrCat(
        "key ", record.key_id,
        " is destroyed (crypto-shredded) and can no longer be used"));
  }
  return record;
}

// ---------------------------------------------------------------------------
// Handlers.

grpc::Status VaultService::GenerateKey(grpc::ServerContext* context,
                                       const v1::GenerateKeyRequest* request,
                                       v1::Key* response) {
  return Handle(
      context, "GenerateKey", Operation::kGenerate, request->request_id(),
      [&](Call& call) -> absl::Status {
        CERTPLANE_ASSIGN_OR_RETURN(crypto::KeyType type,
                                   KeyTypeFromProto(request->spec().type()));
        CERTPLANE_RETURN_IF_ERROR(ValidateOwner(request->owner()));
        CERTPLANE_RETURN_IF_ERROR(ValidateLabels(request->labels()));
        CERTPLANE_RETURN_IF_ERROR(ValidateRequestId(request->request_id()));
        CERTPLANE_ASSIGN_OR_RETURN(
            std::optional<KeyRecord> existing,
            FindRetry(call, request->request_id(), request->owner(),
                      "generated", [&](const KeyRecord& record) {
                        return RecordIsOfType(record, type);
                      }));
        if (existing.has_value()) {
          CERTPLANE_ASSIGN_OR_RETURN(*response, KeyToProto(*existing));
          return absl::OkStatus();
        }
        CERTPLANE_RETURN_IF_ERROR(EnsureEncryptionBudget());
        CERTPLANE_ASSIGN_OR_RETURN(crypto::PrivateKey key,
                                   crypto::PrivateKey::Generate(type));
        // Seal and insert under one KEK version: a rotation waits for us.
        absl::ReaderMutexLock rotation(&rotate_mu_);
        CERTPLANE_ASSIGN_OR_RETURN(
            KeyRecord record,
            SealNewKey(key, request->owner(), request->labels(), "generated",
                       request->request_id()));
        const std::string sealed_id = record.key_id;
        CERTPLANE_ASSIGN_OR_RETURN(
            record, InsertOrFindIdempotent(
                        call, std::move(record),
                        absl::StrCat("generated ", crypto::KeyTypeName(type),
                                     " for owner ", request->owner())));
        if (record.key_id == sealed_id) {
          // Its CSR usually follows at once.
          opened_keys_.Put(
              record,
              std::make_shared<const crypto::PrivateKey>(std::move(key)),
              absl::Now());
        }
        CERTPLANE_ASSIGN_OR_RETURN(*response, KeyToProto(record));
        return absl::OkStatus();
      });
}

grpc::Status VaultService::ImportKey(grpc::ServerContext* context,
                                     const v1::ImportKeyRequest* request,
                                     v1::Key* response) {
  return Handle(
      context, "ImportKey", Operation::kImport, request->request_id(),
      [&](Call& call) -> absl::Status {
        if (request->data().empty()) {
          return absl::InvalidArgumentError(
              "data: required (the key file's bytes)");
        }
        if (request->data().size() > kMaxImportBytes) {
          return absl::InvalidArgumentError(
              absl::StrCat("data: ", request->data().size(), " bytes; at most ",
                           kMaxImportBytes, " are accepted"));
        }
        CERTPLANE_RETURN_IF_ERROR(ValidateOwner(request->owner()));
        CERTPLANE_RETURN_IF_ERROR(ValidateLabels(request->labels()));
        CERTPLANE_RETURN_IF_ERROR(ValidateRequestId(request->request_id()));
        std::optional<absl::string_view> password;
        if (!request->password().empty()) password = request->password();

        absl::StatusOr<crypto::ParsedBundle> bundle;
        switch (request->format()) {
          case v1::KEY_FORMAT_UNSPECIFIED:
            bundle = crypto::ReadBundle(request->data(), password);
            break;
          case v1::PKCS8_PEM:
          case v1::ENCRYPTED_PKCS8_PEM:
          case v1::TRADITIONAL_PEM:
            bundle = crypto::ReadPem(request->data(), password);
            break;
          case v1::PKCS12:
            bundle = crypto::ReadPkcs12(request->data(), password);
            break;
          case v1::PKCS8_DER:
          case v1::ENCRYPTED_PKCS8_DER: {
            absl::StatusOr<crypto::PrivateKey> key =
                crypto::PrivateKey::FromDer(request->data(), password);
            if (!key.ok()) {
              bundle = key.status();
            } else {
              bundle = crypto::ParsedBundle{};
              bundle->format = crypto::Format::kDer;
              bundle->keys.push_back(*std::move(key));
            }
            break;
          }
          default:
            return absl::InvalidArgumentError(absl::StrCat(
                "format: ", request->format(), " is not a known KeyFormat"));
        }
        if (!bundle.ok()) {
          if (bundle.status().code() == absl::StatusCode::kInvalidArgument) {
            return absl::InvalidArgumentError(
                absl::StrCat("data: ", bundle.status().message()));
          }
          return bundle.status();
        }
        if (bundle->keys.size() != 1) {
          return absl::InvalidArgumentError(
              absl::StrCat("data: holds ", bundle->keys.size(),
                           " private keys; exactly one is required"));
        }
        const crypto::PrivateKey& key = bundle->keys.front();
        CERTPLANE_RETURN_IF_ERROR(CheckImportableKey(key.info()));
        const std::string public_der = key.public_key().ToDer();
        CERTPLANE_ASSIGN_OR_RETURN(
            std::optional<KeyRecord> existing,
            FindRetry(call, request->request_id(), request->owner(), "imported",
                      [&](const KeyRecord& record) {
                        return record.public_key_der == public_der;
                      }));
        if (existing.has_value()) {
          CERTPLANE_ASSIGN_OR_RETURN(*response, KeyToProto(*existing));
          return absl::OkStatus();
        }
        CERTPLANE_RETURN_IF_ERROR(EnsureEncryptionBudget());
        absl::ReaderMutexLock rotation(&rotate_mu_);
        CERTPLANE_ASSIGN_OR_RETURN(
            KeyRecord record,
            SealNewKey(key, request->owner(), request->labels(), "imported",
                       request->request_id()));
        CERTPLANE_ASSIGN_OR_RETURN(
            record, InsertOrFindIdempotent(
                        call, std::move(record),
                        absl::StrCat("imported ", record.algorithm, " key (",
                                     crypto::FormatName(bundle->format),
                                     ") for owner ", request->owner())));
        CERTPLANE_ASSIGN_OR_RETURN(*response, KeyToProto(record));
        return absl::OkStatus();
      });
}

grpc::Status VaultService::GetKey(grpc::ServerContext* context,
                                  const v1::GetKeyRequest* request,
                                  v1::Key* response) {
  return Handle(
      context, "GetKey", Operation::kGet, "", [&](Call& call) -> absl::Status {
        CERTPLANE_ASSIGN_OR_RETURN(call.key_id, ParseKeyName(request->name()));
        CERTPLANE_ASSIGN_OR_RETURN(KeyRecord record,
                                   store_.GetKey(call.key_id));
        CERTPLANE_ASSIGN_OR_RETURN(v1::Key key, KeyToProto(record));
        CERTPLANE_RETURN_IF_ERROR(
            store_.AppendAudit(Audit(call, "OK", "metadata read")));
        *response = std::move(key);
        return absl::OkStatus();
      });
}

grpc::Status VaultService::ListKeys(grpc::ServerContext* context,
                                    const v1::ListKeysRequest* request,
                                    v1::ListKeysResponse* response) {
  return Handle(
      context, "ListKeys", Operation::kList, "",
      [&](Call& call) -> absl::Status {
        if (request->page_size() < 0) {
          return absl::InvalidArgumentError("page_size: must not be negative");
        }
        int page_size = request->page_size() == 0
                            ? kDefaultPageSize
                            : std::min(request->page_size(), kMaxPageSize);
        CERTPLANE_ASSIGN_OR_RETURN(KeyFilter filter,
                                   ParseFilter(request->filter()));
        absl::StatusOr<KeyPage> page =
            store_.ListKeys(filter, page_size, request->page_token());
        if (!page.ok()) {
          if (page.status().code() == absl::StatusCode::kInvalidArgument) {
            return absl::InvalidArgumentError(
                absl::StrCat("page_token: ", page.status().message()));
          }
          return page.status();
        }
        v1::ListKeysResponse result;
        for (const KeyRecord& record : page->keys) {
          CERTPLANE_ASSIGN_OR_RETURN(*result.add_keys(), KeyToProto(record));
        }
        result.set_next_page_token(page->next_page_token);
        CERTPLANE_RETURN_IF_ERROR(store_.AppendAudit(
            Audit(call, "OK",
                  absl::StrCat("listed ", page->keys.size(), " keys; filter ",
                               Quote(request->filter())))));
        *response = std::move(result);
        return absl::OkStatus();
      });
}

grpc::Status VaultService::DeleteKey(grpc::ServerContext* context,
                                     const v1::DeleteKeyRequest* request,
                                     v1::Key* response) {
  return Handle(context, "DeleteKey", Operation::kDelete, "",
                [&](Call& call) -> absl::Status {
                  CERTPLANE_ASSIGN_OR_RETURN(call.key_id,
                                             ParseKeyName(request->name()));
                  CERTPLANE_ASSIGN_OR_RETURN(KeyRecord record,
                                             store_.GetKey(call.key_id));
                  absl::Time now = StoredTime(clock_());
                  CERTPLANE_RETURN_IF_ERROR(store_.DestroyKey(
                      call.key_id, now,
                      Audit(call, "OK",
                            "crypto-shredded: sealed key and wrapped data key "
                            "destroyed")));
                  opened_keys_.Forget(call.key_id);
                  record.state = KeyState::kDestroyed;
                  record.destroy_time = now;
                  record.sealed_key.clear();
                  record.wrapped_dek.clear();
                  CERTPLANE_ASSIGN_OR_RETURN(*response, KeyToProto(record));
                  return absl::OkStatus();
                });
}

grpc::Status VaultService::CreateCsr(grpc::ServerContext* context,
                                     const v1::CreateCsrRequest* request,
                                     v1::CreateCsrResponse* response) {
  return Handle(
      context, "CreateCsr", Operation::kCreateCsr, "",
      [&](Call& call) -> absl::Status {
        CERTPLANE_ASSIGN_OR_RETURN(call.key_id, ParseKeyName(request->name()));
        CERTPLANE_ASSIGN_OR_RETURN(crypto::CsrOptions options,
                                   CsrOptionsFromProto(*request));
        CERTPLANE_ASSIGN_OR_RETURN(KeyRecord record,
                                   LoadActiveKey(call, request->name()));
        CERTPLANE_ASSIGN_OR_RETURN(
            std::shared_ptr<const crypto::PrivateKey> key, OpenKey(record));
        CERTPLANE_ASSIGN_OR_RETURN(crypto::CertificateRequest csr,
                                   crypto::CreateCsr(*key, options));
        CERTPLANE_RETURN_IF_ERROR(store_.AppendAudit(Audit(
            call, "OK",
            absl::StrCat("CSR for subject ", Quote(csr.subject().ToString()),
                         " with ", csr.sans().size(), " SANs"))));
        response->set_csr_pem(csr.ToPem());
        return absl::OkStatus();
      });
}

grpc::Status VaultService::Sign(grpc::ServerContext* context,
                                const v1::SignRequest* request,
                                v1::SignResponse* response) {
  return Handle(
      context, "Sign", Operation::kSign, "", [&](Call& call) -> absl::Status {
        CERTPLANE_ASSIGN_OR_RETURN(call.key_id, ParseKeyName(request->name()));
        std::string digest =
            request->digest().empty() ? "sha256" : request->digest();
        if (digest != "sha256" && digest != "sha384" && digest != "sha512") {
          return absl::InvalidArgumentError(
              absl::StrCat("digest: ", Quote(request->digest()),
                           " is not sha256, sha384 or sha512"));
        }
        if (request->input_case() == v1::SignRequest::INPUT_NOT_SET) {
          return absl::InvalidArgumentError(
              "data or digest_value: one of them is required");
        }
        CERTPLANE_ASSIGN_OR_RETURN(KeyRecord record,
                                   LoadActiveKey(call, request->name()));
        if (request->input_case() == v1::SignRequest::kDigestValue) {
          if (record.algorithm == "Ed25519") {
            return absl::InvalidArgumentError(
                "digest_value: Ed25519 signs the message itself; send data");
          }
          size_t expected = digest == "sha256"   ? 32
                            : digest == "sha384" ? 48
                                                 : 64;
          if (request->digest_value().size() != expected) {
            return absl::InvalidArgumentError(
                absl::StrCat("digest_value: ", request->digest_value().size(),
                             " bytes; a ", digest, " digest has ", expected));
          }
        }
        CERTPLANE_ASSIGN_OR_RETURN(
            std::shared_ptr<const crypto::PrivateKey> key, OpenKey(record));
        std::string signature;
        std::string what;
        if (request->input_case() == v1::SignRequest::kDigestValue) {
          absl::StatusOr<std::string> signed_digest =
              key->SignDigest(request->digest_value(), digest);
          if (!signed_digest.ok()) {
            if (signed_digest.status().code() !=
                absl::StatusCode::kInvalidArgument) {
              return signed_digest.status();
            }
            return absl::InvalidArgumentError(absl::StrCat(
                "digest_value: ", signed_digest.status().message()));
          }
          signature = *std::move(signed_digest);
          what = absl::StrCat("a precomputed ", digest, " digest");
        } else {
          CERTPLANE_ASSIGN_OR_RETURN(signature,
                                     key->Sign(request->data(), digest));
          what = absl::StrCat(request->data().size(), " bytes");
        }
        std::string algorithm = SignatureAlgorithm(record.algorithm, digest);
        CERTPLANE_RETURN_IF_ERROR(store_.AppendAudit(Audit(
            call, "OK", absl::StrCat("signed ", what, " with ", algorithm))));
        response->set_signature(std::move(signature));
        response->set_signature_algorithm(std::move(algorithm));
        return absl::OkStatus();
      });
}

grpc::Status VaultService::ExportKey(grpc::ServerContext* context,
                                     const v1::ExportKeyRequest* request,
                                     v1::ExportKeyResponse* response) {
  return Handle(
      context, "ExportKey", Operation::kExport, "",
      [&](Call& call) -> absl::Status {
        CERTPLANE_ASSIGN_OR_RETURN(call.key_id, ParseKeyName(request->name()));
        std::optional<crypto::PublicKey> recipient;
        std::vector<crypto::Certificate> chain;
        std::string detail;
        switch (request->format()) {
          case v1::EXPORT_ENCRYPTED_PKCS8_PEM:
            CERTPLANE_RETURN_IF_ERROR(
                ValidateExportPassword(request->password()));
            detail = "encrypted PKCS#8 PEM";
            break;
          case v1::EXPORT_PKCS12: {
            CERTPLANE_RETURN_IF_ERROR(
                ValidateExportPassword(request->password()));
            if (!request->certificate_pem().empty()) {
              absl::StatusOr<crypto::ParsedBundle> bundle =
                  crypto::ReadPem(request->certificate_pem());
              if (!bundle.ok()) {
                return absl::InvalidArgumentError(absl::StrCat(
                    "certificate_pem: ", bundle.status().message()));
              }
              if (!bundle->keys.empty() || bundle->certificates.empty()) {
                return absl::InvalidArgumentError(
                    "certificate_pem: must hold certificates only");
              }
              chain = std::move(bundle->certificates);
            }
            detail =
                absl::StrCat("PKCS#12 with ", chain.size(), " certificates");
            break;
          }
          case v1::EXPORT_WRAPPED_TO_RECIPIENT: {
            absl::StatusOr<crypto::PublicKey> key =
                crypto::PublicKey::FromPem(request->recipient_public_key_pem());
            if (!key.ok()) {
              return absl::InvalidArgumentError(absl::StrCat(
                  "recipient_public_key_pem: ", key.status().message()));
            }
            crypto::KeyInfo info = key->info();
            if (info.algorithm != crypto::KeyAlgorithm::kEcdsa ||
                info.curve != "P-256" || info.explicit_curve_parameters) {
              return absl::InvalidArgumentError(
                  "recipient_public_key_pem: must be an ECDSA P-256 public "
                  "key");
            }
            detail = absl::StrCat("wrapped to recipient key sha256:",
                                  crypto::HexEncode(key->SpkiSha256()));
            recipient = *std::move(key);
            break;
          }
          default:
            return absl::InvalidArgumentError(
                "format: choose EXPORT_ENCRYPTED_PKCS8_PEM, EXPORT_PKCS12 or "
                "EXPORT_WRAPPED_TO_RECIPIENT");
        }
        CERTPLANE_ASSIGN_OR_RETURN(KeyRecord record,
                                   LoadActiveKey(call, request->name()));
        CERTPLANE_ASSIGN_OR_RETURN(crypto::PrivateKey key,
                                   envelope_.Open(record));
        std::string data;
        switch (request->format()) {
          case v1::EXPORT_ENCRYPTED_PKCS8_PEM: {
            CERTPLANE_ASSIGN_OR_RETURN(
                crypto::SecretBytes pem,
                key.ToEncryptedPkcs8Pem(request->password()));
            data.assign(pem.view().data(), pem.view().size());
            break;
          }
          case v1::EXPORT_PKCS12: {
            crypto::Pkcs12Options pkcs12_options;
            pkcs12_options.friendly_name = record.key_id;
            absl::StatusOr<std::string> pfx = crypto::WritePkcs12(
                &key, chain, request->password(), pkcs12_options);
            if (!pfx.ok()) {
              if (pfx.status().code() == absl::StatusCode::kInvalidArgument) {
                return absl::InvalidArgumentError(
                    absl::StrCat("certificate_pem: ", pfx.status().message()));
              }
              return pfx.status();
            }
            data = *std::move(pfx);
            break;
          }
          default: {
            CERTPLANE_ASSIGN_OR_RETURN(crypto::SecretBytes pkcs8,
                                       key.ToPkcs8Der());
            CERTPLANE_ASSIGN_OR_RETURN(
                data, crypto::EciesSeal(*recipient, pkcs8.view(),
                                        ExportAssociatedData(record.key_id)));
            break;
          }
        }
        CERTPLANE_RETURN_IF_ERROR(store_.AppendAudit(
            Audit(call, "OK", absl::StrCat("exported as ", detail))));
        response->set_data(std::move(data));
        response->set_format(request->format());
        return absl::OkStatus();
      });
}

grpc::Status VaultService::RotateKek(grpc::ServerContext* context,
                                     const v1::RotateKekRequest* request,
                                     v1::KekStatus* response) {
  return Handle(context, "RotateKek", Operation::kRotate, "",
                [&](Call& call) -> absl::Status {
                  {
                    absl::MutexLock lock(&rotate_mu_);
                    CERTPLANE_RETURN_IF_ERROR(
                        RotateLocked(call.identity, call.request_id).status());
                  }
                  CERTPLANE_ASSIGN_OR_RETURN(*response, BuildKekStatus());
                  return absl::OkStatus();
                });
}

grpc::Status VaultService::GetKekStatus(grpc::ServerContext* context,
                                        const v1::GetKekStatusRequest* request,
                                        v1::KekStatus* response) {
  return Handle(context, "GetKekStatus", Operation::kGet, "",
                [&](Call& call) -> absl::Status {
                  CERTPLANE_ASSIGN_OR_RETURN(v1::KekStatus status,
                                             BuildKekStatus());
                  CERTPLANE_RETURN_IF_ERROR(
                      store_.AppendAudit(Audit(call, "OK", "KEK status read")));
                  *response = std::move(status);
                  return absl::OkStatus();
                });
}

}  // namespace certplane::vault
