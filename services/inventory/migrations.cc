#include "services/inventory/migrations.h"

#include <vector>

#include "absl/types/span.h"
#include "libs/db/migrate.h"

namespace certplane::inventory {
namespace {

// Version 1 on PostgreSQL. No foreign keys: the store writes a certificate,
// its versions, SANs, tags and environments in one transaction, and
// per-row foreign key checks would cost a large part of bulk-import
// throughput.
constexpr char kPostgresV1[] = R"sql(
CREATE TABLE counters (
  name TEXT PRIMARY KEY,
  value BIGINT NOT NULL CHECK (value >= 0)
);
INSERT INTO counters (name, value) VALUES ('revision', 0);

CREATE TABLE certificates (
  certificate_id TEXT COLLATE "C" PRIMARY KEY
    CHECK (certificate_id ~ '^c[0-9a-f]{32}$'),
  display_name TEXT COLLATE "C" NOT NULL,
  owner TEXT COLLATE "C" NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('issued', 'imported', 'discovered')),
  desired BYTEA NOT NULL,
  auto_renew INTEGER NOT NULL CHECK (auto_renew IN (0, 1)),
  renew_before_days INTEGER NOT NULL,
  reuse_key INTEGER NOT NULL CHECK (reuse_key IN (0, 1)),
  current_version BIGINT NOT NULL CHECK (current_version >= 0),
  version_count BIGINT NOT NULL CHECK (version_count >= current_version),
  create_time_us BIGINT NOT NULL,
  update_time_us BIGINT NOT NULL,
  deleted INTEGER NOT NULL CHECK (deleted IN (0, 1)),
  delete_time_us BIGINT,
  etag TEXT NOT NULL CHECK (etag <> ''),
  request_id TEXT NOT NULL,
  -- The current version's facts (defaults: no version yet).
  common_name TEXT COLLATE "C" NOT NULL DEFAULT '',
  issuer_cn TEXT COLLATE "C" NOT NULL DEFAULT '',
  issuer_dn TEXT COLLATE "C" NOT NULL DEFAULT '',
  serial_hex TEXT COLLATE "C" NOT NULL DEFAULT '',
  sha256_hex TEXT COLLATE "C" NOT NULL DEFAULT '',
  not_before_us BIGINT NOT NULL DEFAULT -9223372036854775808,
  not_after_us BIGINT NOT NULL DEFAULT 9223372036854775807,
  key_algorithm TEXT COLLATE "C" NOT NULL DEFAULT '',
  key_bits INTEGER NOT NULL DEFAULT 0,
  key_curve TEXT COLLATE "C" NOT NULL DEFAULT '',
  signature_algorithm TEXT COLLATE "C" NOT NULL DEFAULT '',
  status TEXT NOT NULL DEFAULT ''
    CHECK (status IN ('', 'active', 'superseded', 'revoked')),
  has_key INTEGER NOT NULL DEFAULT 0 CHECK (has_key IN (0, 1)),
  -- Copies of certificate_environments and certificate_tags ("key=value"),
  -- for exact-match filters (see kPostgresListColumns).
  environment_list TEXT[] NOT NULL DEFAULT '{}',
  tag_list TEXT[] NOT NULL DEFAULT '{}',
  CONSTRAINT certificates_deleted_has_time CHECK (
    (deleted = 0 AND delete_time_us IS NULL)
    OR (deleted = 1 AND delete_time_us IS NOT NULL))
);
CREATE UNIQUE INDEX certificates_by_request_id ON certificates (request_id)
  WHERE request_id <> '';
CREATE INDEX certificates_by_not_after
  ON certificates (not_after_us, certificate_id);
CREATE INDEX certificates_by_owner
  ON certificates (owner, not_after_us, certificate_id);
CREATE INDEX certificates_by_issuer
  ON certificates (issuer_cn, not_after_us, certificate_id);
CREATE INDEX certificates_by_common_name
  ON certificates (common_name, certificate_id);
CREATE INDEX certificates_by_display_name
  ON certificates (display_name, certificate_id);
CREATE INDEX certificates_by_key_bits
  ON certificates (key_bits, certificate_id);
CREATE INDEX certificates_by_create_time
  ON certificates (create_time_us, certificate_id);
CREATE INDEX certificates_by_sha256 ON certificates (sha256_hex);
CREATE INDEX certificates_by_serial ON certificates (serial_hex);
CREATE INDEX certificates_by_environment_list
  ON certificates USING GIN (environment_list);
CREATE INDEX certificates_by_tag_list ON certificates USING GIN (tag_list);

CREATE TABLE certificate_sans (
  certificate_id TEXT COLLATE "C" NOT NULL,
  value TEXT COLLATE "C" NOT NULL,
  value_rev TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (certificate_id, value)
);
CREATE INDEX certificate_sans_by_value
  ON certificate_sans (value, certificate_id);
CREATE INDEX certificate_sans_by_value_rev
  ON certificate_sans (value_rev, certificate_id);

CREATE TABLE certificate_tags (
  certificate_id TEXT COLLATE "C" NOT NULL,
  key TEXT COLLATE "C" NOT NULL CHECK (key <> ''),
  value TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (certificate_id, key)
);
CREATE INDEX certificate_tags_by_key_value
  ON certificate_tags (key, value, certificate_id);

CREATE TABLE certificate_environments (
  certificate_id TEXT COLLATE "C" NOT NULL,
  environment TEXT COLLATE "C" NOT NULL CHECK (environment <> ''),
  PRIMARY KEY (certificate_id, environment)
);
CREATE INDEX certificate_environments_by_environment
  ON certificate_environments (environment, certificate_id);

CREATE TABLE certificate_versions (
  certificate_id TEXT COLLATE "C" NOT NULL,
  version BIGINT NOT NULL CHECK (version > 0),
  sha256_hex TEXT COLLATE "C" NOT NULL UNIQUE
    CHECK (sha256_hex ~ '^[0-9a-f]{64}$'),
  der BYTEA NOT NULL CHECK (octet_length(der) > 0),
  details BYTEA NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active', 'superseded', 'revoked')),
  subject_dn TEXT NOT NULL,
  common_name TEXT NOT NULL,
  issuer_dn TEXT NOT NULL,
  issuer_cn TEXT NOT NULL,
  serial_hex TEXT NOT NULL,
  not_before_us BIGINT NOT NULL,
  not_after_us BIGINT NOT NULL,
  key_algorithm TEXT NOT NULL,
  key_bits INTEGER NOT NULL,
  key_curve TEXT NOT NULL,
  signature_algorithm TEXT NOT NULL,
  sans TEXT NOT NULL,
  subject_key_id_hex TEXT NOT NULL,
  authority_key_id_hex TEXT NOT NULL,
  is_ca INTEGER NOT NULL CHECK (is_ca IN (0, 1)),
  self_signed INTEGER NOT NULL CHECK (self_signed IN (0, 1)),
  chain_sha256 TEXT NOT NULL,
  chain_complete INTEGER NOT NULL CHECK (chain_complete IN (0, 1)),
  key_name TEXT NOT NULL,
  origin TEXT NOT NULL,
  create_time_us BIGINT NOT NULL,
  revoke_time_us BIGINT,
  revocation_reason TEXT NOT NULL,
  PRIMARY KEY (certificate_id, version),
  CONSTRAINT certificate_versions_revoked_has_time CHECK (
    (status = 'revoked') = (revoke_time_us IS NOT NULL))
);

CREATE TABLE ca_certificates (
  sha256_hex TEXT COLLATE "C" PRIMARY KEY
    CHECK (sha256_hex ~ '^[0-9a-f]{64}$'),
  der BYTEA NOT NULL CHECK (octet_length(der) > 0),
  subject_dn TEXT COLLATE "C" NOT NULL,
  common_name TEXT NOT NULL,
  issuer_dn TEXT NOT NULL,
  issuer_cn TEXT NOT NULL,
  serial_hex TEXT NOT NULL,
  not_before_us BIGINT NOT NULL,
  not_after_us BIGINT NOT NULL,
  key_algorithm TEXT NOT NULL,
  key_bits INTEGER NOT NULL,
  key_curve TEXT NOT NULL,
  signature_algorithm TEXT NOT NULL,
  sans TEXT NOT NULL,
  subject_key_id_hex TEXT NOT NULL,
  authority_key_id_hex TEXT NOT NULL,
  is_ca INTEGER NOT NULL CHECK (is_ca IN (0, 1)),
  self_signed INTEGER NOT NULL CHECK (self_signed IN (0, 1)),
  create_time_us BIGINT NOT NULL
);
CREATE INDEX ca_certificates_by_subject ON ca_certificates (subject_dn);

CREATE TABLE changes (
  revision BIGINT PRIMARY KEY CHECK (revision > 0),
  kind TEXT NOT NULL CHECK (kind IN ('certificate_created',
    'certificate_updated', 'certificate_deleted', 'version_added',
    'version_revoked', 'ca_certificate_added')),
  certificate_id TEXT NOT NULL,
  version BIGINT NOT NULL,
  time_us BIGINT NOT NULL,
  actor TEXT NOT NULL,
  changed_fields TEXT NOT NULL,
  not_after_us BIGINT,
  sha256_hex TEXT NOT NULL
);
)sql";

