#include "libs/crypto/key.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "libs/crypto/certificate.h"
#include "libs/crypto/testing/test_pki.h"
#include "libs/testing/scratch_dir.h"
#include "libs/testing/status_matchers.h"

namespace certplane::crypto {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;
using Code = absl::StatusCode;

constexpr absl::string_view kPassword = "correct horse battery staple";

// ------------------------------------------------------------ test helpers

// A scratch directory for files handed to the openssl CLI, removed when the
// test binary exits.
const std::string& ScratchDir() {
  static const ::certplane::testing::ScratchDir dir("certplane-key");
  return dir.path();
}

std::string ReadFile(const std::string& path) {
  return ::certplane::testing::ReadFileContents(path);
}

void WriteFile(const std::string& path, absl::string_view data) {
  ::certplane::testing::WriteFileContents(path, data);
}

// Runs `openssl <args>` with `input` on stdin and returns its stdout; the
// test fails if the command does.
std::string RunOpenssl(const std::string& args, absl::string_view input = "") {
  const std::string in = ScratchDir() + "/in";
  const std::string out = ScratchDir() + "/out";
  const std::string err = ScratchDir() + "/err";
  WriteFile(in, input);
  std::string command =
      absl::StrCat("openssl ", args, " <", in, " >", out, " 2>", err);
  int rc = std::system(command.c_str());
  if (rc != 0) FAIL(command << " failed: " << ReadFile(err));
  return ReadFile(out);
}

// The DER inside the first PEM block of `pem`.
std::string PemBody(absl::string_view pem) {
  size_t begin = pem.find("-----\n");
  size_t end = pem.find("-----END");
  REQUIRE(begin != absl::string_view::npos);
  REQUIRE(end != absl::string_view::npos);
  absl::string_view body = pem.substr(begin + 6, end - begin - 6);
  // Drop RFC 1421 headers (Proc-Type, DEK-Info) if present.
  if (size_t blank = body.find("\n\n"); blank != absl::string_view::npos) {
    body.remove_prefix(blank + 2);
  }
  std::string der;
  REQUIRE(absl::Base64Unescape(absl::StrReplaceAll(body, {{"\n", ""}}), &der));
  return der;
}

// DER writing helpers for building hostile inputs in tests.
std::string DerLengthBytes(size_t length, int width) {
  std::string out;
  for (int i = width - 1; i >= 0; --i) {
    out.push_back(static_cast<char>((length >> (8 * i)) & 0xff));
  }
  return out;
}

// tag + minimal length + contents.
std::string Der(uint8_t tag, absl::string_view contents) {
  std::string out(1, static_cast<char>(tag));
  if (contents.size() < 0x80) {
    out.push_back(static_cast<char>(contents.size()));
  } else {
    int width = 0;
    for (size_t n = contents.size(); n > 0; n >>= 8) ++width;
    out.push_back(static_cast<char>(0x80 | width));
    out += DerLengthBytes(contents.size(), width);
  }
  out.append(contents.data(), contents.size());
  return out;
}

// tag + a long-form length `width` bytes wide (non-minimal DER) + contents.
std::string DerWideLength(uint8_t tag, absl::string_view contents, int width) {
  std::string out(1, static_cast<char>(tag));
  out.push_back(static_cast<char>(0x80 | width));
  out += DerLengthBytes(contents.size(), width);
  out.append(contents.data(), contents.size());
  return out;
}

// tag + BER indefinite length + contents + end-of-contents.
std::string DerIndefinite(uint8_t tag, absl::string_view contents) {
  return absl::StrCat(std::string(1, static_cast<char>(tag)), "\x80", contents,
                      std::string(2, '\0'));
}

// Splits well-formed DER into its header length and total length.
std::pair<size_t, size_t> DerSizes(absl::string_view der) {
  REQUIRE(der.size() >= 2);
  size_t length = static_cast<uint8_t>(der[1]);
  size_t header = 2;
  if (length & 0x80) {
    size_t width = length & 0x7f;
    length = 0;
    for (size_t i = 0; i < width; ++i) {
      length = (length << 8) | static_cast<uint8_t>(der[2 + i]);
    }
    header += width;
  }
  return {header, header + length};
}

// The contents of the DER element at the front of `der`.
std::string DerContents(absl::string_view der) {
  auto [header, total] = DerSizes(der);
  return std::string(der.substr(header, total - header));
}

// The complete encodings of the elements inside a DER SEQUENCE.
std::vector<std::string> DerChildren(absl::string_view der) {
  std::string body = DerContents(der);
  std::vector<std::string> children;
  absl::string_view rest = body;
  while (!rest.empty()) {
    size_t total = DerSizes(rest).second;
    children.emplace_back(rest.substr(0, total));
    rest.remove_prefix(total);
  }
  return children;
}

bool SameKey(const PrivateKey& a, const PrivateKey& b) {
  return a.public_key() == b.public_key();
}

// Keys are slow to make (RSA); make each type once per test binary.
const PrivateKey& CachedKey(KeyType type) {
  static auto* rsa =
      new PrivateKey(ValueOrDie(PrivateKey::Generate(KeyType::kRsa2048)));
  static auto* p256 =
      new PrivateKey(ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP256)));
  static auto* p384 =
      new PrivateKey(ValueOrDie(PrivateKey::Generate(KeyType::kEcdsaP384)));
  static auto* ed25519 =
      new PrivateKey(ValueOrDie(PrivateKey::Generate(KeyType::kEd25519)));
  switch (type) {
    case KeyType::kEcdsaP256:
      return *p256;
    case KeyType::kEcdsaP384:
      return *p384;
    case KeyType::kEd25519:
      return *ed25519;
    default:
      return *rsa;
  }
}

// PBKDF2 with 600000 iterations is slow on purpose; encrypt each key once.
const SecretBytes& CachedEncryptedPem(KeyType type) {
  static auto* cache = new std::map<KeyType, SecretBytes>();
  auto it = cache->find(type);
  if (it == cache->end()) {
    it = cache
             ->emplace(
                 type,
                 ValueOrDie(CachedKey(type).ToEncryptedPkcs8Pem(kPassword)))
             .first;
  }
  return it->second;
}

const KeyType kTestedTypes[] = {KeyType::kRsa2048, KeyType::kEcdsaP256,
                                KeyType::kEcdsaP384, KeyType::kEd25519};

// --------------------------------------------------------------- basics

TEST_CASE("GeneratesEveryKeyType", "[key]") {
  struct Case {
    KeyType type;
    KeyAlgorithm algorithm;
    int bits;
    std::string curve;
  };
  const Case cases[] = {
      {KeyType::kRsa2048, KeyAlgorithm::kRsa, 2048, ""},
      {KeyType::kEcdsaP256, KeyAlgorithm::kEcdsa, 256, "P-256"},
      {KeyType::kEcdsaP384, KeyAlgorithm::kEcdsa, 384, "P-384"},
      {KeyType::kEd25519, KeyAlgorithm::kEd25519, 256, ""},
  };
  for (const auto& c : cases) {
    INFO(KeyTypeName(c.type));
    const PrivateKey& key = CachedKey(c.type);
    KeyInfo info = key.info();
    CHECK(info.algorithm == c.algorithm);
    CHECK(info.bits == c.bits);
    CHECK(info.curve == c.curve);
    CHECK_FALSE(info.explicit_curve_parameters);
    CHECK(key.public_key().SpkiSha256().size() == 32);
  }
}

