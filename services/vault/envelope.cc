#include "services/vault/envelope.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "libs/crypto/aead.h"
#include "libs/status/status_macros.h"

namespace certplane::vault {
namespace {

void AppendField(std::string& out, absl::string_view field) {
  absl::StrAppend(&out, field.size(), ":", field);
}

absl::Status DataLoss(absl::string_view key_id, absl::string_view what) {
  return absl::DataLossError(absl::StrCat(
      "key ", key_id, ": ", what,
      " does not authenticate; the stored record was altered or belongs to "
      "another key"));
}

}  // namespace

std::string KeyAssociatedData(absl::string_view key_id, int64_t version,
                              absl::string_view owner) {
  std::string ad(kKeyAssociatedDataPrefix);
  AppendField(ad, key_id);
  ad.push_back('|');
  AppendField(ad, absl::StrCat(version));
  ad.push_back('|');
  AppendField(ad, owner);
  return ad;
}

absl::StatusOr<SealedKey> Envelope::Seal(const crypto::PrivateKey& key,
                                         absl::string_view key_id,
                                         int64_t version,
                                         absl::string_view owner) const {
  CERTPLANE_ASSIGN_OR_RETURN(std::vector<int> versions, kek_.Versions());
  if (versions.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("KEK source ", kek_.Describe(), " has no versions"));
  }
  const std::string ad = KeyAssociatedData(key_id, version, owner);
  CERTPLANE_ASSIGN_OR_RETURN(crypto::SecretBytes dek,
                             crypto::Aes256Gcm::GenerateKey());
  CERTPLANE_ASSIGN_OR_RETURN(crypto::Aes256Gcm cipher,
                             crypto::Aes256Gcm::Create(dek));
  CERTPLANE_ASSIGN_OR_RETURN(crypto::SecretBytes pkcs8, key.ToPkcs8Der());
  SealedKey sealed;
  sealed.kek_version = versions.back();
  CERTPLANE_ASSIGN_OR_RETURN(sealed.sealed_key, cipher.Seal(pkcs8.view(), ad));
  CERTPLANE_ASSIGN_OR_RETURN(sealed.wrapped_dek,
                             kek_.Wrap(sealed.kek_version, dek, ad));
  return sealed;
}

absl::StatusOr<crypto::SecretBytes> Envelope::UnwrapDek(
    const KeyRecord& record, absl::string_view ad) const {
  if (record.state == KeyState::kDestroyed || record.sealed_key.empty() ||
      record.wrapped_dek.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "key ", record.key_id, " is destroyed; its material no longer exists"));
  }
  absl::StatusOr<crypto::SecretBytes> dek =
      kek_.Unwrap(record.kek_version, record.wrapped_dek, ad);
  if (!dek.ok()) {
    // A source reports tampering as DATA_LOSS; a blob it cannot even parse
    // is tampering too. Other codes (a missing version, an unreachable
    // token) pass through.
    if (dek.status().code() == absl::StatusCode::kDataLoss ||
        dek.status().code() == absl::StatusCode::kInvalidArgument) {
      return DataLoss(record.key_id, "wrapped data key");
    }
    return dek.status();
  }
  if (dek->size() != crypto::Aes256Gcm::kKeySize) {
    return DataLoss(record.key_id, "wrapped data key");
  }
  return dek;
}

absl::StatusOr<crypto::PrivateKey> Envelope::Open(
    const KeyRecord& record) const {
  const std::string ad =
      KeyAssociatedData(record.key_id, record.version, record.owner);
  CERTPLANE_ASSIGN_OR_RETURN(crypto::SecretBytes dek, UnwrapDek(record, ad));
  absl::StatusOr<crypto::Aes256Gcm> cipher =
      crypto::Aes256Gcm::Create(std::move(dek));
  if (!cipher.ok()) return DataLoss(record.key_id, "wrapped data key");
  absl::StatusOr<crypto::SecretBytes> pkcs8 =
      cipher->Open(record.sealed_key, ad);
  if (!pkcs8.ok()) return DataLoss(record.key_id, "sealed key");
  absl::StatusOr<crypto::PrivateKey> key =
      crypto::PrivateKey::FromDer(pkcs8->view());
  if (!key.ok()) {
    return absl::DataLossError(
        absl::StrCat("key ", record.key_id,
                     ": sealed key authenticates but is not a "
                     "private key"));
  }
  if (key->public_key().ToDer() != record.public_key_der) {
    return absl::DataLossError(absl::StrCat(
        "key ", record.key_id,
        ": stored public key does not match the sealed private key"));
  }
  return key;
}

absl::StatusOr<std::string> Envelope::Rewrap(const KeyRecord& record,
                                             int new_kek_version) const {
  const std::string ad =
      KeyAssociatedData(record.key_id, record.version, record.owner);
  CERTPLANE_ASSIGN_OR_RETURN(crypto::SecretBytes dek, UnwrapDek(record, ad));
  // Refuse to carry a DEK forward that no longer opens its sealed key.
  CERTPLANE_ASSIGN_OR_RETURN(crypto::Aes256Gcm cipher,
                             crypto::Aes256Gcm::Create(dek));
  if (!cipher.Open(record.sealed_key, ad).ok()) {
    return DataLoss(record.key_id, "sealed key");
  }
  return kek_.Wrap(new_kek_version, dek, ad);
}

}  // namespace certplane::vault
