// `certplane-admin health`: waits until a certplane server answers
// grpc.health.v1.Health/Check for the whole server with SERVING, over mTLS
// with the given files (or plaintext). For scripts (`make run`).
#ifndef CERTPLANE_SERVICES_ADMIN_HEALTH_H_
#define CERTPLANE_SERVICES_ADMIN_HEALTH_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace certplane::admin {

struct HealthOptions {
  std::string address;
  // Empty: plaintext.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  absl::Duration timeout = absl::Seconds(60);
};

// OK once SERVING; DEADLINE_EXCEEDED with the last error otherwise.
absl::Status WaitForHealthy(const HealthOptions& options);

}  // namespace certplane::admin

#endif  // CERTPLANE_SERVICES_ADMIN_HEALTH_H_
