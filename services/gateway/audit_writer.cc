#include "services/gateway/audit_writer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "libs/crypto/certificate.h"
#include "libs/server/json_log.h"
#include "libs/server/private_file.h"

namespace certplane::gateway {

absl::StatusOr<crypto::PrivateKey> LoadAuditKey(const std::string& path,
                                                bool create) {
  absl::StatusOr<crypto::SecretBytes> pem =
      server::ReadPrivateFile(path, "audit key file");
  if (absl::IsNotFound(pem.status()) && create) {
    absl::StatusOr<crypto::PrivateKey> key =
        crypto::PrivateKey::Generate(crypto::KeyType::kEd25519);
    if (!key.ok()) return key.status();
    absl::StatusOr<crypto::SecretBytes> out = key->ToPkcs8Pem();
    if (!out.ok()) return out.status();
    if (absl::Status s = server::WritePrivateFile(path, *out); !s.ok()) {
      return s;
    }
    log::Warning("gateway: created a new audit key", {{"path", path}});
    return key;
  }
  if (!pem.ok()) return pem.status();
  absl::StatusOr<crypto::PrivateKey> key =
      crypto::PrivateKey::FromPem(pem->view());
  if (!key.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("audit key file ", path, ": ", key.status().message()));
  }
  if (key->info().algorithm != crypto::KeyAlgorithm::kEd25519) {
    return absl::FailedPreconditionError(
        absl::StrCat("audit key file ", path, " must hold an Ed25519 key"));
  }
  return key;
}

AuditWriter::AuditWriter(GatewayStore& store, crypto::PrivateKey key,
                         AuditWriterOptions options,
                         std::function<absl::Time()> clock)
    : store_(store),
      key_(std::move(key)),
      public_key_der_(key_.public_key().ToDer()),
      key_id_(crypto::Sha256Hex(public_key_der_)),
      options_(options),
      clock_(std::move(clock)) {}

AuditWriter::~AuditWriter() { Stop(); }

void AuditWriter::Start() {
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { Run(); });
}

void AuditWriter::Stop() {
  if (stopped_) return;
  stopped_ = true;
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
  if (started_) {
    if (absl::Status s = CheckpointNow().status(); !s.ok()) {
      log::Error("gateway: final audit checkpoint failed",
                 {{"error", s.ToString()}});
    }
  }
}

void AuditWriter::Run() {
  while (!stop_.WaitForNotificationWithTimeout(options_.checkpoint_interval)) {
    if (absl::Status s = CheckpointNow().status(); !s.ok()) {
      log::Error("gateway: audit checkpoint failed", {{"error", s.ToString()}});
    }
  }
}

absl::StatusOr<audit::AuditRecord> AuditWriter::Append(
    audit::AuditRecord record) {
  record.time = clock_();
  return store_.AppendAudit(std::move(record));
}

absl::StatusOr<audit::Checkpoint> AuditWriter::CheckpointNow() {
  absl::MutexLock lock(&checkpoint_mu_);
  absl::StatusOr<uint64_t> size = store_.AuditSize();
  if (!size.ok()) return size.status();
  absl::StatusOr<std::optional<audit::Checkpoint>> latest =
      store_.LatestCheckpoint();
  if (!latest.ok()) return latest.status();
  if (latest->has_value() && (*latest)->tree_size == *size) return **latest;
  absl::StatusOr<std::string> root = store_.RootAt(*size);
  if (!root.ok()) return root.status();
  audit::Checkpoint c;
  c.tree_size = *size;
  c.root = *std::move(root);
  c.time = absl::FromUnixMicros(absl::ToUnixMicros(clock_()));
  c.key_id = key_id_;
  absl::StatusOr<std::string> signature =
      key_.Sign(audit::CheckpointText(c.tree_size, c.root, c.time));
  if (!signature.ok()) return signature.status();
  c.signature = *std::move(signature);
  if (absl::Status s = store_.InsertCheckpoint(c); !s.ok()) return s;
  return c;
}

}  // namespace certplane::gateway
