// The issuance service's schema migrations (PostgreSQL and SQLite).
//
// Tables: orders (one row per order, with indexed copies of what it asks
// for and the work-queue lease), order_events (every transition, numbered
// per order), order_approvals (one row per approver and order);
// certificate_authorities (an internal CA's certificates, vault key names
// and latest CRL) and revocations (one row per revoked serial); renewals
// (the renewal controller's schedule and work queue) and feed_cursors
// (change-feed positions).
//
// `open_renewal_of` holds renewal_of while a renewal order is not final and
// NULL afterwards; its unique index makes "at most one open renewal order per
// certificate" a database guarantee, whatever replicas race.
//
// Binary values (spec, certificate_der) are lowercase hex TEXT on both
// backends. Booleans are INTEGER 0/1; times are int64 microseconds since the
// Unix epoch. The returned migrations live for the whole process.
#ifndef CERTPLANE_SERVICES_ISSUANCE_MIGRATIONS_H_
#define CERTPLANE_SERVICES_ISSUANCE_MIGRATIONS_H_

#include "absl/types/span.h"
#include "libs/db/migrate.h"

namespace certplane::issuance {

absl::Span<const db::Migration> IssuanceMigrations();

}  // namespace certplane::issuance

#endif  // CERTPLANE_SERVICES_ISSUANCE_MIGRATIONS_H_
