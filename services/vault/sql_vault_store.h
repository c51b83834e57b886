// The SOCI implementation of VaultStore, over PostgreSQL or SQLite through
// libs/db. The database must already be migrated with VaultMigrations().
//
// What it promises beyond VaultStore:
//  - Every mutation and its audit row are written in one Database::Transact,
//    the effect first and the audit row last: if the audit row cannot be
//    written, the whole transaction rolls back and the call fails.
//  - InsertKey and ReplaceWrappedDek count one encryption under the KEK
//    version they store, in the same transaction (FAILED_PRECONDITION when
//    that version was never recorded with AddKekVersion).
//  - Inputs are checked before any SQL runs: key ids must look like
//    "k" + 32 lowercase hex digits, and a new key must be active with a
//    sealed key, a wrapped data key and a public key (INVALID_ARGUMENT).
//  - ListKeys page tokens are opaque base64url strings bound to the filter
//    they were issued for; a token used with another filter, or a token
//    that does not decode, is INVALID_ARGUMENT.
//  - No SOCI or standard exception escapes; database failures come back as
//    the codes documented in libs/db/database.h.
//
// Thread safety: thread-safe; the Database is borrowed and must outlive it.
#ifndef CERTPLANE_SERVICES_VAULT_SQL_VAULT_STORE_H_
#define CERTPLANE_SERVICES_VAULT_SQL_VAULT_STORE_H_

#include <memory>

#include "services/vault/vault_store.h"

namespace certplane::vault {

// Largest page_size ListKeys accepts and largest limit of KeysWrappedBelow
// (INVALID_ARGUMENT above it or below 1).
inline constexpr int kMaxVaultPageSize = 1000;
// Largest limit RecentAudit accepts.
inline constexpr int kMaxVaultAuditLimit = 10000;

}  // namespace certplane::vault

#endif  // CERTPLANE_SERVICES_VAULT_SQL_VAULT_STORE_H_
