#include "libs/crypto/csr.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "libs/crypto/testing/test_pki.h"
#include "libs/testing/scratch_dir.h"
#include "libs/testing/status_matchers.h"

namespace certplane::crypto {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;

DistinguishedName Cn(const std::string& cn) {
  DistinguishedName dn;
  dn.attributes.push_back({"CN", "2.5.4.3", cn});
  return dn;
}

// Keys the KeyType enum does not offer, made with EVP at test time.
PrivateKey GenerateRsa(int bits) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, nullptr);
  REQUIRE(ctx != nullptr);
  EVP_PKEY* pkey = nullptr;
  bool ok = EVP_PKEY_keygen_init(ctx) > 0 &&
            EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, bits) > 0 &&
            EVP_PKEY_keygen(ctx, &pkey) > 0;
  EVP_PKEY_CTX_free(ctx);
  REQUIRE(ok);
  return PrivateKey::Adopt(EvpPkeyHandle(pkey));
}

PrivateKey GenerateEc(int curve_nid) {
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, nullptr);
  REQUIRE(ctx != nullptr);
  EVP_PKEY* pkey = nullptr;
  bool ok = EVP_PKEY_keygen_init(ctx) > 0 &&
            EVP_PKEY_CTX_set_ec_paramgen_curve_nid(ctx, curve_nid) > 0 &&
            EVP_PKEY_keygen(ctx, &pkey) > 0;
  EVP_PKEY_CTX_free(ctx);
  REQUIRE(ok);
  return PrivateKey::Adopt(EvpPkeyHandle(pkey));
}

// A CSR whose public key is an RSA key with a random odd modulus of `bits`
// bits (public half only), signed by an unrelated P-256 key. Key rules are
// checked before the signature, so this exercises them for sizes a library
// will not generate (BoringSSL rounds RSA sizes down to multiples of 128).
std::string CsrDerWithRsaModulus(int bits, unsigned long exponent = RSA_F4) {
  BIGNUM* n = BN_new();
  BIGNUM* e = BN_new();
  REQUIRE(n != nullptr);
  REQUIRE(e != nullptr);
  REQUIRE(BN_rand(n, bits, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ODD) == 1);
  REQUIRE(BN_set_word(e, exponent) == 1);
  RSA* rsa = RSA_new();
  REQUIRE(rsa != nullptr);
  REQUIRE(RSA_set0_key(rsa, n, e, nullptr) == 1);
  EVP_PKEY* pkey = EVP_PKEY_new();
  REQUIRE(pkey != nullptr);
  REQUIRE(EVP_PKEY_assign_RSA(pkey, rsa) == 1);
  PrivateKey signer = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  X509_REQ* req = X509_REQ_new();
  REQUIRE(req != nullptr);
  X509_NAME* name = X509_NAME_new();
  const std::string cn = "odd.example.com";
  bool ok =
      name != nullptr && X509_REQ_set_version(req, 0) == 1 &&
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const uint8_t*>(cn.data()),
                                 static_cast<int>(cn.size()), -1, 0) == 1 &&
      X509_REQ_set_subject_name(req, name) == 1 &&
      X509_REQ_set_pubkey(req, pkey) == 1 &&
      X509_REQ_sign(req, signer.native(), EVP_sha256()) > 0;
  uint8_t* der = nullptr;
  int length = ok ? i2d_X509_REQ(req, &der) : -1;
  X509_NAME_free(name);
  X509_REQ_free(req);
  EVP_PKEY_free(pkey);
  REQUIRE(length > 0);
  std::string encoded(reinterpret_cast<char*>(der),
                      static_cast<size_t>(length));
  OPENSSL_free(der);
  return encoded;
}

CertificateRequest CsrWithRsaModulus(int bits) {
  return ValueOrDie(CertificateRequest::FromDer(CsrDerWithRsaModulus(bits)));
}

CertificateRequest MakeCsr(const PrivateKey& key, DistinguishedName subject,
                           std::vector<SubjectAltName> sans) {
  return ValueOrDie(CreateCsr(key, {std::move(subject), std::move(sans)}));
}

// ------------------------------------------------ RSA exponent and CN count