TEST_CASE("ParsesKeyTypeNames", "[key]") {
  CHECK(ValueOrDie(ParseKeyType("ECDSA-P256")) == KeyType::kEcdsaP256);
  CHECK_THAT(ParseKeyType("rsa-1024"),
             StatusIs(Code::kInvalidArgument, "rsa-1024"));
}

TEST_CASE("PublicKeyRoundTripsThroughDerAndPem", "[key]") {
  PublicKey pub = CachedKey(KeyType::kEcdsaP256).public_key();
  CHECK(ValueOrDie(PublicKey::FromDer(pub.ToDer())) == pub);
  CHECK(ValueOrDie(PublicKey::FromPem(pub.ToPem())) == pub);
  CHECK_THAT(PublicKey::FromDer("garbage"), StatusIs(Code::kInvalidArgument));
  CHECK_THAT(PublicKey::FromDer(pub.ToDer() + "x"),
             StatusIs(Code::kInvalidArgument, "trailing"));
}

TEST_CASE("HexEncodes", "[key]") {
  CHECK(HexEncode("\x01\xab") == "01ab");
  CHECK(HexEncode("\x01\xab", true) == "01:ab");
}

// ----------------------------------------------------------- round trips

TEST_CASE("RoundTripsEveryKeyTypeThroughPkcs8DerAndPem", "[key]") {
  for (KeyType type : kTestedTypes) {
    INFO(KeyTypeName(type));
    const PrivateKey& key = CachedKey(type);
    SecretBytes der = ValueOrDie(key.ToPkcs8Der());
    SecretBytes pem = ValueOrDie(key.ToPkcs8Pem());
    CHECK(absl::StartsWith(pem.view(), "-----BEGIN PRIVATE KEY-----\n"));
    CHECK(absl::EndsWith(pem.view(), "-----END PRIVATE KEY-----\n"));
    CHECK(PemBody(pem.view()) == der.view());
    CHECK(SameKey(ValueOrDie(PrivateKey::FromDer(der.view())), key));
    CHECK(SameKey(ValueOrDie(PrivateKey::FromPem(pem.view())), key));
    // A password given for an unencrypted key is ignored.
    CHECK(SameKey(ValueOrDie(PrivateKey::FromPem(pem.view(), kPassword)), key));
    // The openssl CLI reads what we write.
    CHECK(RunOpenssl("pkey -pubout", pem.view()) == key.public_key().ToPem());
  }
}

TEST_CASE("SubjectPublicKeyInfoMatchesTheOpensslCli", "[key]") {
  for (KeyType type : {KeyType::kRsa2048, KeyType::kEcdsaP256,
                       KeyType::kEcdsaP384, KeyType::kEd25519}) {
    INFO(KeyTypeName(type));
    const PrivateKey& key = CachedKey(type);
    std::string pem =
        RunOpenssl("pkey -pubout", ValueOrDie(key.ToPkcs8Pem()).view());
    CHECK(key.public_key().ToDer() == PemBody(pem));
    CHECK(ValueOrDie(PublicKey::FromPem(pem)).ToDer() == PemBody(pem));
  }
  // P-521 too, which no KeyType names.
  PrivateKey p521 = ValueOrDie(PrivateKey::FromPem(RunOpenssl(
      "genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-521", "")));
  std::string pem =
      RunOpenssl("pkey -pubout", ValueOrDie(p521.ToPkcs8Pem()).view());
  CHECK(p521.public_key().ToDer() == PemBody(pem));
}