// Version 1 on SQLite: the same tables; der as lowercase hex TEXT; SANs,
// tags and environments WITHOUT ROWID (their primary key is the table).
constexpr char kSqliteV1[] = R"sql(
CREATE TABLE counters (
  name TEXT PRIMARY KEY,
  value BIGINT NOT NULL CHECK (value >= 0)
);
INSERT INTO counters (name, value) VALUES ('revision', 0);

CREATE TABLE certificates (
  certificate_id TEXT PRIMARY KEY
    CHECK (length(certificate_id) = 33 AND certificate_id GLOB 'c*'
           AND substr(certificate_id, 2) NOT GLOB '*[^0-9a-f]*'),
  display_name TEXT NOT NULL,
  owner TEXT NOT NULL,
  source TEXT NOT NULL CHECK (source IN ('issued', 'imported', 'discovered')),
  desired TEXT NOT NULL CHECK (desired NOT GLOB '*[^0-9a-f]*'),
  auto_renew INTEGER NOT NULL CHECK (auto_renew IN (0, 1)),
  renew_before_days INTEGER NOT NULL,
  reuse_key INTEGER NOT NULL CHECK (reuse_key IN (0, 1)),
  current_version BIGINT NOT NULL CHECK (current_version >= 0),
  version_count BIGINT NOT NULL CHECK (version_count >= current_version),
  create_time_us BIGINT NOT NULL,
  update_time_us BIGINT NOT NULL,
  deleted INTEGER NOT NULL CHECK (deleted IN (0, 1)),
  delete_time_us BIGINT,
  etag TEXT NOT NULL CHECK (etag <> ''),
  request_id TEXT NOT NULL,
  common_name TEXT NOT NULL DEFAULT '',
  issuer_cn TEXT NOT NULL DEFAULT '',
  issuer_dn TEXT NOT NULL DEFAULT '',
  serial_hex TEXT NOT NULL DEFAULT '',
  sha256_hex TEXT NOT NULL DEFAULT '',
  not_before_us BIGINT NOT NULL DEFAULT -9223372036854775808,
  not_after_us BIGINT NOT NULL DEFAULT 9223372036854775807,
  key_algorithm TEXT NOT NULL DEFAULT '',
  key_bits INTEGER NOT NULL DEFAULT 0,
  key_curve TEXT NOT NULL DEFAULT '',
  signature_algorithm TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL DEFAULT ''
    CHECK (status IN ('', 'active', 'superseded', 'revoked')),
  has_key INTEGER NOT NULL DEFAULT 0 CHECK (has_key IN (0, 1)),
  CONSTRAINT certificates_deleted_has_time CHECK (
    (deleted = 0 AND delete_time_us IS NULL)
    OR (deleted = 1 AND delete_time_us IS NOT NULL))
);
CREATE UNIQUE INDEX certificates_by_request_id ON certificates (request_id)
  WHERE request_id <> '';
