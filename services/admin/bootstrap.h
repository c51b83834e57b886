// Bootstrap of the platform's service identities: a platform CA and one
// mTLS certificate per service, in one folder, the way `make run` and a
// first deployment need them.
//
//   <dir>/ca.pem, ca.key                 the platform CA (P-256, 10 years)
//   <dir>/<service>.pem, <service>.key   each service (P-256, 1 year):
//       SANs spiffe://certplane/<service> (its identity in policies),
//       DNS <service>, certplane-<service>, localhost, IP 127.0.0.1, and
//       any extra hosts; serverAuth and clientAuth
//
// Keys are written with mode 0600 (libs/server/private_file.h). Running it
// again keeps what is valid for more than `renew_within` and issues only
// what is missing, expiring or not from this CA, so it is safe on every
// start. An existing CA that expires within `renew_within` is an error
// (replacing it would cut every service off; rotate it deliberately).
//
// Not thread-safe against another bootstrap of the same folder.
#ifndef CERTPLANE_SERVICES_ADMIN_BOOTSTRAP_H_
#define CERTPLANE_SERVICES_ADMIN_BOOTSTRAP_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace certplane::admin {

inline const std::vector<std::string> kPlatformServices = {
    "gateway", "vault", "inventory", "issuance"};

struct BootstrapOptions {
  std::string dir;
  std::vector<std::string> services = kPlatformServices;
  // Extra DNS names or IP addresses for every service certificate.
  std::vector<std::string> hosts;
  absl::Duration renew_within = absl::Hours(24 * 30);
  absl::Time now = absl::Now();
};

struct BootstrapReport {
  std::vector<std::string> created;  // Files written.
  std::vector<std::string> kept;     // Files already good.
};

// The SPIFFE-style identity of a service's certificate.
std::string ServiceIdentity(const std::string& service);

absl::StatusOr<BootstrapReport> Bootstrap(const BootstrapOptions& options);

}  // namespace certplane::admin

#endif  // CERTPLANE_SERVICES_ADMIN_BOOTSTRAP_H_
