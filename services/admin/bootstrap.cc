#include "services/admin/bootstrap.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "libs/crypto/certificate.h"
#include "libs/crypto/issue.h"
#include "libs/crypto/key.h"
#include "libs/server/private_file.h"
#include "libs/status/status_macros.h"

namespace certplane::admin {
namespace {

namespace fs = std::filesystem;
using crypto::Certificate;
using crypto::PrivateKey;

crypto::DistinguishedName Name(const std::string& cn) {
  crypto::DistinguishedName dn;
  dn.attributes.push_back({"O", "2.5.4.10", "certplane"});
  dn.attributes.push_back({"CN", "2.5.4.3", cn});
  return dn;
}

bool IsIp(const std::string& host) {
  return host.find_first_not_of("0123456789.") == std::string::npos ||
         host.find(':') != std::string::npos;
}

absl::StatusOr<std::string> ReadText(const fs::path& path) {
  std::ifstream in(path);
  if (!in)
    return absl::NotFoundError(absl::StrCat("cannot read ", path.string()));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

absl::Status WriteText(const fs::path& path, const std::string& text) {
  fs::path temp = path;
  temp += ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << text;
    if (!out)
      return absl::InternalError(absl::StrCat("cannot write ", temp.string()));
  }
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("renaming ", temp.string(), ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<PrivateKey> ReadKey(const fs::path& path) {
  CERTPLANE_ASSIGN_OR_RETURN(
      crypto::SecretBytes pem,
      server::ReadPrivateFile(path.string(), "private key file"));
  return PrivateKey::FromPem(pem.view());
}

absl::Status WriteKey(const fs::path& path, const PrivateKey& key) {
  CERTPLANE_ASSIGN_OR_RETURN(crypto::SecretBytes pem, key.ToPkcs8Pem());
  return server::WritePrivateFile(path.string(), pem);
}

}  // namespace

std::string ServiceIdentity(const std::string& service) {
  return absl::StrCat("spiffe://certplane/", service);
}

absl::StatusOr<BootstrapReport> Bootstrap(const BootstrapOptions& o) {
  if (o.dir.empty()) return absl::InvalidArgumentError("no folder given");
  std::error_code ec;
  fs::create_directories(o.dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", o.dir, ": ", ec.message()));
  }
  fs::permissions(o.dir, fs::perms::owner_all, fs::perm_options::replace, ec);
  const fs::path dir(o.dir);
  BootstrapReport report;

  // The CA.
  const fs::path ca_pem = dir / "ca.pem";
  const fs::path ca_key_path = dir / "ca.key";
  std::optional<Certificate> ca;
  std::optional<PrivateKey> ca_key;
  if (fs::exists(ca_pem) && fs::exists(ca_key_path)) {
    CERTPLANE_ASSIGN_OR_RETURN(std::string pem, ReadText(ca_pem));
    CERTPLANE_ASSIGN_OR_RETURN(Certificate cert, Certificate::FromPem(pem));
    CERTPLANE_ASSIGN_OR_RETURN(PrivateKey key, ReadKey(ca_key_path));
    if (!(key.public_key() == cert.public_key())) {
      return absl::FailedPreconditionError(absl::StrCat(
          ca_key_path.string(), " does not belong to ", ca_pem.string()));
    }
    if (cert.info().not_after - o.renew_within < o.now) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the platform CA in ", ca_pem.string(), " expires ",
          absl::FormatTime(cert.info().not_after),
          "; rotate it deliberately (every service certificate changes)"));
    }
    ca = std::move(cert);
    ca_key = std::move(key);
    report.kept.push_back(ca_pem.string());
  } else {
    CERTPLANE_ASSIGN_OR_RETURN(
        PrivateKey key, PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
    crypto::CertificateProfile profile;
    profile.not_before = o.now - absl::Minutes(5);
    profile.not_after = o.now + absl::Hours(24 * 3650);
    profile.is_ca = true;
    profile.path_length = 0;
    profile.key_usage = {"digitalSignature", "keyCertSign", "cRLSign"};
    crypto::IssueRequest request{
        Name("certplane platform CA"), key.public_key(), {}};
    CERTPLANE_ASSIGN_OR_RETURN(
        Certificate cert,
        crypto::IssueCertificate(request, profile, nullptr,
                                 crypto::PrivateKeySigner(key)));
    CERTPLANE_RETURN_IF_ERROR(WriteKey(ca_key_path, key));
    CERTPLANE_RETURN_IF_ERROR(WriteText(ca_pem, cert.ToPem()));
    report.created.push_back(ca_pem.string());
    ca = std::move(cert);
    ca_key = std::move(key);
  }

  for (const std::string& service : o.services) {
    const fs::path pem_path = dir / (service + ".pem");
    const fs::path key_path = dir / (service + ".key");
    if (fs::exists(pem_path) && fs::exists(key_path)) {
      absl::StatusOr<std::string> pem = ReadText(pem_path);
      absl::StatusOr<Certificate> cert =
          pem.ok() ? Certificate::FromPem(*pem) : pem.status();
      absl::StatusOr<PrivateKey> key = ReadKey(key_path);
      const bool good = cert.ok() && key.ok() &&
                        key->public_key() == cert->public_key() &&
                        cert->info().issuer == ca->info().subject &&
                        cert->info().not_after - o.renew_within > o.now;
      if (good) {
        report.kept.push_back(pem_path.string());
        continue;
      }
    }
    CERTPLANE_ASSIGN_OR_RETURN(
        PrivateKey key, PrivateKey::Generate(crypto::KeyType::kEcdsaP256));
    crypto::CertificateProfile profile;
    profile.not_before = o.now - absl::Minutes(5);
    profile.not_after = o.now + absl::Hours(24 * 365);
    profile.key_usage = {"digitalSignature"};
    profile.extended_key_usage = {"serverAuth", "clientAuth"};
    std::vector<crypto::SubjectAltName> sans = {
        {crypto::SanType::kUri, ServiceIdentity(service)},
        {crypto::SanType::kDns, service},
        {crypto::SanType::kDns, "certplane-" + service},
        {crypto::SanType::kDns, "localhost"},
        {crypto::SanType::kIp, "127.0.0.1"}};
    for (const std::string& host : o.hosts) {
      sans.push_back(
          {IsIp(host) ? crypto::SanType::kIp : crypto::SanType::kDns, host});
    }
    crypto::IssueRequest request{Name("certplane-" + service), key.public_key(),
                                 sans};
    CERTPLANE_ASSIGN_OR_RETURN(
        Certificate cert,
        crypto::IssueCertificate(request, profile, &*ca,
                                 crypto::PrivateKeySigner(*ca_key)));
    CERTPLANE_RETURN_IF_ERROR(WriteKey(key_path, key));
    CERTPLANE_RETURN_IF_ERROR(WriteText(pem_path, cert.ToPem()));
    report.created.push_back(pem_path.string());
  }
  return report;
}

}  // namespace certplane::admin
