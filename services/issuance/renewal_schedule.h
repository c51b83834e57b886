// When a certificate is renewed, and when a failed renewal is tried again.
//
// Renewal time: `renew_before_days` before notAfter when set, else when a
// third of the lifetime (notBefore..notAfter) remains, but never before half
// the lifetime has passed (so a renew_before_days longer than the lifetime
// cannot make each new certificate due at once: no renewal loop). Then a
// jitter moves it earlier (never later, and not past that half) by up to a
// thirtieth of the lifetime, at most 7 days, so that a fleet issued together
// does not renew in one burst. The jitter is a hash of the certificate id and
// notAfter: every replica and every restart computes the same time for the same
// certificate version.
//
// Retry after failures: 1 hour x 2^(failures - 1), at most 24 hours, so a
// CA that keeps failing costs a handful of attempts a day and never a
// renewal loop.
//
// Thread safety: stateless functions.
#ifndef CERTPLANE_SERVICES_ISSUANCE_RENEWAL_SCHEDULE_H_
#define CERTPLANE_SERVICES_ISSUANCE_RENEWAL_SCHEDULE_H_

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace certplane::issuance {

inline constexpr absl::Duration kMaxRenewalJitter = absl::Hours(24 * 7);
inline constexpr absl::Duration kFirstRetryDelay = absl::Hours(1);
inline constexpr absl::Duration kMaxRetryDelay = absl::Hours(24);

// The renewal time before jitter. A certificate whose notAfter is not after
// its notBefore is due at once (notBefore).
absl::Time BaseRenewalTime(absl::Time not_before, absl::Time not_after,
                           int renew_before_days);

// BaseRenewalTime moved earlier by the certificate's jitter, never before
// half the lifetime.
absl::Time RenewalTime(absl::string_view certificate_id, absl::Time not_before,
                       absl::Time not_after, int renew_before_days);

// The delay before the next attempt after `failures` (>= 1) consecutive
// failures; 0 or less is treated as 1.
absl::Duration RetryDelay(int failures);

}  // namespace certplane::issuance

#endif  // CERTPLANE_SERVICES_ISSUANCE_RENEWAL_SCHEDULE_H_