CREATE INDEX certificates_by_not_after
  ON certificates (not_after_us, certificate_id);
CREATE INDEX certificates_by_owner
  ON certificates (owner, not_after_us, certificate_id);
CREATE INDEX certificates_by_issuer
  ON certificates (issuer_cn, not_after_us, certificate_id);
CREATE INDEX certificates_by_common_name
  ON certificates (common_name, certificate_id);
CREATE INDEX certificates_by_display_name
  ON certificates (display_name, certificate_id);
CREATE INDEX certificates_by_key_bits
  ON certificates (key_bits, certificate_id);
CREATE INDEX certificates_by_create_time
  ON certificates (create_time_us, certificate_id);
CREATE INDEX certificates_by_sha256 ON certificates (sha256_hex);
CREATE INDEX certificates_by_serial ON certificates (serial_hex);

CREATE TABLE certificate_sans (
  certificate_id TEXT NOT NULL,
  value TEXT NOT NULL,
  value_rev TEXT NOT NULL,
  PRIMARY KEY (certificate_id, value)
) WITHOUT ROWID;
CREATE INDEX certificate_sans_by_value
  ON certificate_sans (value, certificate_id);
CREATE INDEX certificate_sans_by_value_rev
  ON certificate_sans (value_rev, certificate_id);