TEST_CASE("RefusesRsaPublicExponentOneAndEvenExponents") {
  CsrPolicy policy;
  for (unsigned long exponent : {1ul, 65536ul}) {
    INFO(exponent);
    auto csr =
        CertificateRequest::FromDer(CsrDerWithRsaModulus(2048, exponent));
#if defined(CERTPLANE_BORINGSSL)
    if (!csr.ok()) {
      // BoringSSL refuses such keys already when decoding them.
      CHECK_THAT(csr, StatusIs(absl::StatusCode::kInvalidArgument,
                               "CSR public key is unreadable"));
      continue;
    }
#endif
    REQUIRE(csr.ok());
    CHECK_THAT(CheckCsrPolicy(*csr, policy),
               StatusIs(absl::StatusCode::kInvalidArgument,
                        absl::StrCat("key rule: RSA public exponent ", exponent,
                                     " is not allowed")));
  }
}

TEST_CASE("RefusesRsaPublicExponentThreeOnlyForPublicTrust") {
  CsrPolicy policy;
  policy.public_trust = true;
  CHECK_THAT(CheckCsrPolicy(ValueOrDie(CertificateRequest::FromDer(
                                CsrDerWithRsaModulus(2048, 3))),
                            policy),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "key rule: RSA public exponent 3 is not allowed; it "
                      "must be odd, at least 65537"));
  // Without public trust e = 3 passes the key rules (the CSR then fails on
  // its missing SANs).
  policy.public_trust = false;
  CHECK_THAT(CheckCsrPolicy(ValueOrDie(CertificateRequest::FromDer(
                                CsrDerWithRsaModulus(2048, 3))),
                            policy),
             StatusIs(absl::StatusCode::kInvalidArgument, "SAN rule"));
}

TEST_CASE("RefusesSubjectsWithMoreThanOneCommonName") {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  DistinguishedName subject = Cn("a.example.com");
  subject.attributes.push_back({"CN", "2.5.4.3", "b.example.com"});
  CertificateRequest csr = MakeCsr(
      key, subject,
      {{SanType::kDns, "a.example.com"}, {SanType::kDns, "b.example.com"}});
  CHECK_THAT(CheckCsrPolicy(csr, CsrPolicy{}),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "CN rule: subject has 2 common names; at most one"));
  CHECK_THAT(CheckSingleCommonName(Cn("a.example.com")), IsOk());
}

// ---------------------------------------------------------- build and parse

TEST_CASE("CsrWithEachSanTypeRoundTripsThroughPemAndDer") {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  DistinguishedName subject;
  subject.attributes = {{"C", "2.5.4.6", "DE"},
                        {"O", "2.5.4.10", "Beispiel GmbH"},
                        {"OU", "2.5.4.11", "Plattform"},
                        {"CN", "2.5.4.3", "www.example.com"}};
  std::vector<SubjectAltName> sans = {
      {SanType::kDns, "www.example.com"},
      {SanType::kDns, "*.example.com"},
      {SanType::kIp, "192.0.2.1"},
      {SanType::kIp, "2001:db8::42"},
      {SanType::kEmail, "ops@example.com"},
      {SanType::kUri, "spiffe://example.com/ns/web"}};
  CertificateRequest csr = ValueOrDie(CreateCsr(key, {subject, sans}));
  CHECK(csr.subject() == subject);
  CHECK(csr.sans() == sans);
  CHECK(csr.unsupported_san_count() == 0);
  CHECK(csr.public_key() == key.public_key());
  CHECK(csr.signature_algorithm() == "ecdsa-with-SHA256");
  CHECK_THAT(csr.VerifySignature(), IsOk());

  std::string pem = csr.ToPem();
  CHECK(pem.rfind("-----BEGIN CERTIFICATE REQUEST-----", 0) == 0);
  CertificateRequest from_pem = ValueOrDie(CertificateRequest::FromPem(pem));
  CHECK(from_pem == csr);
  CHECK(from_pem.der() == csr.der());
  CHECK(from_pem.sans() == sans);
  CHECK(from_pem.subject() == subject);
  CertificateRequest from_der =
      ValueOrDie(CertificateRequest::FromDer(csr.der()));
  CHECK(from_der.sans() == sans);
  CHECK(from_der.public_key() == key.public_key());
  CHECK_THAT(from_der.VerifySignature(), IsOk());
  // Text around the PEM block is ignored.
  CHECK(ValueOrDie(CertificateRequest::FromPem(
            absl::StrCat("CSR for www\n", pem, "trailer\n"))) == csr);
}

