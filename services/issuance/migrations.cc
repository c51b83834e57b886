#include "services/issuance/migrations.h"

#include <string>
#include <vector>

#include "absl/strings/str_replace.h"

namespace certplane::issuance {
namespace {

// Written once for both dialects; "$C" is the bytewise collation PostgreSQL
// needs for ordered text keys (SQLite compares bytes already).
constexpr char kV1[] = R"sql(
CREATE TABLE orders (
  order_id TEXT$C PRIMARY KEY,
  state TEXT NOT NULL CHECK (state IN ('pending_approval', 'approved',
    'key_ready', 'submitted', 'awaiting_certificate', 'issued', 'rejected',
    'failed', 'cancelled')),
  reason TEXT NOT NULL CHECK (reason IN ('new', 'renewal')),
  issuer_id TEXT$C NOT NULL,
  owner TEXT$C NOT NULL,
  environment TEXT$C NOT NULL,
  requester TEXT$C NOT NULL,
  common_name TEXT$C NOT NULL,
  sans TEXT NOT NULL,
  spec TEXT NOT NULL,
  request_id TEXT$C NOT NULL,
  request_hash TEXT NOT NULL,
  required_approvals INTEGER NOT NULL CHECK (required_approvals >= 0),
  renewal_of TEXT$C NOT NULL,
  open_renewal_of TEXT$C,
  key_name TEXT NOT NULL,
  csr_pem TEXT NOT NULL,
  certificate_id TEXT$C NOT NULL,
  certificate_version TEXT NOT NULL,
  certificate_der TEXT NOT NULL,
  serial_hex TEXT NOT NULL,
  not_after_us BIGINT,
  failure_reason TEXT NOT NULL,
  attempts INTEGER NOT NULL CHECK (attempts >= 0),
  next_attempt_us BIGINT NOT NULL,
  lease_owner TEXT NOT NULL,
  lease_expiry_us BIGINT NOT NULL,
  create_time_us BIGINT NOT NULL,
  update_time_us BIGINT NOT NULL,
  etag TEXT NOT NULL CHECK (etag <> '')
);
CREATE UNIQUE INDEX orders_by_request_id ON orders (request_id)
  WHERE request_id <> '';
CREATE UNIQUE INDEX orders_by_open_renewal ON orders (open_renewal_of);
CREATE INDEX orders_by_work ON orders (state, next_attempt_us, order_id);
CREATE INDEX orders_by_create_time ON orders (create_time_us, order_id);
CREATE INDEX orders_by_owner ON orders (owner, create_time_us, order_id);
CREATE INDEX orders_by_certificate ON orders (certificate_id);

CREATE TABLE order_events (
  order_id TEXT$C NOT NULL,
  seq INTEGER NOT NULL CHECK (seq > 0),
  from_state TEXT NOT NULL,
  to_state TEXT NOT NULL,
  time_us BIGINT NOT NULL,
  actor TEXT NOT NULL,
  reason TEXT NOT NULL,
  PRIMARY KEY (order_id, seq)
);

CREATE TABLE order_approvals (
  order_id TEXT$C NOT NULL,
  approver TEXT$C NOT NULL,
  time_us BIGINT NOT NULL,
  comment TEXT NOT NULL,
  PRIMARY KEY (order_id, approver)
);
)sql";

// Internal CAs and their revocations; the CA chain an order was issued
// with.
constexpr char kV2[] = R"sql(
ALTER TABLE orders ADD COLUMN chain_pem TEXT NOT NULL DEFAULT '';

CREATE TABLE certificate_authorities (
  issuer_id TEXT$C PRIMARY KEY,
  root_key_name TEXT NOT NULL,
  root_der TEXT NOT NULL,
  intermediate_key_name TEXT NOT NULL,
  intermediate_der TEXT NOT NULL,
  create_time_us BIGINT NOT NULL,
  crl_number BIGINT NOT NULL CHECK (crl_number >= 0),
  crl_der TEXT NOT NULL,
  crl_this_update_us BIGINT NOT NULL,
  crl_next_update_us BIGINT NOT NULL
);

CREATE TABLE revocations (
  issuer_id TEXT$C NOT NULL,
  serial_hex TEXT$C NOT NULL,
  reason TEXT NOT NULL,
  revoke_time_us BIGINT NOT NULL,
  certificate_version TEXT NOT NULL,
  crl_number BIGINT NOT NULL CHECK (crl_number >= 0),
  PRIMARY KEY (issuer_id, serial_hex)
);

CREATE TABLE renewals (
  certificate_id TEXT$C PRIMARY KEY,
  version TEXT NOT NULL,
  not_after_us BIGINT NOT NULL,
  renew_time_us BIGINT NOT NULL,
  failure_count INTEGER NOT NULL CHECK (failure_count >= 0),
  last_error TEXT NOT NULL,
  last_order_id TEXT NOT NULL,
  next_attempt_us BIGINT NOT NULL,
  lease_owner TEXT NOT NULL,
  lease_expiry_us BIGINT NOT NULL,
  update_time_us BIGINT NOT NULL
);
CREATE INDEX renewals_by_time ON renewals (renew_time_us, certificate_id);

CREATE TABLE feed_cursors (
  name TEXT$C PRIMARY KEY,
  revision BIGINT NOT NULL
);
)sql";

std::string ForDialect(const char* text, bool postgres) {
  return absl::StrReplaceAll(text, {{"$C", postgres ? " COLLATE \"C\"" : ""}});
}

}  // namespace

absl::Span<const db::Migration> IssuanceMigrations() {
  static const auto* const kMigrations = new std::vector<db::Migration>{
      {1, "create orders, order events and approvals", ForDialect(kV1, true),
       ForDialect(kV1, false)},
      {2,
       "create certificate authorities, revocations, the renewal "
       "schedule and feed cursors",
       ForDialect(kV2, true), ForDialect(kV2, false)},
  };
  return *kMigrations;
}

}  // namespace certplane::issuance
