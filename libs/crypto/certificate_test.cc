#include "libs/crypto/certificate.h"

#include <stdlib.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "libs/crypto/testing/test_pki.h"
#include "libs/testing/scratch_dir.h"
#include "libs/testing/status_matchers.h"

namespace certplane::crypto {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;

// ------------------------------------------------------------------ fixtures
//
// Certificates with unusual contents (AIA, CRL DP, policies, SCTs, explicit
// curves, SHA-1, RSA-1024, v1, empty subject, negative serial) are made at
// test time with the openssl command-line tool in a temporary folder.

class CliPki {
 public:
  CliPki() { Build(); }

  std::string Pem(const std::string& name) const {
    return dir_.Read(name + ".pem");
  }
  Certificate Cert(const std::string& name) const {
    return ValueOrDie(Certificate::FromPem(Pem(name)));
  }
  std::string Der(const std::string& name) const {
    Run(absl::StrCat("openssl x509 -in ", name, ".pem -outform DER -out ", name,
                     ".der"));
    return dir_.Read(name + ".der");
  }
  // notAfter as the openssl tool reports it.
  absl::Time CliNotAfter(const std::string& name) const {
    std::string text(absl::StripAsciiWhitespace(Run(absl::StrCat(
        "openssl x509 -in ", name, ".pem -noout -dateopt iso_8601 -enddate"))));
    absl::Time time;
    std::string error;
    REQUIRE(absl::ParseTime("notAfter=%Y-%m-%d %H:%M:%SZ", text,
                            absl::UTCTimeZone(), &time, &error));
    return time;
  }

 private:
  // Runs `command` in the fixture folder and returns its standard output.
  std::string Run(const std::string& command) const {
    return dir_.RunOrFail(command);
  }