TEST_CASE("CsrSignatureAlgorithmFollowsKeyType") {
  struct Case {
    KeyType type;
    std::string algorithm;
  };
  auto [type, algorithm] =
      GENERATE(Case{KeyType::kRsa2048, "sha256WithRSAEncryption"},
               Case{KeyType::kEcdsaP256, "ecdsa-with-SHA256"},
               Case{KeyType::kEcdsaP384, "ecdsa-with-SHA384"},
               Case{KeyType::kEd25519, "ED25519"});
  CAPTURE(KeyTypeName(type));
  PrivateKey key = ValueOrDie(PrivateKey::Generate(type));
  CertificateRequest csr =
      MakeCsr(key, Cn("a.example.com"), {{SanType::kDns, "a.example.com"}});
  CHECK(csr.signature_algorithm() == algorithm);
  CHECK_THAT(csr.VerifySignature(), IsOk());
}

TEST_CASE("CsrWithoutSansHasNoSans") {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CertificateRequest csr = MakeCsr(key, Cn("only-cn.example.com"), {});
  CHECK(csr.sans().empty());
  CHECK(csr.subject().Get("CN") == "only-cn.example.com");
  CHECK_THAT(
      CheckCsrPolicy(csr, CsrPolicy{}),
      StatusIs(absl::StatusCode::kInvalidArgument, "at least one is required"));
}

TEST_CASE("CreateCsrRejectsBadSansAndAttributes") {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CHECK_THAT(
      CreateCsr(key, {Cn("x"), {{SanType::kDns, "bad_name.com"}}}),
      StatusIs(absl::StatusCode::kInvalidArgument, "SAN DNS:\"bad_name.com\""));
  CHECK_THAT(CreateCsr(key, {Cn("x"), {{SanType::kIp, "10.0.0"}}}),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "is not an IPv4 or IPv6 address"));
  DistinguishedName bad;
  bad.attributes.push_back({"favouriteColour", "", "blue"});
  CHECK_THAT(CreateCsr(key, {bad, {}}),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "unknown name attribute type \"favouriteColour\""));
}

TEST_CASE("TamperedCsrFailsVerifySignature") {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kRsa2048));
  DistinguishedName subject;
  subject.attributes.push_back({"O", "2.5.4.10", "Example Org"});
  CertificateRequest csr =
      MakeCsr(key, subject, {{SanType::kDns, "a.example.com"}});
  CHECK_THAT(CheckCsrPolicy(csr, CsrPolicy{}), IsOk());
  SECTION("changed subject") {
    std::string der = csr.der();
    der[der.find("Example Org")] = 'e';
    CertificateRequest tampered = ValueOrDie(CertificateRequest::FromDer(der));
    CHECK(tampered.subject().Get("O") == "example Org");
    CHECK_THAT(tampered.VerifySignature(),
               StatusIs(absl::StatusCode::kInvalidArgument,
                        "CSR signature does not verify"));
    CHECK_THAT(CheckCsrPolicy(tampered, CsrPolicy{}),
               StatusIs(absl::StatusCode::kInvalidArgument,
                        "CSR signature does not verify"));
  }
  SECTION("changed SAN") {
    std::string der = csr.der();
    der[der.find("a.example.com")] = 'b';
    CertificateRequest tampered = ValueOrDie(CertificateRequest::FromDer(der));
    CHECK(tampered.sans() ==
          std::vector<SubjectAltName>{{SanType::kDns, "b.example.com"}});
    CHECK_THAT(CheckCsrPolicy(tampered, CsrPolicy{}),
               StatusIs(absl::StatusCode::kInvalidArgument,
                        "CSR signature does not verify"));
  }
  SECTION("changed signature") {
    std::string der = csr.der();
    der.back() = static_cast<char>(der.back() ^ 0x01);
    CertificateRequest tampered = ValueOrDie(CertificateRequest::FromDer(der));
    CHECK_THAT(tampered.VerifySignature(),
               StatusIs(absl::StatusCode::kInvalidArgument,
                        "CSR signature does not verify"));
  }
}

