#include "services/vault/opened_key_cache.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "libs/crypto/key.h"

namespace certplane::vault {
namespace {

std::shared_ptr<const crypto::PrivateKey> NewKey() {
  return std::make_shared<const crypto::PrivateKey>(
      *crypto::PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
}

KeyRecord Record(const std::string& id) {
  KeyRecord record;
  record.key_id = id;
  record.version = 1;
  record.kek_version = 1;
  record.sealed_key = "sealed-" + id;
  record.wrapped_dek = "dek-" + id;
  record.public_key_der = "spki-" + id;
  return record;
}

const absl::Time kNow = absl::FromUnixSeconds(1'800'000'000);

TEST_CASE("FindsAKeyOnlyForTheRecordItWasOpenedFrom") {
  OpenedKeyCache cache({});
  auto key = NewKey();
  cache.Put(Record("a"), key, kNow);
  CHECK(cache.Find(Record("a"), kNow + absl::Seconds(1)) == key);
  CHECK(cache.Find(Record("b"), kNow) == nullptr);
  // A rewrap (new wrapped DEK, new KEK version) is a different record.
  KeyRecord rewrapped = Record("a");
  rewrapped.wrapped_dek = "dek-a-v2";
  rewrapped.kek_version = 2;
  CHECK(cache.Find(rewrapped, kNow) == nullptr);
  CHECK(cache.size() == 0);  // And the stale entry is gone.
  // Other sealed bytes, or another version: not the same record either.
  cache.Put(Record("a"), key, kNow);
  KeyRecord resealed = Record("a");
  resealed.sealed_key = "other";
  CHECK(cache.Find(resealed, kNow) == nullptr);
  cache.Put(Record("a"), key, kNow);
  KeyRecord next = Record("a");
  next.version = 2;
  CHECK(cache.Find(next, kNow) == nullptr);
}

TEST_CASE("ForgetsIdleKeysDestroyedKeysAndTheLeastRecentlyUsed") {
  OpenedKeyCache cache({.capacity = 2, .idle = absl::Minutes(5)});
  auto a = NewKey();
  auto b = NewKey();
  auto c = NewKey();
  cache.Put(Record("a"), a, kNow);
  CHECK(cache.Find(Record("a"), kNow + absl::Minutes(4)) == a);
  // Idle longer than 5 minutes since its last use: gone.
  CHECK(cache.Find(Record("a"), kNow + absl::Minutes(10)) == nullptr);

  cache.Put(Record("a"), a, kNow);
  cache.Put(Record("b"), b, kNow);
  CHECK(cache.Find(Record("a"), kNow) == a);  // a is now the most recent.
  cache.Put(Record("c"), c, kNow);            // b is evicted.
  CHECK(cache.size() == 2);
  CHECK(cache.Find(Record("b"), kNow) == nullptr);
  CHECK(cache.Find(Record("a"), kNow) == a);
  CHECK(cache.Find(Record("c"), kNow) == c);

  cache.Forget("a");
  CHECK(cache.Find(Record("a"), kNow) == nullptr);
  cache.Clear();
  CHECK(cache.size() == 0);

  OpenedKeyCache off({.capacity = 0});
  off.Put(Record("a"), a, kNow);
  CHECK(off.Find(Record("a"), kNow) == nullptr);
}

}  // namespace
}  // namespace certplane::vault