  void Build() {
    dir_.Write("req.cnf",
               "[req]\ndistinguished_name = dn\nx509_extensions = v3_ca\n"
               "prompt = no\nutf8 = yes\nstring_mask = utf8only\n[dn]\n"
               "[v3_ca]\nbasicConstraints = critical, CA:TRUE, pathlen:1\n"
               "keyUsage = critical, keyCertSign, cRLSign\n"
               "subjectKeyIdentifier = hash\n");
    // A root with an RSA key.
    Run("openssl req -x509 -config req.cnf -newkey rsa:2048 -nodes "
        "-keyout root.key -out root.pem -days 30 "
        "-subj '/C=US/O=Certplane CLI/CN=CLI Root'");
    // A leaf with every extension the description shows; the SCT list holds
    // two entries (TLS encoding inside an OCTET STRING).
    dir_.Write(
        "full.ext",
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth, clientAuth, 1.3.6.1.4.1.99999.1\n"
        "subjectAltName = DNS:www.example.com, DNS:*.example.com, "
        "IP:192.0.2.1, IP:2001:db8::1, email:ops@example.com, "
        "URI:https://example.com/id, RID:1.2.3.4\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
        "authorityInfoAccess = OCSP;URI:http://ocsp.example.com, "
        "caIssuers;URI:http://ca.example.com/root.crt\n"
        "crlDistributionPoints = URI:http://crl.example.com/root.crl\n"
        "certificatePolicies = 2.23.140.1.2.2, @cps\n"
        "1.3.6.1.4.1.11129.2.4.2 = "
        "DER:04:0b:00:09:00:03:aa:bb:cc:00:02:dd:ee\n"
        "[cps]\npolicyIdentifier = 1.3.6.1.4.1.99999.2\n"
        "CPS.1 = \"https://cps.example.com/cps\"\n");
    Run("openssl req -new -config req.cnf -newkey ec "
        "-pkeyopt ec_paramgen_curve:P-256 -nodes -keyout full.key "
        "-out full.csr -subj '/C=DE/ST=Berlin/L=Berlin/O=Exämple GmbH/"
        "OU=Ops/OU=Web/CN=www.example.com/emailAddress=ops@example.com'");
    Run("openssl x509 -req -in full.csr -CA root.pem -CAkey root.key "
        "-set_serial 0x00ab0123456789abcdef0123456789abcdef0123 -days 10 "
        "-extfile full.ext -out full.pem");
    // Valid past 2049: notAfter is a GeneralizedTime.
    Run("openssl x509 -req -in full.csr -CA root.pem -CAkey root.key "
        "-days 11000 -out long.pem");
    // RSA-1024 signed with SHA-1 (still described; policy is elsewhere).
    Run("openssl req -x509 -config req.cnf -newkey rsa:1024 -sha1 -nodes "
        "-keyout weak.key -out weak.pem -days 5 -subj '/CN=weak'");
    // Ed25519, self-signed.
    Run("openssl req -x509 -config req.cnf -newkey ed25519 -nodes "
        "-keyout ed.key -out ed.pem -days 5 -subj '/CN=ed'");
    // v1 (no extensions), empty subject, negative serial.
    Run("openssl req -new -config req.cnf -key full.key -subj / -out odd.csr");
    Run("openssl x509 -req -in odd.csr -CA root.pem -CAkey root.key "
        "-set_serial -5 -days 3 -out odd.pem");
    // CN only, no SANs.
    Run("openssl req -new -config req.cnf -key full.key "
        "-subj '/O=Legacy/CN=Legacy.Example.com' -out cn.csr");
    Run("openssl x509 -req -in cn.csr -CA root.pem -CAkey root.key -days 3 "
        "-out cn.pem");
    // A SAN that is not DNS: the CN must then be ignored.
    dir_.Write("email.ext", "subjectAltName = email:a@example.com\n");
    Run("openssl req -new -config req.cnf -key full.key "
        "-subj '/CN=mail.example.com' -out email.csr");
    Run("openssl x509 -req -in email.csr -CA root.pem -CAkey root.key "
        "-days 3 -extfile email.ext -out email.pem");
    // Wildcards that must never match.
    dir_.Write("badwild.ext",
               "subjectAltName = DNS:f*.example.com, DNS:*.com, "
               "DNS:a.*.example.org, DNS:*, DNS:**.example.net, "
               "DNS:exact.example.org.\n");
    Run("openssl x509 -req -in cn.csr -CA root.pem -CAkey root.key -days 3 "
        "-extfile badwild.ext -out badwild.pem");
    // Extensions whose contents do not decode, and an SCT list whose length
    // runs past its end.
    dir_.Write("garbled.ext",
               "2.5.29.17 = DER:30:03:82:05:61\n"
               "2.5.29.37 = DER:30:02:06\n"
               "2.5.29.31 = DER:ff:ff\n"
               "1.3.6.1.4.1.11129.2.4.2 = DER:04:07:00:09:00:03:aa:bb:cc\n");
    Run("openssl x509 -req -in cn.csr -CA root.pem -CAkey root.key -days 3 "
        "-extfile garbled.ext -out garbled.pem");
    // An empty SCT list.
    dir_.Write("nosct.ext", "1.3.6.1.4.1.11129.2.4.2 = DER:04:02:00:00\n");
    Run("openssl x509 -req -in cn.csr -CA root.pem -CAkey root.key -days 3 "
        "-extfile nosct.ext -out nosct.pem");
    // An EC key with explicit curve parameters (CVE-2022-0778 style).
    Run("openssl ecparam -name prime256v1 -param_enc explicit -genkey "
        "-noout -out explicit.key");
    Run("openssl req -new -config req.cnf -key explicit.key -subj /CN=explicit "
        "-out explicit.csr");
    Run("openssl x509 -req -in explicit.csr -CA root.pem -CAkey root.key "
        "-days 3 -out explicit.pem");
  }

