// The issuance service's configuration file (issuance.v1.IssuanceConfig in
// protobuf text format): reading and checking it, and building the issuers
// it names.
//
// Checks, each failing with INVALID_ARGUMENT naming the entry: issuer ids
// (1-63 lowercase letters, digits, '-', unique), types, profiles (names
// unique, EKUs known, default <= maximum validity), default_profile among
// them, crl_base_url (http:// or https://), approval rules (issuer known,
// required_approvals 0-10, no two rules for one issuer and team), role
// grants (identity set, roles parse).
#ifndef CERTPLANE_SERVICES_ISSUANCE_ISSUANCE_CONFIG_H_
#define CERTPLANE_SERVICES_ISSUANCE_ISSUANCE_CONFIG_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "certplane/issuance/v1/issuance.pb.h"
#include "libs/server/caller.h"
#include "services/issuance/internal_ca.h"
#include "services/issuance/issuance_store.h"
#include "services/issuance/order_workflow.h"
#include "services/issuance/peers.h"

namespace certplane::issuance {

using server::Caller;
using server::CallerOptions;
using server::RoleGrant;


absl::Status ValidateConfig(const v1::IssuanceConfig& config);

// Parses and validates `text` (errors name `source`, the file).
absl::StatusOr<v1::IssuanceConfig> ParseConfig(absl::string_view text,
                                               absl::string_view source);

// Without a file: an internal CA "internal" (CRLs under `crl_base_url`)
// and an upload issuer "external"; every order needs one approval.
v1::IssuanceConfig DefaultConfig(const std::string& crl_base_url);

// The service-account roles of the configuration (role_grants).
absl::StatusOr<absl::flat_hash_map<std::string, std::vector<RoleGrant>>>
ServiceRoles(const v1::IssuanceConfig& config);

// One Issuer per configured issuer; internal CAs are opened (made in the
// vault on the first start) through `cas` and `peers`.
absl::StatusOr<IssuerMap> BuildIssuers(const v1::IssuanceConfig& config,
                                       CaStore& cas, Peers& peers,
                                       absl::Time now,
                                       InternalCaOptions ca_options = {});

}  // namespace certplane::issuance

#endif  // CERTPLANE_SERVICES_ISSUANCE_ISSUANCE_CONFIG_H_
