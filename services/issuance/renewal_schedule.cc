#include "services/issuance/renewal_schedule.h"

#include <algorithm>
#include <cstdint>

namespace certplane::issuance {
namespace {

// FNV-1a 64 over the id and notAfter: stable across processes and builds.
uint64_t JitterHash(absl::string_view certificate_id, absl::Time not_after) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  auto mix = [&](unsigned char byte) {
    hash ^= byte;
    hash *= 0x100000001b3ULL;
  };
  for (char c : certificate_id) mix(static_cast<unsigned char>(c));
  const int64_t seconds = absl::ToUnixSeconds(not_after);
  for (int i = 0; i < 8; ++i)
    mix(static_cast<unsigned char>(seconds >> (8 * i)));
  return hash;
}

}  // namespace

absl::Time BaseRenewalTime(absl::Time not_before, absl::Time not_after,
                           int renew_before_days) {
  if (not_after <= not_before) return not_before;
  const absl::Time base = renew_before_days > 0
                              ? not_after - absl::Hours(24) * renew_before_days
                              : not_after - (not_after - not_before) / 3;
  // Never before half the lifetime: a renew_before_days as long as the
  // lifetime would otherwise make every new certificate due at once.
  return std::max(base, not_before + (not_after - not_before) / 2);
}

absl::Time RenewalTime(absl::string_view certificate_id, absl::Time not_before,
                       absl::Time not_after, int renew_before_days) {
  const absl::Time base =
      BaseRenewalTime(not_before, not_after, renew_before_days);
  if (not_after <= not_before) return base;
  const absl::Duration window =
      std::min((not_after - not_before) / 30, kMaxRenewalJitter);
  const int64_t window_s = absl::ToInt64Seconds(window);
  if (window_s <= 0) return base;
  const int64_t jitter_s = static_cast<int64_t>(
      JitterHash(certificate_id, not_after) % static_cast<uint64_t>(window_s));
  return std::max(base - absl::Seconds(jitter_s),
                  not_before + (not_after - not_before) / 2);
}

absl::Duration RetryDelay(int failures) {
  const int n = std::max(1, failures);
  // 2^(n-1) hours passes 24 hours at n = 6; stop doubling before overflow.
  if (n > 6) return kMaxRetryDelay;
  return std::min(kFirstRetryDelay * (int64_t{1} << (n - 1)), kMaxRetryDelay);
}

}  // namespace certplane::issuance