  ::certplane::testing::ScratchDir dir_{"certplane-cert"};
};

const CliPki& Pki() {
  // Destroyed at exit, which removes its temporary folder.
  static const CliPki pki;
  return pki;
}

// ------------------------------------------------------------------- parsing

TEST_CASE("RejectsGarbageAndEmptyCertificates", "[certificate]") {
  CHECK_THAT(Certificate::FromDer(""),
             StatusIs(absl::StatusCode::kInvalidArgument, "empty"));
  CHECK_THAT(Certificate::FromDer("\x30\x03\x02\x01"),
             StatusIs(absl::StatusCode::kInvalidArgument, "d2i_X509"));
  CHECK_THAT(Certificate::FromDer(std::string(5000, '\xff')),
             StatusIs(absl::StatusCode::kInvalidArgument, "d2i_X509"));
  CHECK_THAT(Certificate::FromPem(""),
             StatusIs(absl::StatusCode::kInvalidArgument, "PEM"));
  CHECK_THAT(Certificate::FromPem("hello"),
             StatusIs(absl::StatusCode::kInvalidArgument, "PEM"));
  CHECK_THAT(Certificate::FromPem("-----BEGIN CERTIFICATE-----\nAAAA\n"
                                  "-----END CERTIFICATE-----\n"),
             StatusIs(absl::StatusCode::kInvalidArgument, "PEM"));
}

TEST_CASE("RejectsEveryTruncationOfARealCertificate", "[certificate]") {
  std::string der = Pki().Der("full");
  REQUIRE_THAT(Certificate::FromDer(der), IsOk());
  for (size_t length = 0; length < der.size(); ++length) {
    INFO("prefix length " << length);
    CHECK_THAT(Certificate::FromDer(der.substr(0, length)),
               StatusIs(absl::StatusCode::kInvalidArgument));
  }
  CHECK_THAT(Certificate::FromDer(der + "x"),
             StatusIs(absl::StatusCode::kInvalidArgument, "trailing bytes"));
}

TEST_CASE("RejectsTruncatedPem", "[certificate]") {
  std::string pem = Pki().Pem("full");
  for (size_t length : {pem.size() / 4, pem.size() / 2, pem.size() - 30}) {
    CHECK_THAT(Certificate::FromPem(pem.substr(0, length)),
               StatusIs(absl::StatusCode::kInvalidArgument, "PEM"));
  }
}

TEST_CASE("ReadsPemWithTextAroundIt", "[certificate]") {
  std::string pem = Pki().Pem("full");
  Certificate plain = ValueOrDie(Certificate::FromPem(pem));
  Certificate wrapped = ValueOrDie(Certificate::FromPem(
      absl::StrCat("subject=CN = www.example.com\nsome junk\n\n", pem,
                   "\ntrailing junk\n")));
  CHECK(wrapped == plain);
  CHECK(ValueOrDie(Certificate::FromDer(plain.der())) == plain);
  CHECK(ValueOrDie(Certificate::FromPem(plain.ToPem())) == plain);
}

TEST_CASE("CopiesOfAMovedFromCertificateAreEmptyNotACrash", "[certificate]") {
  Certificate cert = Pki().Cert("root");
  Certificate moved = std::move(cert);
  Certificate copy(cert);  // NOLINT(bugprone-use-after-move): on purpose.
  CHECK(copy.native() == nullptr);
  Certificate assigned = moved;
  assigned = cert;  // NOLINT(bugprone-use-after-move): on purpose.
  CHECK(assigned.native() == nullptr);
}

TEST_CASE("RefusesPemInputsOverIntMax", "[certificate]") {
  // Only the size is looked at; the bytes past the buffer are never read.
  std::string small = "x";
  absl::string_view huge(small.data(), size_t{INT_MAX} + 1);
  CHECK_THAT(Certificate::FromPem(huge),
             StatusIs(absl::StatusCode::kInvalidArgument, "input too large"));
}

TEST_CASE("RefusesExplicitCurveParametersWithoutHanging", "[certificate]") {
  CHECK_THAT(Certificate::FromPem(Pki().Pem("explicit")),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "explicit EC curve parameters are not supported; use a "
                      "named curve"));
  // The same certificate with its curve's prime replaced by a composite
  // number, as in CVE-2022-0778: still refused, and promptly.
  std::string der = Pki().Der("explicit");
  const std::string prime = absl::StrCat(
      std::string("\x02\x21\x00\xff\xff\xff\xff\x00\x00\x00\x01", 11),
      std::string(12, '\0'), std::string(12, '\xff'));
  size_t at = der.find(prime);
  REQUIRE(at != std::string::npos);
  der[at + prime.size() - 1] = '\x15';
  auto done = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> result = done->get_future();
  std::thread([der, done] {
    done->set_value(Certificate::FromDer(der).status());
  }).detach();
  REQUIRE(result.wait_for(std::chrono::seconds(10)) ==
          std::future_status::ready);
  CHECK_THAT(result.get(),
             StatusIs(absl::StatusCode::kInvalidArgument, "explicit EC curve"));
}

// --------------------------------------------------------------- description

