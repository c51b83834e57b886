// Writes the gateway's audit log: appends records through the store (which
// assigns indexes and hashes, gateway_store.h) and signs checkpoints of the
// tree with the audit key (Ed25519): every `checkpoint_interval` when the
// log grew, and on Stop().
//
// Thread-safe. Start() runs the checkpoint thread; the destructor stops it.
#ifndef CERTPLANE_SERVICES_GATEWAY_AUDIT_WRITER_H_
#define CERTPLANE_SERVICES_GATEWAY_AUDIT_WRITER_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "libs/audit/audit_log.h"
#include "libs/crypto/key.h"
#include "services/gateway/gateway_store.h"

namespace certplane::gateway {

// Reads the Ed25519 audit key (PKCS#8 PEM, mode 0600) from `path`; when it
// does not exist and `create` is set, makes one there first.
absl::StatusOr<crypto::PrivateKey> LoadAuditKey(const std::string& path,
                                                bool create);

struct AuditWriterOptions {
  absl::Duration checkpoint_interval = absl::Seconds(5);
};

class AuditWriter {
 public:
  AuditWriter(GatewayStore& store, crypto::PrivateKey key,
              AuditWriterOptions options, std::function<absl::Time()> clock);
  ~AuditWriter();  // Stop().

  void Start();
  // Signs a last checkpoint and stops the thread. Idempotent.
  void Stop();

  // Appends; the returned record has its index and hashes.
  absl::StatusOr<audit::AuditRecord> Append(audit::AuditRecord record);
  // Signs a checkpoint of the log as it is now, unless one of this size
  // exists. Returns it.
  absl::StatusOr<audit::Checkpoint> CheckpointNow();

  const std::string& key_id() const { return key_id_; }
  const std::string& public_key_der() const { return public_key_der_; }

 private:
  void Run();

  GatewayStore& store_;
  const crypto::PrivateKey key_;
  const std::string public_key_der_;
  const std::string key_id_;
  const AuditWriterOptions options_;
  const std::function<absl::Time()> clock_;
  absl::Mutex checkpoint_mu_;  // One signer at a time.
  absl::Notification stop_;
  std::thread thread_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace certplane::gateway

#endif  // CERTPLANE_SERVICES_GATEWAY_AUDIT_WRITER_H_
