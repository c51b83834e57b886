// certplane's internal CA: a root and an intermediate whose private keys
// live in the vault, so signing goes through the vault's Sign and no key
// ever leaves it.
//
// Open() loads the issuer's CA from the store, or on the first start makes
// it: a root key and an intermediate key generated in the vault (request
// ids "issuance:ca:<issuer>:root" / ":intermediate", so a restart half way
// finds the same keys), a self-signed root (20 years, pathLen 1) and an
// intermediate it signs (10 years, pathLen 0), stored with CaStore::CreateCa
// so that replicas starting together all use the first one stored.
//
// Leaves: the CSR is checked with crypto::CheckCsrPolicy (Baseline
// Requirements key rules; public_trust from the issuer), then issued with
// the profile's EKUs, digitalSignature (and keyEncipherment for RSA), a
// 128-bit random serial, SKI/AKI, the CRL distribution point
// "<crl_base_url>/crl/<id>.crl" and AIA caIssuers "<crl_base_url>/ca/<id>.crt"
// when a base URL is configured. notBefore is `now` (whole seconds) and
// notAfter = notBefore + validity_days - 1 s.
//
// CRLs: the latest is kept in the store. CurrentCrl publishes a new one when
// none exists or the stored one is older than `crl_refresh`; Revoke records
// the revocation and publishes at once. CRL numbers come from the store's
// compare-and-set, so replicas never publish two CRLs with one number.
//
// Thread-safe.
#ifndef CERTPLANE_SERVICES_ISSUANCE_INTERNAL_CA_H_
#define CERTPLANE_SERVICES_ISSUANCE_INTERNAL_CA_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "certplane/issuance/v1/issuance.pb.h"
#include "libs/crypto/certificate.h"
#include "services/issuance/issuance_store.h"
#include "services/issuance/issuer.h"
#include "services/issuance/peers.h"

namespace certplane::issuance {

struct InternalCaOptions {
  absl::Duration crl_validity = absl::Hours(24 * 7);
  absl::Duration crl_refresh = absl::Hours(24);
  // The vault key owner of the CA keys.
  std::string key_owner = "issuance";
};

class InternalCa final : public Issuer {
 public:
  // `store` and `peers` must outlive the CA.
  static absl::StatusOr<std::unique_ptr<InternalCa>> Open(
      const v1::IssuerConfig& config, CaStore& store, Peers& peers,
      absl::Time now, InternalCaOptions options = {});

  const v1::Issuer& description() const override { return description_; }
  absl::StatusOr<std::optional<IssuedCertificate>> Submit(
      const CaSubmission& submission) override;
  absl::StatusOr<CrlSnapshot> Revoke(const std::string& serial_hex,
                                     const std::string& reason,
                                     const std::string& certificate_version,
                                     absl::Time now) override;
  absl::StatusOr<CrlSnapshot> CurrentCrl(absl::Time now) override;
  bool Issued(absl::string_view certificate_der) const override;
  std::string IssuingCertificateDer() const override {
    return intermediate_.der();
  }

  const crypto::Certificate& intermediate() const { return intermediate_; }
  const crypto::Certificate& root() const { return root_; }

 private:
  InternalCa(const v1::IssuerConfig& config, CaStore& store, Peers& peers,
             InternalCaOptions options, CaRecord record,
             crypto::Certificate root, crypto::Certificate intermediate);

  // Publishes CRL number stored + 1 (retrying when a replica got there
  // first), listing every revocation.
  absl::StatusOr<CrlSnapshot> Publish(absl::Time now);

  v1::IssuerConfig config_;
  CaStore& store_;
  Peers& peers_;
  InternalCaOptions options_;
  CaRecord record_;
  crypto::Certificate root_;
  crypto::Certificate intermediate_;
  v1::Issuer description_;
};

// "<base>/crl/<id>.crl" and "<base>/ca/<id>.crt", or "" without a base URL.
std::string CrlUrl(const v1::IssuerConfig& config);
std::string CaCertificateUrl(const v1::IssuerConfig& config);

}  // namespace certplane::issuance

#endif  // CERTPLANE_SERVICES_ISSUANCE_INTERNAL_CA_H_