TEST_CASE("DescribesEveryFieldOfAFullLeaf", "[certificate]") {
  Certificate root = Pki().Cert("root");
  Certificate cert = Pki().Cert("full");
  CertificateInfo info = ValueOrDie(cert.Describe());
  CertificateInfo root_info = ValueOrDie(root.Describe());

  CHECK(info.version == 3);
  CHECK(info.serial_hex == "ab0123456789abcdef0123456789abcdef0123");

  std::vector<std::string> types;
  for (const NameAttribute& attribute : info.subject.attributes) {
    types.push_back(attribute.type);
  }
  CHECK(types == std::vector<std::string>{"C", "ST", "L", "O", "OU", "OU", "CN",
                                          "emailAddress"});
  CHECK(info.subject.attributes[0].oid == "2.5.4.6");
  CHECK(info.subject.attributes[6].oid == "2.5.4.3");
  CHECK(info.subject.attributes[7].oid == "1.2.840.113549.1.9.1");
  CHECK(info.subject.Get("O") == "Exämple GmbH");
  CHECK(info.subject.Get("OU") == "Ops");
  CHECK(info.subject.Get("CN") == "www.example.com");
  CHECK(info.subject.Get("title").empty());
  CHECK(info.subject.ToString() ==
        "emailAddress=ops@example.com,CN=www.example.com,OU=Web,OU=Ops,"
        "O=Exämple GmbH,L=Berlin,ST=Berlin,C=DE");
  CHECK(info.issuer.ToString() == "CN=CLI Root,O=Certplane CLI,C=US");
  CHECK(info.issuer == root_info.subject);

  CHECK(info.not_after - info.not_before == absl::Hours(24 * 10));
  CHECK(info.not_after == Pki().CliNotAfter("full"));
  CHECK(absl::AbsDuration(info.not_before - absl::Now()) < absl::Hours(1));

  CHECK(info.sans ==
        std::vector<SubjectAltName>{{SanType::kDns, "www.example.com"},
                                    {SanType::kDns, "*.example.com"},
                                    {SanType::kIp, "192.0.2.1"},
                                    {SanType::kIp, "2001:db8::1"},
                                    {SanType::kEmail, "ops@example.com"},
                                    {SanType::kUri, "https://example.com/id"}});

  CHECK(info.key.algorithm == KeyAlgorithm::kEcdsa);
  CHECK(info.key.bits == 256);
  CHECK(info.key.curve == "P-256");
  CHECK_FALSE(info.key.explicit_curve_parameters);
  CHECK(info.signature_algorithm == "sha256WithRSAEncryption");

  CHECK(info.has_basic_constraints);
  CHECK_FALSE(info.is_ca);
  CHECK(info.path_length == -1);
  CHECK(info.key_usage ==
        std::vector<std::string>{"digitalSignature", "keyEncipherment"});
  CHECK(info.extended_key_usage ==
        std::vector<std::string>{"serverAuth", "clientAuth",
                                 "1.3.6.1.4.1.99999.1"});

  REQUIRE(info.subject_key_id_hex.size() == 40);
  CHECK(info.authority_key_id_hex == root_info.subject_key_id_hex);
  CHECK(info.ocsp_urls == std::vector<std::string>{"http://ocsp.example.com"});
  CHECK(info.ca_issuer_urls ==
        std::vector<std::string>{"http://ca.example.com/root.crt"});
  CHECK(info.crl_distribution_points ==
        std::vector<std::string>{"http://crl.example.com/root.crl"});
  REQUIRE(info.policies.size() == 2);
  CHECK(info.policies[0].oid == "2.23.140.1.2.2");
  CHECK(info.policies[0].cps_uris.empty());
  CHECK(info.policies[1].oid == "1.3.6.1.4.1.99999.2");
  CHECK(info.policies[1].cps_uris ==
        std::vector<std::string>{"https://cps.example.com/cps"});
  CHECK(info.sct_count == 2);

  CHECK(info.sha256_fingerprint_hex == HexEncode(cert.Sha256Fingerprint()));
  CHECK(info.sha256_fingerprint_hex == Sha256Hex(cert.der()));
  CHECK(CertificateDerToPem(cert.der()) == cert.ToPem());
  CHECK(info.sha1_fingerprint_hex.size() == 40);
  CHECK(info.sha1_fingerprint_hex != info.sha256_fingerprint_hex.substr(0, 40));
  CHECK(info.spki_sha256_hex == HexEncode(cert.public_key().SpkiSha256()));
  CHECK_FALSE(info.self_signed);
}