// Found by fuzz_csr: OpenSSL re-encodes a signature BIT STRING with unused
// bits differently, so a PEM written by re-encoding held another CSR.
TEST_CASE("PemOfACsrHoldsItsExactBytesEvenWithOddBitStrings") {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CertificateRequest csr =
      MakeCsr(key, Cn("a.example.com"), {{SanType::kDns, "a.example.com"}});
  std::string der = csr.der();
  // The signature is the last element: BIT STRING, short length, then the
  // unused-bits byte.
  size_t at = std::string::npos;
  for (size_t i = der.size() - 3; i > 0; --i) {
    if (der[i] == 0x03 &&
        static_cast<unsigned char>(der[i + 1]) == der.size() - i - 2 &&
        der[i + 2] == 0x00) {
      at = i;
      break;
    }
  }
  REQUIRE(at != std::string::npos);
  der[at + 2] = 0x06;
  absl::StatusOr<CertificateRequest> odd = CertificateRequest::FromDer(der);
  if (!odd.ok()) return;  // A library that refuses it is fine too.
  CertificateRequest again =
      ValueOrDie(CertificateRequest::FromPem(odd->ToPem()));
  CHECK(again == *odd);
  CHECK(again.der() == der);
}

TEST_CASE("RejectsGarbageTruncatedAndEmptyCsrInput") {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CertificateRequest csr =
      MakeCsr(key, Cn("a.example.com"), {{SanType::kDns, "a.example.com"}});
  const std::string& der = csr.der();
  CHECK_THAT(CertificateRequest::FromDer(""),
             StatusIs(absl::StatusCode::kInvalidArgument, "empty CSR"));
  CHECK_THAT(CertificateRequest::FromDer("garbage, not DER"),
             StatusIs(absl::StatusCode::kInvalidArgument, "d2i_X509_REQ"));
  for (size_t length :
       {size_t{1}, size_t{2}, size_t{10}, der.size() / 2, der.size() - 1}) {
    CAPTURE(length);
    CHECK_THAT(CertificateRequest::FromDer(der.substr(0, length)),
               StatusIs(absl::StatusCode::kInvalidArgument, "d2i_X509_REQ"));
  }
  CHECK_THAT(CertificateRequest::FromDer(der + "x"),
             StatusIs(absl::StatusCode::kInvalidArgument, "trailing bytes"));
  CHECK_THAT(
      CertificateRequest::FromPem(""),
      StatusIs(absl::StatusCode::kInvalidArgument, "CERTIFICATE REQUEST"));
  CHECK_THAT(
      CertificateRequest::FromPem("-----BEGIN CERTIFICATE REQUEST-----\n"
                                  "!!!not base64!!!\n"
                                  "-----END CERTIFICATE REQUEST-----\n"),
      StatusIs(absl::StatusCode::kInvalidArgument, "CERTIFICATE REQUEST"));
  std::string pem = csr.ToPem();
  CHECK_THAT(
      CertificateRequest::FromPem(pem.substr(0, pem.size() / 2)),
      StatusIs(absl::StatusCode::kInvalidArgument, "CERTIFICATE REQUEST"));
  // A certificate is not a CSR.
  testing::TestCertOptions options;
  auto root = ValueOrDie(testing::MakeRootCa(options));
  CHECK_THAT(
      CertificateRequest::FromPem(root.cert.ToPem()),
      StatusIs(absl::StatusCode::kInvalidArgument, "CERTIFICATE REQUEST"));
  CHECK_THAT(CertificateRequest::FromDer(root.cert.der()),
             StatusIs(absl::StatusCode::kInvalidArgument));
}

// --------------------------------------------------------------- key rules

TEST_CASE("RejectsCsrWithRsa1024Key") {
  PrivateKey key = GenerateRsa(1024);
  CertificateRequest csr =
      MakeCsr(key, Cn("a.example.com"), {{SanType::kDns, "a.example.com"}});
  CHECK_THAT(csr.VerifySignature(), IsOk());
  CHECK_THAT(CheckCsrPolicy(csr, CsrPolicy{}),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "RSA key of 1024 bits is too small"));
}

TEST_CASE("RejectsCsrWithRsaModulusNotDivisibleBy8") {
#if !defined(CERTPLANE_BORINGSSL)
  // A real 2052-bit key (BoringSSL would round the size down to 1920).
  PrivateKey key = GenerateRsa(2052);
  CertificateRequest csr =
      MakeCsr(key, Cn("a.example.com"), {{SanType::kDns, "a.example.com"}});
  CHECK(csr.public_key().info().bits == 2052);
  CHECK_THAT(CheckCsrPolicy(csr, CsrPolicy{}),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "RSA modulus of 2052 bits is not a multiple of 8"));
#endif
  CertificateRequest odd = CsrWithRsaModulus(2052);
  CHECK(odd.public_key().info().bits == 2052);
  CHECK_THAT(CheckCsrPolicy(odd, CsrPolicy{}),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "RSA modulus of 2052 bits is not a multiple of 8"));
}