TEST_CASE("SpkiDerToPemMatchesToPemWithoutDecoding", "[key]") {
  for (KeyType type : kTestedTypes) {
    INFO(KeyTypeName(type));
    PublicKey pub = CachedKey(type).public_key();
    CHECK(ValueOrDie(SpkiDerToPem(pub.ToDer())) == pub.ToPem());
  }
  const std::string der = CachedKey(KeyType::kEcdsaP256).public_key().ToDer();
  CHECK_THAT(SpkiDerToPem(""), StatusIs(absl::StatusCode::kInvalidArgument));
  CHECK_THAT(SpkiDerToPem(der + "x"),
             StatusIs(absl::StatusCode::kInvalidArgument));
  CHECK_THAT(SpkiDerToPem(der.substr(0, der.size() - 1)),
             StatusIs(absl::StatusCode::kInvalidArgument));
  CHECK_THAT(SpkiDerToPem("garbage"),
             StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_CASE("PublicKeyOfAPrivateKeyHoldsNoPrivateHalf", "[key]") {
  for (KeyType type : kTestedTypes) {
    INFO(KeyTypeName(type));
    const PrivateKey& key = CachedKey(type);
    PublicKey pub = key.public_key();
    REQUIRE(pub.native() != nullptr);
    CHECK(pub.native() != key.native());
    CHECK(pub == key.public_key());
    CHECK(pub.info().bits == key.info().bits);
    // No private encoding of it exists: the private half was never copied.
    uint8_t* der = nullptr;
    CHECK(i2d_PrivateKey(pub.native(), &der) <= 0);
    OPENSSL_free(der);
    // What it signs for verifies.
    std::string signature = ValueOrDie(key.Sign("public half", "sha256"));
    CHECK(VerifySignature(pub, "public half", signature, "sha256").ok());
  }
}

TEST_CASE("RoundTripsEveryKeyTypeThroughEncryptedPkcs8", "[key]") {
  for (KeyType type : kTestedTypes) {
    INFO(KeyTypeName(type));
    const PrivateKey& key = CachedKey(type);
    const SecretBytes& pem = CachedEncryptedPem(type);
    CHECK(absl::StartsWith(pem.view(),
                           "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
    CHECK(SameKey(ValueOrDie(PrivateKey::FromPem(pem.view(), kPassword)), key));
  }
  const SecretBytes& pem = CachedEncryptedPem(KeyType::kRsa2048);
  CHECK(SameKey(ValueOrDie(PrivateKey::FromDer(PemBody(pem.view()), kPassword)),
                CachedKey(KeyType::kRsa2048)));
}

TEST_CASE("EncryptedPkcs8UsesPbes2Aes256CbcAndPbkdf2HmacSha256", "[key]") {
  const PrivateKey& key = CachedKey(KeyType::kEcdsaP256);
  SecretBytes der(PemBody(CachedEncryptedPem(KeyType::kEcdsaP256).view()));
  const std::string oid_pbes2 = "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x05\x0d";
  const std::string oid_pbkdf2 = "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x05\x0c";
  const std::string oid_hmac_sha256 =
      "\x06\x08\x2a\x86\x48\x86\xf7\x0d\x02\x09";
  const std::string oid_aes256_cbc =
      "\x06\x09\x60\x86\x48\x01\x65\x03\x04\x01\x2a";
  CHECK(absl::StrContains(der.view(), oid_pbes2));
  CHECK(absl::StrContains(der.view(), oid_pbkdf2));
  CHECK(absl::StrContains(der.view(), oid_hmac_sha256));
  CHECK(absl::StrContains(der.view(), oid_aes256_cbc));
  // The plaintext key is not in there.
  SecretBytes plain = ValueOrDie(key.ToPkcs8Der());
  CHECK_FALSE(
      absl::StrContains(der.view(), plain.view().substr(plain.size() - 40)));
  // And the openssl CLI decrypts it.
  WriteFile(ScratchDir() + "/enc.der", der.view());
  std::string pub = RunOpenssl(absl::StrCat(
      "pkey -inform DER -in ", ScratchDir(), "/enc.der -passin pass:",
      absl::StrReplaceAll(kPassword, {{" ", "\\ "}}), " -pubout"));
  CHECK(pub == key.public_key().ToPem());
}

TEST_CASE("RefusesToEncryptWithAnEmptyPassword", "[key]") {
  const PrivateKey& key = CachedKey(KeyType::kEd25519);
  CHECK_THAT(key.ToEncryptedPkcs8Der(""),
             StatusIs(Code::kInvalidArgument, "non-empty password"));
  CHECK_THAT(key.ToEncryptedPkcs8Pem(""),
             StatusIs(Code::kInvalidArgument, "non-empty password"));
}

TEST_CASE("PasswordsAreBinarySafe", "[key]") {
  const PrivateKey& key = CachedKey(KeyType::kEd25519);
  const std::string password("ab\0cd", 5);
  SecretBytes der = ValueOrDie(key.ToEncryptedPkcs8Der(password));
  CHECK(SameKey(ValueOrDie(PrivateKey::FromDer(der.view(), password)), key));
  // A C-string password would stop at the NUL; this one must not.
  CHECK_THAT(PrivateKey::FromDer(der.view(), absl::string_view("ab")),
             StatusIs(Code::kInvalidArgument, "wrong password"));
}

TEST_CASE("RoundTripsRsaAndEcThroughTraditionalPemAndDer", "[key]") {
  struct Case {
    KeyType type;
    std::string label;
  };
  const Case cases[] = {{KeyType::kRsa2048, "RSA PRIVATE KEY"},
                        {KeyType::kEcdsaP256, "EC PRIVATE KEY"},
                        {KeyType::kEcdsaP384, "EC PRIVATE KEY"}};
  for (const auto& c : cases) {
    INFO(KeyTypeName(c.type));
    const PrivateKey& key = CachedKey(c.type);
    SecretBytes pem = ValueOrDie(key.ToTraditionalPem());
    CHECK(absl::StartsWith(pem.view(),
                           absl::StrCat("-----BEGIN ", c.label, "-----\n")));
    CHECK(SameKey(ValueOrDie(PrivateKey::FromPem(pem.view())), key));
    CHECK(SameKey(ValueOrDie(PrivateKey::FromDer(PemBody(pem.view()))), key));
    CHECK(RunOpenssl("pkey -pubout", pem.view()) == key.public_key().ToPem());
  }
}

TEST_CASE("Ed25519HasNoTraditionalPem", "[key]") {
  CHECK_THAT(CachedKey(KeyType::kEd25519).ToTraditionalPem(),
             StatusIs(Code::kUnimplemented, "Ed25519"));
}

TEST_CASE("ReadsLegacyPemEncryptedTraditionalKeys", "[key]") {
  struct Case {
    KeyType type;
    std::string command;
  };
  const Case cases[] = {
      {KeyType::kRsa2048, "rsa -traditional -aes256 -passout pass:s3cret"},
      {KeyType::kEcdsaP256, "ec -aes256 -passout pass:s3cret"},
      {KeyType::kEcdsaP384, "ec -des3 -passout pass:s3cret"},
  };
  for (const auto& c : cases) {
    INFO(c.command);
    const PrivateKey& key = CachedKey(c.type);
    std::string pem =
        RunOpenssl(c.command, ValueOrDie(key.ToTraditionalPem()).view());
    REQUIRE(absl::StrContains(pem, "Proc-Type: 4,ENCRYPTED"));
    CHECK(SameKey(ValueOrDie(PrivateKey::FromPem(pem, "s3cret")), key));
    CHECK_THAT(PrivateKey::FromPem(pem),
               StatusIs(Code::kInvalidArgument,
                        "private key is encrypted; a password is required"));
    CHECK_THAT(PrivateKey::FromPem(pem, "wrong"),
               StatusIs(Code::kInvalidArgument,
                        "wrong password for encrypted private key"));
  }
}

TEST_CASE("ReportsEveryWrongPasswordAsWrongPassword", "[key]") {
  // About one wrong password in 256 decrypts to garbage with valid CBC
  // padding; that must still read as a wrong password, not as a bad file.
  const PrivateKey& key = CachedKey(KeyType::kEcdsaP256);
  std::string legacy = RunOpenssl("ec -des3 -passout pass:s3cret",
                                  ValueOrDie(key.ToTraditionalPem()).view());
  std::string pkcs8 =
      RunOpenssl("pkcs8 -topk8 -v2 aes-256-cbc -iter 1 -passout pass:s3cret",
                 ValueOrDie(key.ToPkcs8Pem()).view());
  for (const std::string& pem : {legacy, pkcs8}) {
    int refused = 0;
    for (int i = 0; i < 2000; ++i) {
      auto parsed = PrivateKey::FromPem(pem, absl::StrCat("wrong", i));
      if (parsed.status().code() == Code::kInvalidArgument &&
          parsed.status().message() ==
              "wrong password for encrypted private key") {
        ++refused;
      } else {
        FAIL("password wrong" << i << " gave " << parsed.status());
      }
    }
    CHECK(refused == 2000);
  }
}

TEST_CASE("ReadsPkcs8EncryptedByTheOpensslCli", "[key]") {
  const PrivateKey& key = CachedKey(KeyType::kRsa2048);
  std::string pem =
      RunOpenssl("pkcs8 -topk8 -v2 aes-256-cbc -iter 2048 -passout pass:s3cret",
                 ValueOrDie(key.ToPkcs8Pem()).view());
  REQUIRE(absl::StartsWith(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
  CHECK(SameKey(ValueOrDie(PrivateKey::FromPem(pem, "s3cret")), key));
}

TEST_CASE("ReadsPkcs8EncryptionSchemesOtherToolsWrite", "[key]") {
  const PrivateKey& key = CachedKey(KeyType::kEcdsaP256);
  const std::string plain(ValueOrDie(key.ToPkcs8Pem()).view());
  for (const std::string& options :
       {std::string("-v2 aes-128-cbc -v2prf hmacWithSHA1"),
        std::string("-v2 aes-256-cbc -v2prf hmacWithSHA512"),
        std::string("-v2 des3"), std::string("-v1 PBE-SHA1-3DES")}) {
    INFO(options);
    std::string pem = RunOpenssl(
        absl::StrCat("pkcs8 -topk8 -iter 1000 -passout pass:s3cret ", options),
        plain);
    CHECK(SameKey(ValueOrDie(PrivateKey::FromPem(pem, "s3cret")), key));
    CHECK_THAT(PrivateKey::FromPem(pem, "wrong"),
               StatusIs(Code::kInvalidArgument, "wrong password"));
  }
}

TEST_CASE("ReportsAnRc2EncryptedKeyAsUnsupportedNotAsAWrongPassword", "[key]") {
  const PrivateKey& key = CachedKey(KeyType::kEcdsaP256);
  std::string pem = RunOpenssl(
      "pkcs8 -topk8 -v1 PBE-SHA1-RC2-40 -iter 1000 -passout pass:s3cret "
      "-provider legacy -provider default",
      ValueOrDie(key.ToPkcs8Pem()).view());
#if defined(CERTPLANE_BORINGSSL)
  CHECK(SameKey(ValueOrDie(PrivateKey::FromPem(pem, "s3cret")), key));
#else
  // Nothing in this test binary loads OpenSSL's legacy provider.
  CHECK_THAT(PrivateKey::FromPem(pem, "s3cret"),
             StatusIs(Code::kUnimplemented,
                      "encrypted private key uses pbeWithSHA1And40BitRC2-CBC"));
#endif
}

TEST_CASE("ReadsScryptEncryptedPkcs8WithOpenSslOnly", "[key]") {
  const PrivateKey& key = CachedKey(KeyType::kEcdsaP256);
  std::string pem =
      RunOpenssl("pkcs8 -topk8 -scrypt -scrypt_N 1024 -passout pass:s3cret",
                 ValueOrDie(key.ToPkcs8Pem()).view());
#if defined(CERTPLANE_BORINGSSL)
  CHECK_THAT(PrivateKey::FromPem(pem, "s3cret"),
             StatusIs(Code::kUnimplemented,
                      "the BoringSSL build of certplane decrypts PBES2 keys "
                      "only with PBKDF2, not scrypt"));
#else
  CHECK(SameKey(ValueOrDie(PrivateKey::FromPem(pem, "s3cret")), key));
#endif
}

TEST_CASE("SkipsNonKeyPemBlocksBeforeTheKey", "[key]") {
  const PrivateKey& key = CachedKey(KeyType::kEcdsaP256);
  std::string pem = absl::StrCat("some text\n", key.public_key().ToPem(),
                                 ValueOrDie(key.ToPkcs8Pem()).view());
  CHECK(SameKey(ValueOrDie(PrivateKey::FromPem(pem)), key));
}

// ------------------------------------------------------------- bad input

TEST_CASE("RequiresAPasswordForEncryptedKeys", "[key]") {
  const SecretBytes& pem = CachedEncryptedPem(KeyType::kEcdsaP256);
  CHECK_THAT(PrivateKey::FromPem(pem.view()),
             StatusIs(Code::kInvalidArgument,
                      "private key is encrypted; a password is required"));
  CHECK_THAT(PrivateKey::FromDer(PemBody(pem.view())),
             StatusIs(Code::kInvalidArgument,
                      "private key is encrypted; a password is required"));
}

TEST_CASE("RejectsAWrongPassword", "[key]") {
  const SecretBytes& pem = CachedEncryptedPem(KeyType::kEcdsaP256);
  for (absl::string_view wrong : {"", "correct horse battery stapl"}) {
    INFO(wrong);
    CHECK_THAT(PrivateKey::FromPem(pem.view(), wrong),
               StatusIs(Code::kInvalidArgument,
                        "wrong password for encrypted private key"));
  }
  CHECK_THAT(PrivateKey::FromDer(PemBody(pem.view()), "wrong"),
             StatusIs(Code::kInvalidArgument,
                      "wrong password for encrypted private key"));
}

TEST_CASE("RejectsGarbageAndEmptyInput", "[key]") {
  for (absl::string_view garbage :
       {absl::string_view(""), absl::string_view("garbage"),
        absl::string_view("\x30\x03\x02\x01", 4),
        absl::string_view("\x30\x00", 2),
        absl::string_view("\x04\x02\x00\x00", 4)}) {
    INFO(absl::CEscape(garbage));
    CHECK_THAT(PrivateKey::FromDer(garbage),
               StatusIs(Code::kInvalidArgument, "not a private key"));
    CHECK_THAT(PrivateKey::FromPem(garbage),
               StatusIs(Code::kInvalidArgument, "not a private key"));
  }
  CHECK_THAT(PrivateKey::FromPem("-----BEGIN PRIVATE KEY-----\n!!!!\n"
                                 "-----END PRIVATE KEY-----\n"),
             StatusIs(Code::kInvalidArgument, "not a private key"));
  CHECK_THAT(PrivateKey::FromPem("-----BEGIN PRIVATE KEY-----\nAAAA\n"
                                 "-----END PRIVATE KEY-----\n"),
             StatusIs(Code::kInvalidArgument, "not a private key"));
  // A public key is not a private key.
  PublicKey pub = CachedKey(KeyType::kEcdsaP256).public_key();
  CHECK_THAT(PrivateKey::FromPem(pub.ToPem()),
             StatusIs(Code::kInvalidArgument, "not a private key"));
  CHECK_THAT(PrivateKey::FromDer(pub.ToDer()),
             StatusIs(Code::kInvalidArgument, "not a private key"));
}

TEST_CASE("RejectsEveryTruncationOfADerKey", "[key]") {
  for (KeyType type : {KeyType::kEcdsaP256, KeyType::kEd25519}) {
    SecretBytes der = ValueOrDie(CachedKey(type).ToPkcs8Der());
    for (size_t length = 0; length < der.size(); ++length) {
      INFO(KeyTypeName(type) << " length " << length);
      CHECK_THAT(PrivateKey::FromDer(der.view().substr(0, length)),
                 StatusIs(Code::kInvalidArgument, "not a private key"));
    }
  }
  SecretBytes rsa = ValueOrDie(CachedKey(KeyType::kRsa2048).ToPkcs8Der());
  for (size_t length :
       {size_t{1}, size_t{10}, rsa.size() / 2, rsa.size() - 1}) {
    INFO("rsa length " << length);
    CHECK_THAT(PrivateKey::FromDer(rsa.view().substr(0, length)),
               StatusIs(Code::kInvalidArgument, "not a private key"));
  }
}

TEST_CASE("RejectsTruncatedPem", "[key]") {
  SecretBytes pem = ValueOrDie(CachedKey(KeyType::kRsa2048).ToPkcs8Pem());
  CHECK_THAT(PrivateKey::FromPem(pem.view().substr(0, pem.size() / 2)),
             StatusIs(Code::kInvalidArgument, "not a private key"));
  CHECK_THAT(PrivateKey::FromPem(pem.view().substr(0, pem.size() - 10)),
             StatusIs(Code::kInvalidArgument, "not a private key"));
}

TEST_CASE("RejectsTrailingBytesAfterDer", "[key]") {
  SecretBytes der = ValueOrDie(CachedKey(KeyType::kEcdsaP256).ToPkcs8Der());
  CHECK_THAT(PrivateKey::FromDer(absl::StrCat(der.view(), "x")),
             StatusIs(Code::kInvalidArgument, "trailing bytes"));
  std::string traditional = PemBody(
      ValueOrDie(CachedKey(KeyType::kRsa2048).ToTraditionalPem()).view());
  CHECK_THAT(PrivateKey::FromDer(traditional + std::string(1, '\0')),
             StatusIs(Code::kInvalidArgument, "trailing bytes"));
}

TEST_CASE("RefusesHugePbkdf2IterationCounts", "[key]") {
  std::string der = PemBody(CachedEncryptedPem(KeyType::kEd25519).view());
  // 600000 iterations encode as INTEGER 09 27 c0; make it 0x7fffff.
  std::string tampered = der;
  size_t at = tampered.find(std::string("\x02\x03\x09\x27\xc0", 5));
  REQUIRE(at != std::string::npos);
  tampered.replace(at, 5, std::string("\x02\x03\x7f\xff\xff", 5));
  CHECK_THAT(PrivateKey::FromDer(tampered, kPassword),
             StatusIs(Code::kInvalidArgument, "PBKDF2 iterations"));
}

// An EncryptedPrivateKeyInfo with `algorithm` and 32 bytes of "ciphertext";
// the algorithm check runs before anything is decrypted.
std::string EncryptedKeyInfo(absl::string_view algorithm) {
  return Der(0x30, absl::StrCat(algorithm, Der(0x04, std::string(32, 'x'))));
}

std::string DerOid(absl::string_view contents) { return Der(0x06, contents); }

const std::string kPbes2Oid("\x2a\x86\x48\x86\xf7\x0d\x01\x05\x0d", 9);
const std::string kPbkdf2Oid("\x2a\x86\x48\x86\xf7\x0d\x01\x05\x0c", 9);
const std::string kScryptOid("\x2b\x06\x01\x04\x01\xda\x47\x04\x0b", 9);
const std::string kAes256CbcOid("\x60\x86\x48\x01\x65\x03\x04\x01\x2a", 9);
// 2,000,000,000 as a DER INTEGER.
const std::string kTwoBillion("\x02\x04\x77\x35\x94\x00", 6);

std::string Pbes2(absl::string_view kdf) {
  std::string scheme = Der(0x30, absl::StrCat(DerOid(kAes256CbcOid),
                                              Der(0x04, std::string(16, 'i'))));
  return Der(0x30, absl::StrCat(DerOid(kPbes2Oid),
                                Der(0x30, absl::StrCat(kdf, scheme))));
}

// Checks that reading `der` fails with `code` and `message` in under 1 s.
void CheckRefusedFast(const std::string& der, Code code,
                      const std::string& message) {
  auto start = std::chrono::steady_clock::now();
  CHECK_THAT(PrivateKey::FromDer(der, kPassword), StatusIs(code, message));
  std::string pem = absl::StrCat("-----BEGIN ENCRYPTED PRIVATE KEY-----\n",
                                 absl::Base64Escape(der),
                                 "\n-----END ENCRYPTED PRIVATE KEY-----\n");
  CHECK_THAT(PrivateKey::FromPem(pem, kPassword), StatusIs(code, message));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
}

TEST_CASE("RefusesPbkdf2IterationCountsHiddenBehindNonDerLengths", "[key]") {
  std::string salt = Der(0x04, std::string(16, 's'));
  // The PBKDF2-params SEQUENCE with a non-minimal 3-byte length.
  std::string params = DerWideLength(0x30, absl::StrCat(salt, kTwoBillion), 3);
  CheckRefusedFast(
      EncryptedKeyInfo(Pbes2(Der(0x30, DerOid(kPbkdf2Oid) + params))),
      Code::kInvalidArgument, "malformed DER");
  // The same with an indefinite length.
  params = DerIndefinite(0x30, absl::StrCat(salt, kTwoBillion));
  CheckRefusedFast(
      EncryptedKeyInfo(Pbes2(Der(0x30, DerOid(kPbkdf2Oid) + params))),
      Code::kInvalidArgument, "malformed DER");
  // And a plainly encoded one.
  params = Der(0x30, absl::StrCat(salt, kTwoBillion));
  CheckRefusedFast(
      EncryptedKeyInfo(Pbes2(Der(0x30, DerOid(kPbkdf2Oid) + params))),
      Code::kInvalidArgument,
      "asks for 2000000000 PBKDF2 iterations; refusing more than 5000000");
}

TEST_CASE("RefusesPkcs12PbeWithHugeIterationCounts", "[key]") {
  // pbeWithSHAAnd3-KeyTripleDES-CBC (1.2.840.113549.1.12.1.3).
  std::string oid("\x2a\x86\x48\x86\xf7\x0d\x01\x0c\x01\x03", 10);
  std::string params =
      Der(0x30, absl::StrCat(Der(0x04, std::string(8, 's')), kTwoBillion));
  CheckRefusedFast(EncryptedKeyInfo(Der(0x30, DerOid(oid) + params)),
                   Code::kInvalidArgument,
                   "asks for 2000000000 PKCS#12 KDF iterations");
}

TEST_CASE("RefusesScryptParametersAboveTheBound", "[key]") {
  std::string salt = Der(0x04, std::string(16, 's'));
  struct Case {
    std::string n, r, p;
  };
  const Case cases[] = {
      // N = 2^30, r = 8, p = 1.
      {std::string("\x02\x04\x40\x00\x00\x00", 6), "\x02\x01\x08",
       "\x02\x01\x01"},
      // N = 2^14, r = 8, p = 1000.
      {std::string("\x02\x02\x40\x00", 4), "\x02\x01\x08", "\x02\x02\x03\xe8"},
      // N = 2^20, r = 2^20.
      {std::string("\x02\x03\x10\x00\x00", 5),
       std::string("\x02\x03\x10\x00\x00", 5), "\x02\x01\x01"},
  };
  for (const Case& c : cases) {
    std::string params = Der(0x30, absl::StrCat(salt, c.n, c.r, c.p));
    CheckRefusedFast(
        EncryptedKeyInfo(Pbes2(Der(0x30, DerOid(kScryptOid) + params))),
        Code::kInvalidArgument, "scrypt parameters outside");
  }
}

TEST_CASE("ReportsUnsupportedEncryptionSchemesByName", "[key]") {
  // pbeWithMD5AndDES-CBC (1.2.840.113549.1.5.3): refused as unsupported
  // whatever the password, not reported as a wrong password.
  std::string oid("\x2a\x86\x48\x86\xf7\x0d\x01\x05\x03", 9);
  std::string params =
      Der(0x30, absl::StrCat(Der(0x04, std::string(8, 's')),
                             std::string("\x02\x02\x08\x00", 4)));
  CheckRefusedFast(EncryptedKeyInfo(Der(0x30, DerOid(oid) + params)),
                   Code::kUnimplemented, "pbeWithMD5AndDES-CBC");
}

TEST_CASE("RefusesEcKeysWithExplicitCurveParameters", "[key]") {
  std::string traditional =
      RunOpenssl("ecparam -name prime256v1 -genkey -noout -param_enc explicit");
  REQUIRE(absl::StrContains(traditional, "BEGIN EC PRIVATE KEY"));
  std::string pkcs8 = RunOpenssl("pkcs8 -topk8 -nocrypt", traditional);
  REQUIRE(absl::StrContains(pkcs8, "BEGIN PRIVATE KEY"));
  const std::string expected =
      "explicit EC curve parameters are not supported; use a named curve";
  CHECK_THAT(PrivateKey::FromPem(traditional),
             StatusIs(Code::kInvalidArgument, expected));
  CHECK_THAT(PrivateKey::FromDer(PemBody(traditional)),
             StatusIs(Code::kInvalidArgument, expected));
  CHECK_THAT(PrivateKey::FromPem(pkcs8),
             StatusIs(Code::kInvalidArgument, expected));
  CHECK_THAT(PrivateKey::FromDer(PemBody(pkcs8)),
             StatusIs(Code::kInvalidArgument, expected));
  // Also when the explicit key is only visible after decryption.
  std::string encrypted =
      RunOpenssl("pkcs8 -topk8 -v2 aes-256-cbc -iter 1000 -passout pass:s3cret",
                 traditional);
  CHECK_THAT(PrivateKey::FromPem(encrypted, "s3cret"),
             StatusIs(Code::kInvalidArgument, expected));
}

TEST_CASE("RefusesExplicitCurveParametersBehindNonDerLengths", "[key]") {
  // An explicit-parameters ECPrivateKey whose [0] parameters use a 5-byte or
  // an indefinite length: OpenSSL reads both, so the pre-parse must refuse
  // them rather than skip its check.
  std::string explicit_der = PemBody(RunOpenssl(
      "ecparam -name prime256v1 -genkey -noout -param_enc explicit"));
  std::vector<std::string> fields = DerChildren(explicit_der);
  REQUIRE(fields.size() == 4);  // version, privateKey, [0], [1]
  REQUIRE(static_cast<uint8_t>(fields[2][0]) == 0xa0);
  const std::string params = DerContents(fields[2]);
  const std::string hostile[] = {
      Der(0x30, absl::StrCat(fields[0], fields[1],
                             DerWideLength(0xa0, params, 5), fields[3])),
      Der(0x30, absl::StrCat(fields[0], fields[1],
                             DerWideLength(0xa0, params, 3), fields[3])),
      Der(0x30, absl::StrCat(fields[0], fields[1], DerIndefinite(0xa0, params),
                             fields[3])),
  };
  for (const std::string& der : hostile) {
    CHECK_THAT(PrivateKey::FromDer(der),
               StatusIs(Code::kInvalidArgument, "malformed DER"));
    std::string pem = absl::StrCat("-----BEGIN EC PRIVATE KEY-----\n",
                                   absl::Base64Escape(der),
                                   "\n-----END EC PRIVATE KEY-----\n");
    CHECK_THAT(PrivateKey::FromPem(pem),
               StatusIs(Code::kInvalidArgument, "malformed DER"));
  }
}

TEST_CASE("RefusesPkcs8NamingACurveAroundExplicitParameters", "[key]") {
  // PrivateKeyInfo whose AlgorithmIdentifier names P-256 while the
  // ECPrivateKey inside carries explicit parameters.
  std::string explicit_der = PemBody(RunOpenssl(
      "ecparam -name prime256v1 -genkey -noout -param_enc explicit"));
  std::vector<std::string> inner = DerChildren(explicit_der);
  REQUIRE(inner.size() == 4);
  const std::string params = DerContents(inner[2]);
  SecretBytes named = ValueOrDie(CachedKey(KeyType::kEcdsaP256).ToPkcs8Der());
  std::vector<std::string> outer = DerChildren(named.view());
  REQUIRE(outer.size() == 3);  // version, algorithm, privateKey
  auto pkcs8 = [&](absl::string_view ec_private_key) {
    return Der(0x30,
               absl::StrCat(outer[0], outer[1], Der(0x04, ec_private_key)));
  };
  CHECK_THAT(PrivateKey::FromDer(pkcs8(explicit_der)),
             StatusIs(Code::kInvalidArgument, "explicit EC curve parameters"));
  for (int width : {3, 5}) {
    std::string hidden =
        Der(0x30, absl::StrCat(inner[0], inner[1],
                               DerWideLength(0xa0, params, width), inner[3]));
    CHECK_THAT(PrivateKey::FromDer(pkcs8(hidden)),
               StatusIs(Code::kInvalidArgument, "malformed DER"));
  }
  std::string indefinite = Der(
      0x30,
      absl::StrCat(inner[0], inner[1], DerIndefinite(0xa0, params), inner[3]));
  CHECK_THAT(PrivateKey::FromDer(pkcs8(indefinite)),
             StatusIs(Code::kInvalidArgument, "malformed DER"));
}

TEST_CASE("RefusesPublicKeysWithExplicitCurveParametersBeforeDecoding",
          "[key]") {
  std::string pem = RunOpenssl(
      "ec -pubout",
      RunOpenssl(
          "ecparam -name prime256v1 -genkey -noout -param_enc explicit"));
  const std::string expected =
      "public key has explicit EC curve parameters; explicit EC curve "
      "parameters are not supported";
  CHECK_THAT(PublicKey::FromPem(pem),
             StatusIs(Code::kInvalidArgument, expected));
  CHECK_THAT(PublicKey::FromDer(PemBody(pem)),
             StatusIs(Code::kInvalidArgument, expected));
}

TEST_CASE("RefusesCve20220778ShapedKeyWithoutParsingIt", "[key]") {
  // ECPrivateKey with explicit prime-field parameters whose "prime" is
  // composite (697 = 17 * 41) and a compressed base point: the shape that
  // made BN_mod_sqrt loop forever (CVE-2022-0778). It must be refused
  // immediately, not handed to the EC parser.
  const std::string field_id = absl::StrCat(
      "\x30\x0d", std::string("\x06\x07\x2a\x86\x48\xce\x3d\x01\x01", 9),
      std::string("\x02\x02\x02\xb9", 4));
  const std::string curve = std::string("\x30\x06\x04\x01\x01\x04\x01\x01", 8);
  const std::string base = std::string("\x04\x03\x02\x00\x05", 5);
  const std::string order = std::string("\x02\x01\x07", 3);
  const std::string version = std::string("\x02\x01\x01", 3);
  std::string params_body = absl::StrCat(version, field_id, curve, base, order);
  std::string params = absl::StrCat(
      "\x30", std::string(1, static_cast<char>(params_body.size())),
      params_body);
  std::string tagged = absl::StrCat(
      "\xa0", std::string(1, static_cast<char>(params.size())), params);
  std::string body = absl::StrCat(std::string("\x02\x01\x01", 3),
                                  std::string("\x04\x01\x01", 3), tagged);
  std::string der = absl::StrCat(
      "\x30", std::string(1, static_cast<char>(body.size())), body);
  CHECK_THAT(PrivateKey::FromDer(der),
             StatusIs(Code::kInvalidArgument, "explicit EC curve parameters"));
  std::string pem =
      absl::StrCat("-----BEGIN EC PRIVATE KEY-----\n", absl::Base64Escape(der),
                   "\n-----END EC PRIVATE KEY-----\n");
  CHECK_THAT(PrivateKey::FromPem(pem),
             StatusIs(Code::kInvalidArgument, "explicit EC curve parameters"));
}

TEST_CASE("RefusesKeyTypesCertplaneDoesNotHandle", "[key]") {
  SECTION("X25519") {
    std::string pem = RunOpenssl("genpkey -algorithm X25519");
    CHECK_THAT(PrivateKey::FromPem(pem),
               StatusIs(Code::kInvalidArgument,
                        "unsupported private key type X25519"));
    CHECK_THAT(PrivateKey::FromDer(PemBody(pem)),
               StatusIs(Code::kInvalidArgument,
                        "unsupported private key type X25519"));
  }
  SECTION("Ed448") {
    std::string pem = RunOpenssl("genpkey -algorithm ED448");
    CHECK_THAT(
        PrivateKey::FromPem(pem),
        StatusIs(Code::kInvalidArgument, "unsupported private key type"));
  }
  SECTION("DSA") {
    std::string params = RunOpenssl(
        "genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:1024");
    WriteFile(ScratchDir() + "/dsa_params.pem", params);
    std::string pkcs8 = RunOpenssl(
        absl::StrCat("genpkey -paramfile ", ScratchDir(), "/dsa_params.pem"));
    CHECK_THAT(
        PrivateKey::FromPem(pkcs8),
        StatusIs(Code::kInvalidArgument, "unsupported private key type DSA"));
    std::string traditional = RunOpenssl("dsa", pkcs8);
    REQUIRE(absl::StrContains(traditional, "BEGIN DSA PRIVATE KEY"));
    CHECK_THAT(
        PrivateKey::FromPem(traditional),
        StatusIs(Code::kInvalidArgument,
                 "unsupported private key type (PEM \"DSA PRIVATE KEY\")"));
  }
}

TEST_CASE("ReadsRsa1024KeysAndReportsTheirSize", "[key]") {
  std::string pem =
      RunOpenssl("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024");
  PrivateKey key = ValueOrDie(PrivateKey::FromPem(pem));
  CHECK(key.info().algorithm == KeyAlgorithm::kRsa);
  CHECK(key.info().bits == 1024);
}

// ------------------------------------------------------------- signatures

TEST_CASE("SignsAndVerifiesWithEveryKeyTypeAndDigest", "[key]") {
  for (KeyType type : kTestedTypes) {
    for (absl::string_view digest : {"sha256", "sha384", "sha512"}) {
      INFO(KeyTypeName(type) << " " << digest);
      const PrivateKey& key = CachedKey(type);
      std::string signature = ValueOrDie(key.Sign("to be signed", digest));
      CHECK_THAT(
          VerifySignature(key.public_key(), "to be signed", signature, digest),
          IsOk());
      CHECK_THAT(
          VerifySignature(key.public_key(), "to be signed!", signature, digest),
          StatusIs(Code::kInvalidArgument, "signature does not verify"));
      std::string flipped = signature;
      flipped[flipped.size() / 2] ^= 0x01;
      CHECK_THAT(
          VerifySignature(key.public_key(), "to be signed", flipped, digest),
          StatusIs(Code::kInvalidArgument, "signature does not verify"));
    }
  }
}

TEST_CASE("SignsEmptyData", "[key]") {
  for (KeyType type : kTestedTypes) {
    INFO(KeyTypeName(type));
    const PrivateKey& key = CachedKey(type);
    std::string signature = ValueOrDie(key.Sign(""));
    CHECK_THAT(VerifySignature(key.public_key(), "", signature), IsOk());
  }
}

TEST_CASE("RejectsSignatureFromAnotherKeyOrWithAnotherDigest", "[key]") {
  const PrivateKey& key = CachedKey(KeyType::kEcdsaP256);
  std::string signature = ValueOrDie(key.Sign("data"));
  CHECK_THAT(VerifySignature(CachedKey(KeyType::kEcdsaP384).public_key(),
                             "data", signature),
             StatusIs(Code::kInvalidArgument, "signature does not verify"));
  CHECK_THAT(VerifySignature(CachedKey(KeyType::kRsa2048).public_key(), "data",
                             signature),
             StatusIs(Code::kInvalidArgument, "signature does not verify"));
  CHECK_THAT(VerifySignature(key.public_key(), "data", signature, "sha384"),
             StatusIs(Code::kInvalidArgument, "signature does not verify"));
  CHECK_THAT(VerifySignature(key.public_key(), "data", ""),
             StatusIs(Code::kInvalidArgument, "signature does not verify"));
  CHECK_THAT(VerifySignature(key.public_key(), "data", "garbage"),
             StatusIs(Code::kInvalidArgument, "signature does not verify"));
}

TEST_CASE("RejectsUnknownDigests", "[key]") {
  const PrivateKey& key = CachedKey(KeyType::kRsa2048);
  CHECK_THAT(key.Sign("data", "md5"),
             StatusIs(Code::kInvalidArgument, "unknown digest \"md5\""));
  CHECK_THAT(key.Sign("data", "SHA256"),
             StatusIs(Code::kInvalidArgument, "unknown digest"));
  CHECK_THAT(VerifySignature(key.public_key(), "data", "sig", "sha1"),
             StatusIs(Code::kInvalidArgument, "unknown digest \"sha1\""));
}

// The `digest` hash of `data`, for SignDigest tests.
std::string HashOf(absl::string_view data, absl::string_view digest) {
  const EVP_MD* md = digest == "sha256"   ? EVP_sha256()
                     : digest == "sha384" ? EVP_sha384()
                                          : EVP_sha512();
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  REQUIRE(EVP_Digest(data.data(), data.size(), out, &length, md, nullptr) == 1);
  return std::string(reinterpret_cast<const char*>(out), length);
}

TEST_CASE("SignDigestVerifiesAsASignatureOverTheMessage", "[key]") {
  for (KeyType type :
       {KeyType::kRsa2048, KeyType::kEcdsaP256, KeyType::kEcdsaP384}) {
    for (absl::string_view digest : {"sha256", "sha384", "sha512"}) {
      INFO(KeyTypeName(type) << " " << digest);
      const PrivateKey& key = CachedKey(type);
      std::string signature =
          ValueOrDie(key.SignDigest(HashOf("to be signed", digest), digest));
      CHECK_THAT(
          VerifySignature(key.public_key(), "to be signed", signature, digest),
          IsOk());
      CHECK_THAT(
          VerifySignature(key.public_key(), "to be signed!", signature, digest),
          StatusIs(Code::kInvalidArgument, "signature does not verify"));
    }
  }
}

TEST_CASE("SignDigestMatchesSignForRsa", "[key]") {
  // PKCS#1 v1.5 is deterministic: the DigestInfo must be the same.
  const PrivateKey& key = CachedKey(KeyType::kRsa2048);
  CHECK(ValueOrDie(key.SignDigest(HashOf("m", "sha384"), "sha384")) ==
        ValueOrDie(key.Sign("m", "sha384")));
}

TEST_CASE("SignDigestRefusesDigestsOfTheWrongLength", "[key]") {
  for (KeyType type : {KeyType::kRsa2048, KeyType::kEcdsaP256}) {
    INFO(KeyTypeName(type));
    const PrivateKey& key = CachedKey(type);
    CHECK_THAT(key.SignDigest(std::string(31, 'x'), "sha256"),
               StatusIs(Code::kInvalidArgument, "sha256 digest is 32 bytes"));
    CHECK_THAT(key.SignDigest(HashOf("m", "sha256"), "sha384"),
               StatusIs(Code::kInvalidArgument, "sha384 digest is 48 bytes"));
    CHECK_THAT(key.SignDigest(HashOf("m", "sha256"), "sha512"),
               StatusIs(Code::kInvalidArgument, "sha512 digest is 64 bytes"));
    CHECK_THAT(key.SignDigest("", "sha256"),
               StatusIs(Code::kInvalidArgument, "is 0 bytes"));
    CHECK_THAT(key.SignDigest(HashOf("m", "sha256"), "md5"),
               StatusIs(Code::kInvalidArgument, "unknown digest \"md5\""));
  }
}

TEST_CASE("SignDigestRefusesEd25519", "[key]") {
  CHECK_THAT(
      CachedKey(KeyType::kEd25519).SignDigest(HashOf("m", "sha256"), "sha256"),
      StatusIs(Code::kInvalidArgument, "Ed25519 signs messages, not digests"));
}

TEST_CASE("SignaturesVerifyWithTheOpensslCli", "[key]") {
  // RSA PKCS#1 v1.5 and ECDSA (DER) over SHA-256, as `openssl dgst` expects.
  for (KeyType type : {KeyType::kRsa2048, KeyType::kEcdsaP256}) {
    INFO(KeyTypeName(type));
    const PrivateKey& key = CachedKey(type);
    WriteFile(ScratchDir() + "/pub.pem", key.public_key().ToPem());
    WriteFile(ScratchDir() + "/sig", ValueOrDie(key.Sign("interop", "sha256")));
    std::string out = RunOpenssl(
        absl::StrCat("dgst -sha256 -verify ", ScratchDir(), "/pub.pem",
                     " -signature ", ScratchDir(), "/sig"),
        "interop");
    CHECK(absl::StrContains(out, "Verified OK"));
  }
}

// --------------------------------------------------- keys and certificates

TEST_CASE("CompressedPointKeyEqualsItsUncompressedForm", "[key]") {
  const PrivateKey& key = CachedKey(KeyType::kEcdsaP256);
  std::string compressed =
      RunOpenssl("ec -pubout -conv_form compressed",
                 ValueOrDie(key.ToTraditionalPem()).view());
  PublicKey parsed = ValueOrDie(PublicKey::FromPem(compressed));
  REQUIRE(PemBody(compressed) != key.public_key().ToDer());
#if defined(CERTPLANE_BORINGSSL)
  // BoringSSL re-encodes the point uncompressed.
  CHECK(parsed.ToDer() == key.public_key().ToDer());
#else
  CHECK(parsed.ToDer() == PemBody(compressed));  // Kept as it came.
#endif
  CHECK(parsed == key.public_key());
  CHECK_FALSE(parsed == CachedKey(KeyType::kEcdsaP384).public_key());
}

TEST_CASE("CopiesOfAMovedFromPublicKeyAreEmptyNotACrash", "[key]") {
  PublicKey key = CachedKey(KeyType::kEcdsaP256).public_key();
  PublicKey moved = std::move(key);
  PublicKey copy(key);  // NOLINT(bugprone-use-after-move): on purpose.
  CHECK(copy.native() == nullptr);
  PublicKey assigned = moved;
  assigned = key;  // NOLINT(bugprone-use-after-move): on purpose.
  CHECK(assigned.native() == nullptr);
  CHECK(assigned == copy);
  CHECK_FALSE(assigned == moved);
}

TEST_CASE("RefusesPemInputsOverIntMaxWithoutReadingThem", "[key]") {
  // Only the size is looked at; the bytes past the buffer are never read.
  std::string small = "x";
  absl::string_view huge(small.data(), size_t{INT_MAX} + 1);
  CHECK_THAT(PublicKey::FromPem(huge),
             StatusIs(Code::kInvalidArgument, "input too large"));
  CHECK_THAT(PrivateKey::FromPem(huge),
             StatusIs(Code::kInvalidArgument, "input too large"));
}

TEST_CASE("CertificateAcceptsItsOwnKeyAndRefusesAnother", "[key]") {
  for (KeyType type : kTestedTypes) {
    INFO(KeyTypeName(type));
    testing::TestCertOptions options;
    options.common_name = "key match root";
    options.key_type = type;
    testing::TestIdentity root = ValueOrDie(testing::MakeRootCa(options));
    CHECK_THAT(root.cert.CheckKeyMatches(root.key), IsOk());
    // Still the same key after an encode/decode round trip.
    PrivateKey reread = ValueOrDie(
        PrivateKey::FromPem(ValueOrDie(root.key.ToPkcs8Pem()).view()));
    CHECK_THAT(root.cert.CheckKeyMatches(reread), IsOk());
    // Another key of the same type, and a key of another type, do not match.
    CHECK_THAT(root.cert.CheckKeyMatches(CachedKey(type)),
               StatusIs(Code::kInvalidArgument,
                        "private key does not match certificate"));
    KeyType other =
        type == KeyType::kEd25519 ? KeyType::kEcdsaP256 : KeyType::kEd25519;
    CHECK_THAT(root.cert.CheckKeyMatches(CachedKey(other)),
               StatusIs(Code::kInvalidArgument,
                        "private key does not match certificate"));
  }
}

}  // namespace
}  // namespace certplane::crypto
