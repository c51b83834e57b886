// From a CreateOrderRequest to the order to store: every check that needs
// neither the vault nor a CA, in one pure function, so CreateOrder's answers
// (and its validate_only preview) are tested without a server.
//
// Checks, each failing with the field and the rule:
//   issuer (exists in the configuration), profile (one of the issuer's) and
//   key type (one the profile allows; no Ed25519 for publicly trusted
//   issuers), subject (at most one CN) and SANs (at least one, syntax, no
//   repeats, at most 100, the CN among them), owner and environment names,
//   display name and request_id lengths, renew_before_days, the team's domain
//   allow-list, and the validity (profile and, for public issuers, the
//   Baseline Requirements limit on `now`). The approval rule decides the
//   initial state: APPROVED at once, or PENDING_APPROVAL needing N approvals.
//
// The order's `spec` is the request as it will be carried out (profile and
// validity resolved; request_id and validate_only cleared), serialized
// deterministically; `request_hash` is a hash of it, so a retry with the same
// request_id is recognized and a different request under it is refused.
//
// Thread safety: stateless functions.
#ifndef CERTPLANE_SERVICES_ISSUANCE_ORDER_PLAN_H_
#define CERTPLANE_SERVICES_ISSUANCE_ORDER_PLAN_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "certplane/inventory/v1/inventory.pb.h"
#include "certplane/issuance/v1/issuance.pb.h"
#include "services/issuance/issuance_store.h"

namespace certplane::issuance {

// The issuer "issuers/{id}" of `config`. INVALID_ARGUMENT for a malformed
// name, NOT_FOUND for an unknown issuer.
absl::StatusOr<const v1::IssuerConfig*> FindIssuer(
    const v1::IssuanceConfig& config, absl::string_view name);

// The issuer's profiles; when it lists none, tls-server, tls-client and
// tls-server-client with every key type, 90 days by default and 397 at most.
std::vector<v1::Profile> IssuerProfiles(const v1::IssuerConfig& issuer);

struct PlannedOrder {
  OrderRecord record;           // Ready for IssuanceStore::CreateOrder.
  v1::CreateOrderRequest spec;  // What `record.spec` holds, parsed.
};

absl::StatusOr<PlannedOrder> PlanNewOrder(const v1::CreateOrderRequest& request,
                                          const v1::IssuanceConfig& config,
                                          absl::string_view requester,
                                          absl::Time now);

// A renewal of an inventory certificate, as `requester` asks for it: the
// desired state where the certificate has one (subject, SANs, key spec,
// issuer, validity), else what its current version has; its owner, first
// environment and renewal settings. Checked like a new order (the validity
// limits of `now` included) and approved at once: it asks for the names
// the certificate already has, for the same owner, and the team's domain
// allow-list still applies. With reuse_key the order names the current
// version's vault key. FAILED_PRECONDITION when the certificate cannot be
// renewed here: deleted, no current version, no issuer (imported
// certificates need desired.issuer), or reuse_key without a vault key.
absl::StatusOr<PlannedOrder> PlanRenewal(
    const inventory::v1::ManagedCertificate& certificate,
    const v1::IssuanceConfig& config, absl::string_view requester,
    absl::string_view request_id, absl::Time now);

}  // namespace certplane::issuance

#endif  // CERTPLANE_SERVICES_ISSUANCE_ORDER_PLAN_H_