TEST_CASE("RejectsCsrWithOversizedRsaKey") {
  CertificateRequest csr = CsrWithRsaModulus(8200);
  CHECK_THAT(CheckCsrPolicy(csr, CsrPolicy{}),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "RSA key of 8200 bits is larger than"));
}

TEST_CASE("AcceptsRsaP256P384AndP521Keys") {
  PrivateKey p521 = GenerateEc(NID_secp521r1);
  CertificateRequest csr =
      MakeCsr(p521, Cn("a.example.com"), {{SanType::kDns, "a.example.com"}});
  CHECK(csr.public_key().info().curve == "P-521");
  CHECK(csr.signature_algorithm() == "ecdsa-with-SHA512");
  CHECK_THAT(CheckCsrPolicy(csr, CsrPolicy{}), IsOk());
  for (KeyType type :
       {KeyType::kRsa2048, KeyType::kEcdsaP256, KeyType::kEcdsaP384}) {
    CAPTURE(KeyTypeName(type));
    PrivateKey key = ValueOrDie(PrivateKey::Generate(type));
    CHECK_THAT(CheckCsrPolicy(MakeCsr(key, Cn("a.example.com"),
                                      {{SanType::kDns, "a.example.com"}}),
                              CsrPolicy{}),
               IsOk());
  }
}

TEST_CASE("RejectsCsrWithCurveOutsideP256P384P521") {
  PrivateKey p224 = GenerateEc(NID_secp224r1);
  CertificateRequest csr =
      MakeCsr(p224, Cn("a.example.com"), {{SanType::kDns, "a.example.com"}});
  CHECK_THAT(CheckCsrPolicy(csr, CsrPolicy{}),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "ECDSA curve secp224r1 is not allowed"));
}

TEST_CASE("Ed25519IsRefusedForPublicTrustAndAllowedOtherwise") {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEd25519));
  CertificateRequest csr =
      MakeCsr(key, Cn("a.example.com"), {{SanType::kDns, "a.example.com"}});
  CsrPolicy policy;
  policy.public_trust = true;
  CHECK_THAT(CheckCsrPolicy(csr, policy),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "Ed25519 keys are not allowed for publicly trusted"));
  policy.public_trust = false;
  CHECK_THAT(CheckCsrPolicy(csr, policy), IsOk());
}

#if !defined(CERTPLANE_BORINGSSL)
// BoringSSL cannot produce keys with explicit curve parameters (and maps
// those it parses to the named curve), so this case is OpenSSL-only.
TEST_CASE("RejectsCsrWithExplicitCurveParameters") {
  PrivateKey named = GenerateEc(NID_X9_62_prime256v1);
  EC_KEY* ec = EC_KEY_dup(EVP_PKEY_get0_EC_KEY(named.native()));
  REQUIRE(ec != nullptr);
  EC_KEY_set_asn1_flag(ec, OPENSSL_EC_EXPLICIT_CURVE);
  EVP_PKEY* pkey = EVP_PKEY_new();
  REQUIRE(pkey != nullptr);
  REQUIRE(EVP_PKEY_assign_EC_KEY(pkey, ec) == 1);
  PrivateKey key = PrivateKey::Adopt(EvpPkeyHandle(pkey));
  // The CSR is built, but refused when read back from its DER.
  CHECK_THAT(
      CreateCsr(key, {Cn("a.example.com"), {{SanType::kDns, "a.example.com"}}}),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "explicit EC curve parameters are not supported"));
}
#endif

// A DER CSR made by the openssl command-line tool: `keygen` writes key.pem,
// then `openssl req` signs a CSR for CN=a.example.com with `san`.
std::string CsrFromCli(const std::string& keygen, const std::string& san) {
  ::certplane::testing::ScratchDir dir("certplane-csr");
  dir.RunOrFail(absl::StrCat(
      keygen,
      " && openssl req -new -key key.pem -subj /CN=a.example.com -addext "
      "'subjectAltName=",
      san, "' -outform DER -out csr.der"));
  std::string der = dir.Read("csr.der");
  REQUIRE_FALSE(der.empty());
  return der;
}

// An EC key whose SPKI carries explicit P-256 parameters (the shape behind
// CVE-2022-0778).
std::string ExplicitCurveCsrFromCli() {
  return CsrFromCli(
      "openssl ecparam -name prime256v1 -param_enc explicit -genkey -noout "
      "-out key.pem",
      "DNS:a.example.com");
}

