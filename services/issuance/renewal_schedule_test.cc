// Renewal times, their jitter and the retry backoff, with fixed dates.
#include "services/issuance/renewal_schedule.h"

#include <catch2/catch.hpp>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace certplane::issuance {
namespace {

const absl::Time kNotBefore = absl::FromUnixSeconds(1796300000);
const absl::Time kNotAfter = kNotBefore + absl::Hours(24 * 90);

TEST_CASE("RenewsWhenAThirdOfTheLifetimeRemainsOrNDaysBefore") {
  CHECK(BaseRenewalTime(kNotBefore, kNotAfter, 0) ==
        kNotBefore + absl::Hours(24 * 60));
  CHECK(BaseRenewalTime(kNotBefore, kNotAfter, 30) ==
        kNotAfter - absl::Hours(24 * 30));
  // More days than half the lifetime: half way, so that a new certificate
  // is never due at once (no renewal loop).
  CHECK(BaseRenewalTime(kNotBefore, kNotAfter, 400) ==
        kNotBefore + (kNotAfter - kNotBefore) / 2);
  CHECK(BaseRenewalTime(kNotBefore, kNotAfter, 60) ==
        kNotBefore + (kNotAfter - kNotBefore) / 2);
  CHECK(BaseRenewalTime(kNotAfter, kNotBefore, 0) == kNotAfter);
}

TEST_CASE("JitterMovesRenewalEarlierWithinABoundAndIsStable") {
  const absl::Time base = BaseRenewalTime(kNotBefore, kNotAfter, 0);
  std::set<int64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = absl::StrCat("c", i);
    const absl::Time t = RenewalTime(id, kNotBefore, kNotAfter, 0);
    CHECK(t <= base);
    CHECK(t > base - absl::Hours(24 * 3));  // 90 days / 30.
    CHECK(t == RenewalTime(id, kNotBefore, kNotAfter, 0));
    seen.insert(absl::ToUnixSeconds(t) / 3600);
  }
  // A fleet issued together spreads over the window (72 hours).
  CHECK(seen.size() > 60);
  // Long lifetimes cap the jitter at 7 days.
  const absl::Time long_after = kNotBefore + absl::Hours(24 * 3650);
  const absl::Time long_base = BaseRenewalTime(kNotBefore, long_after, 0);
  for (int i = 0; i < 200; ++i) {
    const absl::Time t =
        RenewalTime(absl::StrCat("c", i), kNotBefore, long_after, 0);
    CHECK(t <= long_base);
    CHECK(t > long_base - kMaxRenewalJitter);
  }
  // Never before half the lifetime.
  CHECK(RenewalTime("c1", kNotBefore, kNotAfter, 400) ==
        kNotBefore + (kNotAfter - kNotBefore) / 2);
}

TEST_CASE("RetriesBackOffExponentiallyUpToADay") {
  CHECK(RetryDelay(1) == absl::Hours(1));
  CHECK(RetryDelay(2) == absl::Hours(2));
  CHECK(RetryDelay(3) == absl::Hours(4));
  CHECK(RetryDelay(5) == absl::Hours(16));
  CHECK(RetryDelay(6) == absl::Hours(24));
  CHECK(RetryDelay(7) == absl::Hours(24));
  CHECK(RetryDelay(1000000) == absl::Hours(24));
  CHECK(RetryDelay(0) == absl::Hours(1));
  CHECK(RetryDelay(-5) == absl::Hours(1));
}

}  // namespace
}  // namespace certplane::issuance
