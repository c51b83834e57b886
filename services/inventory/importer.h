// The inventory's import logic, without gRPC and without writing anything:
// reads a request's files (any format libs/crypto reads), sorts what they
// hold into leaf certificates, CA certificates and private keys, and works
// out for each leaf its facts, its private key and its chain. The service
// (inventory_service.h) then sends the keys to the vault and the result to
// the store.
//
// What Analyze() promises:
//  - A file that cannot be read (empty, garbage, truncated, wrong or missing
//    password) gets its own error and nothing from it is used; the other
//    files are read as if it were not there.
//  - CA certificates are those with basicConstraints CA:TRUE; everything else
//    is a leaf.
//  - A leaf's private key is looked for in its own file first, then in the
//    request's other files (a certificate and its key often come as two
//    files); keys are matched by public key (CheckKeyMatches).
//  - A leaf's chain is completed upwards, issuer first, from the CA
//    certificates of its own file, then of the other files, then from those
//    the inventory already holds (`ca_lookup`); a candidate counts only when
//    its subject is the certificate's issuer and its key verifies the
//    certificate's signature, so the order in which a file lists its chain
//    does not matter. The chain is complete when it ends at a self-signed
//    certificate (a self-signed leaf is complete by itself).
//  - A certificate repeated within a file is read once (with a note); a
//    certificate repeated in a later file is marked as a duplicate of the
//    first occurrence, so each certificate is stored once per request.
//  - Private keys that match no leaf are reported in their file's notes and
//    are not sent to the vault.
//  - Expired and not-yet-valid leaves are imported, with a note.
//
// Everything here is a value; Analyze() is thread-safe as long as
// `ca_lookup` is.
#ifndef CERTPLANE_SERVICES_INVENTORY_IMPORTER_H_
#define CERTPLANE_SERVICES_INVENTORY_IMPORTER_H_

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "libs/crypto/certificate.h"
#include "libs/crypto/key.h"
#include "services/inventory/inventory_store.h"

namespace certplane::inventory {

// The store's indexed facts about a certificate, from libs/crypto's
// description.
CertificateFacts FactsFromInfo(const crypto::CertificateInfo& info);

// What people call a certificate: its subject CN, else its first SAN, else
// its subject DN.
std::string DefaultDisplayName(const crypto::CertificateInfo& info);

// CA certificates the inventory already holds whose subject DN (as
// DistinguishedName::ToString() prints it) is `subject_dn`. An error stops
// the import (the store is down); it is not a per-file problem.
using CaLookup = std::function<absl::StatusOr<std::vector<crypto::Certificate>>(
    absl::string_view subject_dn)>;

// A CaLookup over the store's FindCaBySubject. Stored rows that no longer
// parse are skipped. `store` must outlive the lookup.
CaLookup StoreCaLookup(InventoryStore& store);

// One input file. `data` and `password` must outlive Analyze().
struct ImportFileInput {
  std::string filename;
  absl::string_view data;
  std::optional<absl::string_view> password;
};

// One certificate read from a file.
struct ImportedCertificate {
  crypto::Certificate certificate;
  CertificateFacts facts;
  // basicConstraints CA:TRUE.
  bool is_ca = false;
  // Index into ImportPlan::leaves (leaves) or ImportPlan::ca_certificates
  // (CA certificates) of this certificate's first occurrence.
  size_t unique_index = 0;
  // False when an earlier file of the request held the same certificate.
  bool first_occurrence = true;
};

// A file as read.
struct ImportedFile {
  std::string filename;
  // OK when the file was read; otherwise why not (INVALID_ARGUMENT with the
  // reason, or FAILED_PRECONDITION when the crypto library lacks what the
  // file needs), and `certificates` is empty.
  absl::Status status;
  // crypto::FormatName(); empty when not read.
  std::string format;
  // In file order (CA certificates and leaves), repeats within the file
  // dropped.
  std::vector<ImportedCertificate> certificates;
  // Things skipped or worth knowing, for people.
  std::vector<std::string> notes;
};

// A private key read from a file.
struct ImportedKey {
  crypto::PrivateKey key;
  size_t file_index = 0;
  // Lowercase hex SHA-256 over the DER SubjectPublicKeyInfo.
  std::string spki_sha256_hex;
  // Some leaf uses it; only these go to the vault.
  bool matches_leaf = false;
};

// A distinct leaf of the request, with what the import needs for it.
struct ImportedLeaf {
  size_t file_index = 0;
  size_t certificate_index = 0;  // In ImportedFile::certificates.
  crypto::Certificate certificate;
  CertificateFacts facts;
  // Issuers from the leaf's issuer upwards, as far as known.
  std::vector<crypto::Certificate> chain;
  bool chain_complete = false;
  // Index into ImportPlan::keys; none when the request has no matching key.
  std::optional<size_t> key_index;
};

struct ImportPlan {
  std::vector<ImportedFile> files;
  std::vector<ImportedLeaf> leaves;
  // Distinct CA certificates of the request's files (create_time unset),
  // each stored so that later imports can complete chains with it.
  std::vector<CaCertificateRecord> ca_certificates;
  std::vector<ImportedKey> keys;
};

// Reads every file and plans the import. `now` decides which leaves are
// noted as expired or not yet valid. Fails only when `ca_lookup` fails.
absl::StatusOr<ImportPlan> Analyze(const std::vector<ImportFileInput>& files,
                                   const CaLookup& ca_lookup, absl::Time now);

// Metadata for the managed certificates an import creates.
struct ImportMetadata {
  std::string owner;
  std::vector<std::string> environments;
  std::map<std::string, std::string> tags;
  std::string source = "imported";
  // Add the leaf as a new version of this certificate instead.
  std::string target_certificate_id;
};

// The store's item for `leaf`, with the vault key name the caller got for
// its private key (empty when none). The origin is the file name.
ImportItem MakeImportItem(const ImportPlan& plan, const ImportedLeaf& leaf,
                          const ImportMetadata& metadata, std::string key_name);

}  // namespace certplane::inventory

#endif  // CERTPLANE_SERVICES_INVENTORY_IMPORTER_H_
