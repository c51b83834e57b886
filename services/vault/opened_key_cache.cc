#include "services/vault/opened_key_cache.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace certplane::vault {

std::string OpenedKeyCache::Fingerprint(const KeyRecord& record) {
  // Length-prefixed, so no two records share a fingerprint.
  return absl::StrCat(record.version, "|", record.kek_version, "|",
                      record.sealed_key.size(), "|", record.sealed_key, "|",
                      record.wrapped_dek.size(), "|", record.wrapped_dek, "|",
                      record.public_key_der);
}

std::shared_ptr<const crypto::PrivateKey> OpenedKeyCache::Find(
    const KeyRecord& record, absl::Time now) {
  absl::MutexLock lock(&mu_);
  auto it = by_id_.find(record.key_id);
  if (it == by_id_.end()) return nullptr;
  Lru::iterator entry = it->second;
  if (now - entry->last_use > options_.idle ||
      entry->fingerprint != Fingerprint(record)) {
    lru_.erase(entry);
    by_id_.erase(it);
    return nullptr;
  }
  entry->last_use = now;
  lru_.splice(lru_.begin(), lru_, entry);
  return entry->key;
}

void OpenedKeyCache::Put(const KeyRecord& record,
                         std::shared_ptr<const crypto::PrivateKey> key,
                         absl::Time now) {
  if (options_.capacity == 0 || key == nullptr) return;
  absl::MutexLock lock(&mu_);
  if (auto it = by_id_.find(record.key_id); it != by_id_.end()) {
    lru_.erase(it->second);
    by_id_.erase(it);
  }
  lru_.push_front(
      Entry{record.key_id, Fingerprint(record), std::move(key), now});
  by_id_[record.key_id] = lru_.begin();
  while (lru_.size() > options_.capacity) {
    by_id_.erase(lru_.back().key_id);
    lru_.pop_back();
  }
}

void OpenedKeyCache::Forget(absl::string_view key_id) {
  absl::MutexLock lock(&mu_);
  if (auto it = by_id_.find(key_id); it != by_id_.end()) {
    lru_.erase(it->second);
    by_id_.erase(it);
  }
}

void OpenedKeyCache::Clear() {
  absl::MutexLock lock(&mu_);
  lru_.clear();
  by_id_.clear();
}

size_t OpenedKeyCache::size() const {
  absl::MutexLock lock(&mu_);
  return lru_.size();
}

}  // namespace certplane::vault