TEST_CASE("RejectsCsrWithSanTypesOtherThanDnsIpEmailUri") {
  std::string der = CsrFromCli(
      "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
      "-out key.pem",
      "DNS:a.example.com,RID:1.2.3.4");
  CertificateRequest csr = ValueOrDie(CertificateRequest::FromDer(der));
  CHECK_THAT(csr.VerifySignature(), IsOk());
  CHECK(csr.sans() ==
        std::vector<SubjectAltName>{{SanType::kDns, "a.example.com"}});
  CHECK(csr.unsupported_san_count() == 1);
  CHECK_THAT(CheckCsrPolicy(csr, CsrPolicy{}),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "1 SAN(s) of a type other than DNS, IP, email or URI"));
}

TEST_CASE("RejectsCliMadeCsrWithExplicitCurveParameters") {
  std::string der = ExplicitCurveCsrFromCli();
  // Refused from the raw DER, before the library decodes the curve.
  const std::string expected =
      "CSR key has explicit EC curve parameters; explicit EC curve parameters "
      "are not supported";
  CHECK_THAT(CertificateRequest::FromDer(der),
             StatusIs(absl::StatusCode::kInvalidArgument, expected));
  std::string pem = absl::StrCat("-----BEGIN CERTIFICATE REQUEST-----\n",
                                 absl::Base64Escape(der),
                                 "\n-----END CERTIFICATE REQUEST-----\n");
  CHECK_THAT(CertificateRequest::FromPem(pem),
             StatusIs(absl::StatusCode::kInvalidArgument, expected));
}

// -------------------------------------------------------------- SAN syntax

TEST_CASE("ValidateSanAcceptsWellFormedNames") {
  std::string label63(63, 'a');
  std::string name253 = absl::StrCat(label63, ".", label63, ".", label63, ".",
                                     std::string(61, 'b'));
  REQUIRE(name253.size() == 253);
  std::vector<SubjectAltName> good = {
      {SanType::kDns, "example.com"},
      {SanType::kDns, "WWW.Example.COM"},
      {SanType::kDns, "a-b.c-d.example"},
      {SanType::kDns, "xn--bcher-kva.example"},
      {SanType::kDns, "localhost"},
      {SanType::kDns, "*.example.com"},
      {SanType::kDns, "123.example.com"},
      {SanType::kDns, name253},
      {SanType::kIp, "192.0.2.1"},
      {SanType::kIp, "0.0.0.0"},
      {SanType::kIp, "2001:db8::1"},
      {SanType::kIp, "::1"},
      {SanType::kIp, "::ffff:192.0.2.1"},
      {SanType::kEmail, "user@example.com"},
      {SanType::kEmail, "first.last+tag@sub.example.org"},
      {SanType::kUri, "https://example.com/path?q=1"},
      {SanType::kUri, "spiffe://trust.example/ns/default/sa/web"},
      {SanType::kUri, "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"},
  };
  for (const SubjectAltName& san : good) {
    CAPTURE(SanTypeName(san.type), san.value);
    CHECK_THAT(ValidateSan(san), IsOk());
  }
}