TEST_CASE("DescribesARootAsSelfSignedCa", "[certificate]") {
  CertificateInfo info = ValueOrDie(Pki().Cert("root").Describe());
  CHECK(info.self_signed);
  CHECK(info.has_basic_constraints);
  CHECK(info.is_ca);
  CHECK(info.path_length == 1);
  CHECK(info.key_usage == std::vector<std::string>{"keyCertSign", "cRLSign"});
  CHECK(info.key.algorithm == KeyAlgorithm::kRsa);
  CHECK(info.key.bits == 2048);
  CHECK(info.sct_count == 0);
  CHECK(info.sans.empty());
  CHECK(info.policies.empty());
}

TEST_CASE("ParsesACaCertificateOnceAndEveryLeafAfresh", "[certificate]") {
  const Certificate& root = Pki().Cert("root");
  Certificate a = ValueOrDie(Certificate::FromDer(root.der()));
  Certificate b = ValueOrDie(Certificate::FromPem(root.ToPem()));
  // The same parsed object, handed out again: CAs recur in every chain.
  CHECK(a.native() == b.native());
  CHECK(a == root);
  CHECK(a.info().is_ca);
  // A leaf is not remembered (there are too many of them).
  const Certificate leaf = Pki().Cert("full");
  REQUIRE_FALSE(leaf.info().is_ca);
  Certificate c = ValueOrDie(Certificate::FromDer(leaf.der()));
  Certificate d = ValueOrDie(Certificate::FromDer(leaf.der()));
  CHECK(c.native() != d.native());
  CHECK(c == d);
  // Input that merely starts like a known CA is still refused.
  CHECK_FALSE(Certificate::FromDer(root.der() + "x").ok());
  CHECK_FALSE(
      Certificate::FromDer(root.der().substr(0, root.der().size() - 1)).ok());
}

TEST_CASE("ReadsGeneralizedTimeAfter2049", "[certificate]") {
  CertificateInfo info = ValueOrDie(Pki().Cert("long").Describe());
  CHECK(info.not_after - info.not_before == absl::Hours(24 * 11000));
  CHECK(info.not_after == Pki().CliNotAfter("long"));
  CHECK(absl::ToCivilYear(info.not_after, absl::UTCTimeZone()).year() > 2049);
}

TEST_CASE("DescribesRsa1024Sha1CertificatesAsTheyAre", "[certificate]") {
  CertificateInfo info = ValueOrDie(Pki().Cert("weak").Describe());
  CHECK(info.key.algorithm == KeyAlgorithm::kRsa);
  CHECK(info.key.bits == 1024);
  CHECK(info.signature_algorithm == "sha1WithRSAEncryption");
  CHECK(info.self_signed);
}

TEST_CASE("DescribesEd25519Certificates", "[certificate]") {
  CertificateInfo info = ValueOrDie(Pki().Cert("ed").Describe());
  CHECK(info.key.algorithm == KeyAlgorithm::kEd25519);
  CHECK(info.signature_algorithm == "ED25519");
  CHECK(info.self_signed);
}

TEST_CASE("DescribesV1CertificateWithEmptySubjectAndNegativeSerial",
          "[certificate]") {
  CertificateInfo info = ValueOrDie(Pki().Cert("odd").Describe());
  CHECK(info.version == 1);
  CHECK(info.serial_hex == "-5");
  CHECK(info.subject.attributes.empty());
  CHECK(info.subject.ToString().empty());
  CHECK_FALSE(info.has_basic_constraints);
  CHECK(info.key_usage.empty());
  CHECK(info.extended_key_usage.empty());
  CHECK(info.subject_key_id_hex.empty());
  CHECK(info.authority_key_id_hex.empty());
  CHECK_FALSE(info.self_signed);
}

TEST_CASE("DescribesCertificatesWithUndecodableExtensionsWithoutThem",
          "[certificate]") {
  auto cert = Certificate::FromPem(Pki().Pem("garbled"));
  REQUIRE_THAT(cert, IsOk());
  CertificateInfo info = ValueOrDie(cert->Describe());
  CHECK(info.subject.Get("CN") == "Legacy.Example.com");
  CHECK(info.sans.empty());
  CHECK(info.extended_key_usage.empty());
  CHECK(info.crl_distribution_points.empty());
  CHECK(info.sct_count == 0);
  // A SAN extension is present (if unreadable), so the CN is not used.
  CHECK_FALSE(cert->MatchesHostname("legacy.example.com"));
  CHECK(ValueOrDie(Pki().Cert("nosct").Describe()).sct_count == 0);
}