CREATE TABLE certificate_tags (
  certificate_id TEXT NOT NULL,
  key TEXT NOT NULL CHECK (key <> ''),
  value TEXT NOT NULL,
  PRIMARY KEY (certificate_id, key)
) WITHOUT ROWID;
CREATE INDEX certificate_tags_by_key_value
  ON certificate_tags (key, value, certificate_id);

CREATE TABLE certificate_environments (
  certificate_id TEXT NOT NULL,
  environment TEXT NOT NULL CHECK (environment <> ''),
  PRIMARY KEY (certificate_id, environment)
) WITHOUT ROWID;
CREATE INDEX certificate_environments_by_environment
  ON certificate_environments (environment, certificate_id);

CREATE TABLE certificate_versions (
  certificate_id TEXT NOT NULL,
  version BIGINT NOT NULL CHECK (version > 0),
  sha256_hex TEXT NOT NULL UNIQUE
    CHECK (length(sha256_hex) = 64 AND sha256_hex NOT GLOB '*[^0-9a-f]*'),
  der TEXT NOT NULL
    CHECK (length(der) > 0 AND der NOT GLOB '*[^0-9a-f]*'),
  details BLOB NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active', 'superseded', 'revoked')),
  subject_dn TEXT NOT NULL,
  common_name TEXT NOT NULL,
  issuer_dn TEXT NOT NULL,
  issuer_cn TEXT NOT NULL,
  serial_hex TEXT NOT NULL,
  not_before_us BIGINT NOT NULL,
  not_after_us BIGINT NOT NULL,
  key_algorithm TEXT NOT NULL,
  key_bits INTEGER NOT NULL,
  key_curve TEXT NOT NULL,
  signature_algorithm TEXT NOT NULL,
  sans TEXT NOT NULL,
  subject_key_id_hex TEXT NOT NULL,
  authority_key_id_hex TEXT NOT NULL,
  is_ca INTEGER NOT NULL CHECK (is_ca IN (0, 1)),
  self_signed INTEGER NOT NULL CHECK (self_signed IN (0, 1)),
  chain_sha256 TEXT NOT NULL,
  chain_complete INTEGER NOT NULL CHECK (chain_complete IN (0, 1)),
  key_name TEXT NOT NULL,
  origin TEXT NOT NULL,
  create_time_us BIGINT NOT NULL,
  revoke_time_us BIGINT,
  revocation_reason TEXT NOT NULL,
  PRIMARY KEY (certificate_id, version),
  CONSTRAINT certificate_versions_revoked_has_time CHECK (
    (status = 'revoked') = (revoke_time_us IS NOT NULL))
);