TEST_CASE("ValidateSanRejectsMalformedNames") {
  struct Case {
    SubjectAltName san;
    std::string message;
  };
  std::vector<Case> bad = {
      {{SanType::kDns, ""}, "is empty"},
      {{SanType::kDns, "example.com."}, "trailing dot"},
      {{SanType::kDns, ".example.com"}, "empty label"},
      {{SanType::kDns, "a..example.com"}, "empty label"},
      {{SanType::kDns, "exa mple.com"}, "other than letters"},
      {{SanType::kDns, "under_score.example.com"}, "other than letters"},
      {{SanType::kDns,
        "b\xc3\xbc"
        "cher.example"},
       "other than letters"},
      {{SanType::kDns, "-a.example.com"}, "starting or ending with '-'"},
      {{SanType::kDns, "a-.example.com"}, "starting or ending with '-'"},
      {{SanType::kDns, std::string(64, 'a') + ".com"}, "longer than 63"},
      {{SanType::kDns,
        absl::StrCat(std::string(63, 'a'), ".", std::string(63, 'a'), ".",
                     std::string(63, 'a'), ".", std::string(62, 'a'))},
       "longer than 253"},
      {{SanType::kDns, "192.0.2.1"}, "is an IP address"},
      {{SanType::kIp, ""}, "not an IPv4 or IPv6"},
      {{SanType::kIp, "256.1.1.1"}, "not an IPv4 or IPv6"},
      {{SanType::kIp, "1.2.3"}, "not an IPv4 or IPv6"},
      {{SanType::kIp, "example.com"}, "not an IPv4 or IPv6"},
      {{SanType::kIp, "2001:db8:::1"}, "not an IPv4 or IPv6"},
      {{SanType::kIp, "192.0.2.1 "}, "not an IPv4 or IPv6"},
      {{SanType::kEmail, "user"}, "has no '@'"},
      {{SanType::kEmail, "@example.com"}, "empty local part"},
      {{SanType::kEmail, "user@"}, "domain that is empty"},
      {{SanType::kEmail, "us er@example.com"}, "not allowed in the local"},
      {{SanType::kEmail, "user@exa mple.com"}, "domain that has label"},
      {{SanType::kEmail, "user@*.example.com"}, "domain that has label"},
      {{SanType::kEmail, "*@example.com"}, "not allowed in the local"},
      {{SanType::kUri, "example.com"}, "has no scheme"},
      {{SanType::kUri, ":foo"}, "has no scheme"},
      {{SanType::kUri, "1http://x"}, "does not start with a letter"},
      {{SanType::kUri, "ht_tp://x"}, "not allowed in a scheme"},
      {{SanType::kUri, "https:"}, "nothing after ':'"},
      {{SanType::kUri, "https://exa mple.com"}, "space, control"},
      {{SanType::kUri, "https://*.example.com"}, "has a wildcard"},
  };
  for (const Case& c : bad) {
    CAPTURE(SanTypeName(c.san.type), c.san.value);
    CHECK_THAT(ValidateSan(c.san),
               StatusIs(absl::StatusCode::kInvalidArgument, c.message));
  }
}

TEST_CASE("WildcardRules") {
  struct Case {
    std::string name;
    bool valid;
  };
  std::vector<Case> cases = {
      {"*.example.com", true},
      {"*.a.b.example.com", true},
      {"*.com", false},
      {"*", false},
      {"*.", false},
      {"foo.*.example.com", false},
      {"*foo.example.com", false},
      {"f*o.example.com", false},
      {"**.example.com", false},
      {"*.*.example.com", false},
      {"www.example.*", false},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    absl::Status status = ValidateSan({SanType::kDns, c.name});
    if (c.valid) {
      CHECK_THAT(status, IsOk());
    } else {
      CHECK_THAT(status,
                 StatusIs(absl::StatusCode::kInvalidArgument, "wildcard"));
    }
  }
}

// ----------------------------------------------------------- policy checks

TEST_CASE("CsrPolicyEnforcesWildcardPermission") {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CertificateRequest csr = MakeCsr(key, {}, {{SanType::kDns, "*.example.com"}});
  CsrPolicy policy;
  CHECK_THAT(CheckCsrPolicy(csr, policy), IsOk());
  policy.allow_wildcards = false;
  CHECK_THAT(CheckCsrPolicy(csr, policy),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "SAN DNS:\"*.example.com\" is a wildcard; wildcards "
                      "are not allowed"));
}

TEST_CASE("CsrPolicyEnforcesAllowedSanTypes") {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CertificateRequest ip = MakeCsr(key, {}, {{SanType::kIp, "203.0.114.9"}});
  CertificateRequest email =
      MakeCsr(key, {}, {{SanType::kEmail, "a@example.com"}});
  CertificateRequest uri =
      MakeCsr(key, {}, {{SanType::kUri, "spiffe://example.com/web"}});
  CsrPolicy policy;
  CHECK_THAT(CheckCsrPolicy(ip, policy), IsOk());
  CHECK_THAT(CheckCsrPolicy(email, policy),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "email SANs are not allowed"));
  CHECK_THAT(
      CheckCsrPolicy(uri, policy),
      StatusIs(absl::StatusCode::kInvalidArgument, "URI SANs are not allowed"));
  policy.allow_ip_sans = false;
  policy.allow_email_sans = true;
  policy.allow_uri_sans = true;
  CHECK_THAT(
      CheckCsrPolicy(ip, policy),
      StatusIs(absl::StatusCode::kInvalidArgument, "IP SANs are not allowed"));
  CHECK_THAT(CheckCsrPolicy(email, policy), IsOk());
  CHECK_THAT(CheckCsrPolicy(uri, policy), IsOk());
}

