#ifndef CERTPLANE_SERVICES_VAULT_OPENED_KEY_CACHE_H_
#define CERTPLANE_SERVICES_VAULT_OPENED_KEY_CACHE_H_

// A small, bounded set of recently opened private keys, so that a key used
// again within moments (the CA key for every certificate it signs, a new
// key for its CSR) is not unwrapped and decoded again: on OpenSSL 3.0 the
// PKCS#8 decode alone costs several million instructions.
//
// The keys stay in the vault's memory, which the vault locks (mlockall)
// and which holds each opened key anyway while it is used; an entry leaves
// after `idle` without use, when the cache is full (least recently used
// first), when its key is destroyed, and on every KEK change. An entry is
// used only for the exact stored record it was opened from (same version,
// sealed bytes, wrapped data key and KEK version), and callers still load
// the record and check its state on every request: the cache saves the
// unwrap, never a permission or a state check.

#include <cstddef>
#include <list>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "libs/crypto/key.h"
#include "services/vault/vault_store.h"

namespace certplane::vault {

class OpenedKeyCache {
 public:
  struct Options {
    size_t capacity = 1024;  // 0: cache nothing.
    absl::Duration idle = absl::Minutes(5);
  };

  explicit OpenedKeyCache(Options options) : options_(options) {}

  // The key opened from `record`, if it is here and fresh at `now`.
  std::shared_ptr<const crypto::PrivateKey> Find(const KeyRecord& record,
                                                 absl::Time now);
  void Put(const KeyRecord& record,
           std::shared_ptr<const crypto::PrivateKey> key, absl::Time now);
  // Drops every entry of `key_id`.
  void Forget(absl::string_view key_id);
  void Clear();

  size_t size() const;

 private:
  struct Entry {
    std::string key_id;
    std::string fingerprint;  // Of the record it was opened from.
    std::shared_ptr<const crypto::PrivateKey> key;
    absl::Time last_use;
  };
  using Lru = std::list<Entry>;  // Most recently used first.

  static std::string Fingerprint(const KeyRecord& record);

  const Options options_;
  mutable absl::Mutex mu_;
  Lru lru_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Lru::iterator> by_id_ ABSL_GUARDED_BY(mu_);
};

}  // namespace certplane::vault

#endif  // CERTPLANE_SERVICES_VAULT_OPENED_KEY_CACHE_H_