CREATE TABLE ca_certificates (
  sha256_hex TEXT PRIMARY KEY
    CHECK (length(sha256_hex) = 64 AND sha256_hex NOT GLOB '*[^0-9a-f]*'),
  der TEXT NOT NULL
    CHECK (length(der) > 0 AND der NOT GLOB '*[^0-9a-f]*'),
  subject_dn TEXT NOT NULL,
  common_name TEXT NOT NULL,
  issuer_dn TEXT NOT NULL,
  issuer_cn TEXT NOT NULL,
  serial_hex TEXT NOT NULL,
  not_before_us BIGINT NOT NULL,
  not_after_us BIGINT NOT NULL,
  key_algorithm TEXT NOT NULL,
  key_bits INTEGER NOT NULL,
  key_curve TEXT NOT NULL,
  signature_algorithm TEXT NOT NULL,
  sans TEXT NOT NULL,
  subject_key_id_hex TEXT NOT NULL,
  authority_key_id_hex TEXT NOT NULL,
  is_ca INTEGER NOT NULL CHECK (is_ca IN (0, 1)),
  self_signed INTEGER NOT NULL CHECK (self_signed IN (0, 1)),
  create_time_us BIGINT NOT NULL
);
CREATE INDEX ca_certificates_by_subject ON ca_certificates (subject_dn);

CREATE TABLE changes (
  revision INTEGER PRIMARY KEY CHECK (revision > 0),
  kind TEXT NOT NULL CHECK (kind IN ('certificate_created',
    'certificate_updated', 'certificate_deleted', 'version_added',
    'version_revoked', 'ca_certificate_added')),
  certificate_id TEXT NOT NULL,
  version BIGINT NOT NULL,
  time_us BIGINT NOT NULL,
  actor TEXT NOT NULL,
  changed_fields TEXT NOT NULL,
  not_after_us BIGINT,
  sha256_hex TEXT NOT NULL
);
)sql";

// Version 2: the default order's index carries key_algorithm and deleted,
// so that a walk in expiry order tests them on the index entry and reads
// only the rows that pass. At 1M certificates (docs/performance.md),
// `tags.app = x AND key_algorithm = "RSA"` read 9,400 rows per page before
// and 2,700 after, and the unfiltered walk is an index-only scan. (An index
// led by key_algorithm served the walk as well, but PostgreSQL then ANDed
// its 285,000-entry bitmap into every capped count with a key filter, which
// cost 50 ms.) The same statements on both backends. The rebuild holds the
// table's lock while it runs (about 2 s at 1M certificates on PostgreSQL),
// so Lists wait for it once, at the upgrade.
constexpr char kExpiryOrderIndexV2[] = R"sql(
DROP INDEX certificates_by_not_after;
CREATE INDEX certificates_by_not_after
  ON certificates (not_after_us, certificate_id, key_algorithm, deleted);
)sql";

}  // namespace

absl::Span<const db::Migration> InventoryMigrations() {
  static const auto* const kMigrations = new std::vector<db::Migration>{
      {1,
       "create certificates, versions, SANs, tags, environments, CA "
       "certificates, changes and counters",
       kPostgresV1, kSqliteV1},
      {2, "add key_algorithm and deleted to the expiry order index",
       kExpiryOrderIndexV2, kExpiryOrderIndexV2},
  };
  return *kMigrations;
}

}  // namespace certplane::inventory