TEST_CASE("DescribesCertificatesFromTheTestPki", "[certificate]") {
  testing::TestCertOptions options;
  options.common_name = "api.example.com";
  options.sans = {{SanType::kDns, "api.example.com"},
                  {SanType::kIp, "2001:db8::7"}};
  auto chain = ValueOrDie(testing::MakeChain(options));
  CertificateInfo info = ValueOrDie(chain.leaf.cert.Describe());
  CHECK(info.subject.ToString() == "CN=api.example.com");
  CHECK(info.issuer.ToString() == "CN=certplane Test Intermediate CA");
  CHECK(info.sans == options.sans);
  CHECK(info.extended_key_usage == std::vector<std::string>{"serverAuth"});
  CHECK(info.authority_key_id_hex ==
        chain.intermediate.cert.info().subject_key_id_hex);
  CHECK(chain.root.cert.info().self_signed);
  CHECK(chain.intermediate.cert.info().is_ca);
  CHECK(chain.leaf.cert.IsIssuedBy(chain.intermediate.cert));
  CHECK_FALSE(chain.leaf.cert.IsIssuedBy(chain.root.cert));
}

TEST_CASE("EscapesSpecialCharactersInDistinguishedNames", "[certificate]") {
  DistinguishedName name;
  name.attributes = {{"O", "2.5.4.10", "Acme, Inc."},
                     {"CN", "2.5.4.3", " a+b=c "}};
  CHECK(name.ToString() == "CN=\\ a\\+b\\=c\\ ,O=Acme\\, Inc.");
  CHECK(SanTypeName(SanType::kIp) == "IP");
}

TEST_CASE("ChecksThatAPrivateKeyMatchesItsCertificate", "[certificate]") {
  Certificate cert = Pki().Cert("full");
  auto other = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CHECK_THAT(cert.CheckKeyMatches(other),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "private key does not match certificate"));
  testing::TestCertOptions options;
  auto root = ValueOrDie(testing::MakeRootCa(options));
  CHECK_THAT(root.cert.CheckKeyMatches(root.key), IsOk());
}

// ------------------------------------------------------------------ hostnames

TEST_CASE("MatchesHostnamesAsRfc6125Says", "[certificate][hostname]") {
  Certificate full = Pki().Cert("full");        // www, *.example.com, IPs
  Certificate cn_only = Pki().Cert("cn");       // CN=Legacy.Example.com
  Certificate email = Pki().Cert("email");      // CN + email SAN only
  Certificate badwild = Pki().Cert("badwild");  // odd wildcards
  struct Case {
    const Certificate* cert;
    const char* host;
    bool matches;
  };
  const Case cases[] = {
      {&full, "www.example.com", true},
      {&full, "WWW.Example.COM", true},
      {&full, "www.example.com.", true},
      {&full, "a.example.com", true},
      {&full, "A.EXAMPLE.COM", true},
      {&full, "a.b.example.com", false},
      {&full, "example.com", false},
      {&full, ".example.com", false},
      {&full, "www.example.org", false},
      {&full, "wwwexample.com", false},
      {&full, "*.example.com", false},
      {&full, "a..example.com", false},
      {&full, "", false},
      {&full, ".", false},
      {&full, "192.0.2.1", true},
      {&full, "192.0.2.2", false},
      {&full, "192.0.2.1.", false},
      {&badwild, "192.0.2.1", false},
      {&full, "2001:db8::1", true},
      {&full, "2001:0db8:0:0:0:0:0:1", true},
      {&full, "[2001:db8::1]", true},
      {&full, "2001:db8::2", false},
      {&full, "ops@example.com", false},
      {&cn_only, "legacy.example.com", true},
      {&cn_only, "legacy.example.com.", true},
      {&cn_only, "other.example.com", false},
      {&email, "mail.example.com", false},
      {&badwild, "legacy.example.com", false},
      {&badwild, "foo.example.com", false},
      {&badwild, "f.example.com", false},
      {&badwild, "example.com", false},
      {&badwild, "a.b.example.org", false},
      {&badwild, "x", false},
      {&badwild, "a.example.net", false},
      {&badwild, "exact.example.org", true},
      {&badwild, "exact.example.org.", true},
  };
  for (const Case& c : cases) {
    INFO("host '" << c.host << "'");
    CHECK(c.cert->MatchesHostname(c.host) == c.matches);
  }
}

}  // namespace
}  // namespace certplane::crypto
