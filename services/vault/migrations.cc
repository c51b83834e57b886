#include "services/vault/migrations.h"

#include <vector>

#include "absl/types/span.h"
#include "libs/db/migrate.h"

namespace certplane::vault {
namespace {

constexpr char kPostgresV1[] = R"sql(
CREATE TABLE kek_versions (
  version INTEGER PRIMARY KEY CHECK (version > 0),
  create_time_us BIGINT NOT NULL,
  encryption_count BIGINT NOT NULL DEFAULT 0 CHECK (encryption_count >= 0)
);
CREATE TABLE keys (
  key_id TEXT PRIMARY KEY CHECK (key_id ~ '^k[0-9a-f]{32}$'),
  version BIGINT NOT NULL CHECK (version > 0),
  owner TEXT NOT NULL CHECK (owner <> ''),
  algorithm TEXT NOT NULL CHECK (algorithm <> ''),
  bits INTEGER NOT NULL CHECK (bits >= 0),
  curve TEXT NOT NULL,
  public_key_der BYTEA NOT NULL CHECK (octet_length(public_key_der) > 0),
  spki_sha256 TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('active', 'destroyed')),
  origin TEXT NOT NULL CHECK (origin <> ''),
  sealed_key BYTEA NOT NULL,
  wrapped_dek BYTEA NOT NULL,
  kek_version INTEGER NOT NULL REFERENCES kek_versions (version),
  request_id TEXT NOT NULL DEFAULT '',
  create_time_us BIGINT NOT NULL,
  destroy_time_us BIGINT,
  CONSTRAINT keys_state_matches_material CHECK (
    (state = 'active' AND destroy_time_us IS NULL
     AND octet_length(sealed_key) > 0 AND octet_length(wrapped_dek) > 0)
    OR (state = 'destroyed' AND destroy_time_us IS NOT NULL
        AND octet_length(sealed_key) = 0 AND octet_length(wrapped_dek) = 0))
);
CREATE UNIQUE INDEX keys_by_request_id ON keys (request_id)
  WHERE request_id <> '';
CREATE INDEX keys_by_owner ON keys (owner, key_id);
CREATE INDEX keys_active_by_kek_version ON keys (kek_version, key_id)
  WHERE state = 'active';
CREATE TABLE key_labels (
  key_id TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
  name TEXT NOT NULL CHECK (name <> ''),
  value TEXT NOT NULL,
  PRIMARY KEY (key_id, name)
);
CREATE INDEX key_labels_by_name_value ON key_labels (name, value, key_id);
CREATE TABLE audit (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  time_us BIGINT NOT NULL,
  identity TEXT NOT NULL,
  operation TEXT NOT NULL CHECK (operation <> ''),
  key_id TEXT NOT NULL,
  result TEXT NOT NULL CHECK (result <> ''),
  detail TEXT NOT NULL,
  request_id TEXT NOT NULL
);
CREATE INDEX audit_by_key ON audit (key_id, id);
CREATE INDEX audit_by_time ON audit (time_us);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the vault audit table is append-only';
END
$$;
CREATE TRIGGER audit_no_update_or_delete BEFORE UPDATE OR DELETE ON audit
  FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
  FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
)sql";

constexpr char kSqliteV1[] = R"sql(
CREATE TABLE kek_versions (
  version INTEGER PRIMARY KEY CHECK (version > 0),
  create_time_us BIGINT NOT NULL,
  encryption_count BIGINT NOT NULL DEFAULT 0 CHECK (encryption_count >= 0)
);
CREATE TABLE keys (
  key_id TEXT PRIMARY KEY NOT NULL CHECK (
    length(key_id) = 33 AND substr(key_id, 1, 1) = 'k'
    AND substr(key_id, 2) NOT GLOB '*[^0-9a-f]*'),
  version BIGINT NOT NULL CHECK (version > 0),
  owner TEXT NOT NULL CHECK (owner <> ''),
  algorithm TEXT NOT NULL CHECK (algorithm <> ''),
  bits INTEGER NOT NULL CHECK (bits >= 0),
  curve TEXT NOT NULL,
  public_key_der TEXT NOT NULL CHECK (
    length(public_key_der) > 0 AND length(public_key_der) % 2 = 0
    AND public_key_der NOT GLOB '*[^0-9a-f]*'),
  spki_sha256 TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('active', 'destroyed')),
  origin TEXT NOT NULL CHECK (origin <> ''),
  sealed_key TEXT NOT NULL CHECK (
    length(sealed_key) % 2 = 0 AND sealed_key NOT GLOB '*[^0-9a-f]*'),
  wrapped_dek TEXT NOT NULL CHECK (
    length(wrapped_dek) % 2 = 0 AND wrapped_dek NOT GLOB '*[^0-9a-f]*'),
  kek_version INTEGER NOT NULL REFERENCES kek_versions (version),
  request_id TEXT NOT NULL DEFAULT '',
  create_time_us BIGINT NOT NULL,
  destroy_time_us BIGINT,
  CONSTRAINT keys_state_matches_material CHECK (
    (state = 'active' AND destroy_time_us IS NULL
     AND length(sealed_key) > 0 AND length(wrapped_dek) > 0)
    OR (state = 'destroyed' AND destroy_time_us IS NOT NULL
        AND length(sealed_key) = 0 AND length(wrapped_dek) = 0))
);
CREATE UNIQUE INDEX keys_by_request_id ON keys (request_id)
  WHERE request_id <> '';
CREATE INDEX keys_by_owner ON keys (owner, key_id);
CREATE INDEX keys_active_by_kek_version ON keys (kek_version, key_id)
  WHERE state = 'active';
CREATE TABLE key_labels (
  key_id TEXT NOT NULL REFERENCES keys (key_id) ON DELETE CASCADE,
  name TEXT NOT NULL CHECK (name <> ''),
  value TEXT NOT NULL,
  PRIMARY KEY (key_id, name)
);
CREATE INDEX key_labels_by_name_value ON key_labels (name, value, key_id);
CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time_us BIGINT NOT NULL,
  identity TEXT NOT NULL,
  operation TEXT NOT NULL CHECK (operation <> ''),
  key_id TEXT NOT NULL,
  result TEXT NOT NULL CHECK (result <> ''),
  detail TEXT NOT NULL,
  request_id TEXT NOT NULL
);
CREATE INDEX audit_by_key ON audit (key_id, id);
CREATE INDEX audit_by_time ON audit (time_us);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
  SELECT RAISE(ABORT, 'the vault audit table is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
  SELECT RAISE(ABORT, 'the vault audit table is append-only');
END;
)sql";

}  // namespace

absl::Span<const db::Migration> VaultMigrations() {
  static const auto* const kMigrations = new std::vector<db::Migration>{
      {1, "create kek_versions, keys, key_labels and audit", kPostgresV1,
       kSqliteV1},
  };
  return *kMigrations;
}

}  // namespace certplane::vault