TEST_CASE("PublicTrustRefusesInternalNamesAndReservedAddresses") {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CsrPolicy public_policy;
  CsrPolicy private_policy;
  private_policy.public_trust = false;
  for (const SubjectAltName& san :
       std::vector<SubjectAltName>{{SanType::kDns, "intranet"},
                                   {SanType::kIp, "10.1.2.3"},
                                   {SanType::kIp, "192.168.0.1"},
                                   {SanType::kIp, "172.20.0.1"},
                                   {SanType::kIp, "127.0.0.1"},
                                   {SanType::kIp, "169.254.1.1"},
                                   {SanType::kIp, "::1"},
                                   {SanType::kIp, "fd00::1"},
                                   {SanType::kIp, "fe80::1"},
                                   {SanType::kIp, "192.0.0.8"},
                                   {SanType::kIp, "192.88.99.1"},
                                   {SanType::kIp, "2002:c000:201::1"},
                                   {SanType::kIp, "2001::1"},
                                   {SanType::kIp, "2001:1ff::1"},
                                   {SanType::kIp, "64:ff9b::c000:201"},
                                   {SanType::kIp, "64:ff9b:1::1"},
                                   {SanType::kIp, "100::1"},
                                   {SanType::kIp, "3fff::1"},
                                   {SanType::kIp, "5f00::1"},
                                   {SanType::kIp, "fec0::1"}}) {
    CAPTURE(san.value);
    CertificateRequest csr = MakeCsr(key, {}, {san});
    CHECK_THAT(CheckCsrPolicy(csr, public_policy),
               StatusIs(absl::StatusCode::kInvalidArgument,
                        "not allowed for publicly trusted certificates"));
    CHECK_THAT(CheckCsrPolicy(csr, private_policy), IsOk());
  }
  for (const char* ip : {"8.8.8.8", "192.0.3.1", "2606:4700::1", "2001:200::1",
                         "2003::1", "100:0:0:1::1"}) {
    CAPTURE(ip);
    CHECK_THAT(
        CheckCsrPolicy(MakeCsr(key, {}, {{SanType::kIp, ip}}), public_policy),
        IsOk());
  }
}

TEST_CASE("CsrPolicyRejectsDuplicateSans") {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  for (const auto& sans : std::vector<std::vector<SubjectAltName>>{
           {{SanType::kDns, "a.example.com"}, {SanType::kDns, "A.Example.com"}},
           {{SanType::kIp, "2606:4700::1"},
            {SanType::kIp, "2606:4700:0::1"}}}) {
    CAPTURE(sans[1].value);
    CHECK_THAT(CheckCsrPolicy(MakeCsr(key, {}, sans), CsrPolicy{}),
               StatusIs(absl::StatusCode::kInvalidArgument, "is a duplicate"));
  }
}

TEST_CASE("CsrPolicyRequiresCommonNameAmongSans") {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  CHECK_THAT(
      CheckCsrPolicy(MakeCsr(key, Cn("www.example.com"),
                             {{SanType::kDns, "api.example.com"}}),
                     CsrPolicy{}),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "common name \"www.example.com\" is not one of the CSR's"));
  CHECK_THAT(CheckCsrPolicy(MakeCsr(key, Cn("WWW.example.com"),
                                    {{SanType::kDns, "api.example.com"},
                                     {SanType::kDns, "www.example.com"}}),
                            CsrPolicy{}),
             IsOk());
  CHECK_THAT(CheckCsrPolicy(MakeCsr(key, Cn("203.0.114.5"),
                                    {{SanType::kIp, "203.0.114.5"}}),
                            CsrPolicy{}),
             IsOk());
}

TEST_CASE("CsrPolicyLimitsNumberOfSans") {
  PrivateKey key = ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256));
  std::vector<SubjectAltName> sans;
  for (int i = 0; i < 4; ++i) {
    sans.push_back({SanType::kDns, absl::StrCat("h", i, ".example.com")});
  }
  CertificateRequest csr = MakeCsr(key, {}, sans);
  CsrPolicy policy;
  policy.max_sans = 4;
  CHECK_THAT(CheckCsrPolicy(csr, policy), IsOk());
  policy.max_sans = 3;
  CHECK_THAT(CheckCsrPolicy(csr, policy),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "CSR has 4 SANs; at most 3 are allowed"));
}

}  // namespace
}  // namespace certplane::crypto
