#include "libs/crypto/formats.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#if !defined(CERTPLANE_BORINGSSL)
#include <openssl/evp.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#endif

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "libs/testing/scratch_dir.h"
#include "libs/testing/status_matchers.h"

namespace certplane::crypto {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::ReadFileContents;
using ::certplane::testing::ScratchDir;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;
using Code = absl::StatusCode;

constexpr absl::string_view kNotRecognised =
    "not a recognised certificate format (tried PEM, DER, PKCS#7, PKCS#12)";

// Test material made with the openssl CLI, once per test process, in a
// temporary directory removed at exit. Chain: root -> intermediate -> leaf,
// all ECDSA P-256.
class CliPki {
 public:
  static const CliPki& Get() {
    static const CliPki pki;
    return pki;
  }

  // Runs `command` (a shell command) in the directory; true on exit 0.
  bool Run(const std::string& command) const { return dir_.Run(command).ok(); }
  std::string Path(absl::string_view name) const { return dir_.Path(name); }
  std::string Read(absl::string_view name) const { return dir_.Read(name); }
  void Write(absl::string_view name, absl::string_view data) const {
    dir_.Write(name, data);
  }
  bool ok() const { return ok_; }

  std::string root_pem, intermediate_pem, leaf_pem;

 private:
  CliPki() {
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    ok_ =
        Run("printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,"
            "keyCertSign,cRLSign\\n' > ca.ext") &&
        Run("printf 'subjectAltName=DNS:leaf.example\\n' > leaf.ext") &&
        Run(absl::StrCat("openssl req -x509 ", ec, " -keyout root.key ",
                         "-out root.pem -days 30 -subj '/CN=Formats Root' ",
                         "-addext basicConstraints=critical,CA:TRUE ",
                         "-addext keyUsage=critical,keyCertSign,cRLSign")) &&
        Run(absl::StrCat("openssl req ", ec, " -keyout int.key -out int.csr ",
                         "-subj '/CN=Formats Intermediate'")) &&
        Run("openssl x509 -req -in int.csr -CA root.pem -CAkey root.key "
            "-CAcreateserial -days 30 -extfile ca.ext -out int.pem") &&
        Run(absl::StrCat("openssl req ", ec, " -keyout leaf.key -out leaf.csr ",
                         "-subj '/CN=leaf.example'")) &&
        Run("openssl x509 -req -in leaf.csr -CA int.pem -CAkey int.key "
            "-CAcreateserial -days 30 -extfile leaf.ext -out leaf.pem") &&
        Run("openssl x509 -in leaf.pem -outform DER -out leaf.der") &&
        Run("openssl pkcs12 -export -inkey leaf.key -in leaf.pem "
            "-certfile int.pem -passout pass:secret -out modern.p12") &&
        Run("openssl pkcs12 -export -legacy -inkey leaf.key -in leaf.pem "
            "-certfile int.pem -passout pass:secret -out legacy.p12") &&
        Run("openssl pkcs12 -export -inkey leaf.key -in leaf.pem "
            "-passout pass: -out nopass.p12") &&
        Run("cat leaf.pem int.pem root.pem > chain.pem && "
            "openssl crl2pkcs7 -nocrl -certfile chain.pem -out chain.p7b && "
            "openssl crl2pkcs7 -nocrl -certfile chain.pem -outform DER "
            "-out chain.p7b.der && "
            "openssl crl2pkcs7 -nocrl -outform DER -out empty.p7b.der "
            "</dev/null") &&
        Run("openssl pkcs8 -topk8 -in leaf.key -v2 aes-256-cbc "
            "-passout pass:secret -out leaf.enc.pem && "
            "openssl ec -in leaf.key -out leaf.trad.pem");
    if (ok_) {
      root_pem = Read("root.pem");
      intermediate_pem = Read("int.pem");
      leaf_pem = Read("leaf.pem");
    }
  }

  ScratchDir dir_{"certplane-formats"};
  bool ok_ = false;
};

const CliPki& Pki() {
  const CliPki& pki = CliPki::Get();
  REQUIRE(pki.ok());
  return pki;
}

Certificate Cert(const std::string& pem) {
  return ValueOrDie(Certificate::FromPem(pem));
}

// The leaf's key, via the CLI's PKCS#12 (independent of key PEM parsing).
PrivateKey LeafKey() {
  ParsedBundle bundle =
      ValueOrDie(ReadPkcs12(Pki().Read("modern.p12"), "secret"));
  REQUIRE(bundle.keys.size() == 1);
  return std::move(bundle.keys.front());
}

std::vector<std::string> Ders(const std::vector<Certificate>& certs) {
  std::vector<std::string> out;
  for (const Certificate& cert : certs) out.push_back(cert.der());
  return out;
}

TEST_CASE("FormatName names every format") {
  CHECK(FormatName(Format::kPem) == "PEM");
  CHECK(FormatName(Format::kDer) == "DER");
  CHECK(FormatName(Format::kPkcs7Pem) == "PKCS#7 (PEM)");
  CHECK(FormatName(Format::kPkcs7Der) == "PKCS#7 (DER)");
  CHECK(FormatName(Format::kPkcs12) == "PKCS#12");
}

TEST_CASE("ReadBundle reads a DER certificate written by the CLI") {
  const CliPki& pki = Pki();
  ParsedBundle bundle = ValueOrDie(ReadBundle(pki.Read("leaf.der")));
  CHECK(bundle.format == Format::kDer);
  REQUIRE(bundle.certificates.size() == 1);
  CHECK(bundle.certificates[0] == Cert(pki.leaf_pem));
  CHECK(bundle.keys.empty());
}

TEST_CASE("ReadBundle reads PEM with text around blocks, in file order") {
  const CliPki& pki = Pki();
  const std::string text =
      absl::StrCat("Bag Attributes\n    friendlyName: x\n", pki.root_pem,
                   "some comment between blocks\n\n", pki.leaf_pem,
                   "subject=CN = Formats Intermediate\r\n",
                   pki.intermediate_pem, "trailing text");
  ParsedBundle bundle = ValueOrDie(ReadBundle(text));
  CHECK(bundle.format == Format::kPem);
  CHECK(Ders(bundle.certificates) ==
        std::vector<std::string>{Cert(pki.root_pem).der(),
                                 Cert(pki.leaf_pem).der(),
                                 Cert(pki.intermediate_pem).der()});
  CHECK(bundle.notes.empty());
}

TEST_CASE("ReadBundle reads PEM with CRLF line endings") {
  const CliPki& pki = Pki();
  const std::string crlf = absl::StrReplaceAll(pki.leaf_pem, {{"\n", "\r\n"}});
  ParsedBundle bundle = ValueOrDie(ReadBundle(crlf));
  REQUIRE(bundle.certificates.size() == 1);
  CHECK(bundle.certificates[0] == Cert(pki.leaf_pem));
}

TEST_CASE("ReadPem reads a TRUSTED CERTIFICATE block, dropping trust") {
  const CliPki& pki = Pki();
  REQUIRE(
      pki.Run("openssl x509 -in leaf.pem -addtrust serverAuth "
              "-out trusted.pem"));
  const std::string trusted = pki.Read("trusted.pem");
  REQUIRE(absl::StrContains(trusted, "BEGIN TRUSTED CERTIFICATE"));
  ParsedBundle bundle = ValueOrDie(ReadPem(trusted));
  REQUIRE(bundle.certificates.size() == 1);
  CHECK(bundle.certificates[0] == Cert(pki.leaf_pem));
}

TEST_CASE("ReadPem rejects a BEGIN line without closing dashes") {
  CHECK_THAT(ReadPem("-----BEGIN CERTIFICATE\nAAAA\n"),
             StatusIs(Code::kInvalidArgument,
                      "PEM block 1 has a malformed BEGIN line"));
  CHECK_THAT(ReadPem(absl::StrCat("-----BEGIN ", std::string(100, 'A'),
                                  "-----\nAAAA\n")),
             StatusIs(Code::kInvalidArgument,
                      "PEM block 1 has a malformed BEGIN line"));
}

TEST_CASE(
    "ReadBundle reads a DER certificate even if it contains a PEM "
    "marker") {
  const CliPki& pki = Pki();
  REQUIRE(
      pki.Run("openssl req -x509 -newkey ec -pkeyopt "
              "ec_paramgen_curve:P-256 -nodes -keyout odd.key -days 1 "
              "-subj '/CN=-----BEGIN CERTIFICATE-----' -outform DER "
              "-out odd.der"));
  ParsedBundle bundle = ValueOrDie(ReadBundle(pki.Read("odd.der")));
  CHECK(bundle.format == Format::kDer);
  CHECK(bundle.certificates.size() == 1);
}

TEST_CASE("ReadBundle reads keys mixed with certificates and skips CSRs") {
  const CliPki& pki = Pki();
  const std::string text =
      absl::StrCat(pki.Read("leaf.key"), pki.leaf_pem, pki.Read("leaf.csr"),
                   pki.Read("leaf.enc.pem"), pki.intermediate_pem,
                   pki.Read("leaf.trad.pem"));
  ParsedBundle bundle = ValueOrDie(ReadBundle(text, "secret"));
  CHECK(bundle.format == Format::kPem);
  REQUIRE(bundle.certificates.size() == 2);
  REQUIRE(bundle.keys.size() == 3);
  for (const PrivateKey& key : bundle.keys) {
    CHECK_THAT(bundle.certificates[0].CheckKeyMatches(key), IsOk());
  }
  REQUIRE(bundle.notes.size() == 1);
  CHECK(bundle.notes[0] == "skipped PEM block 3 'CERTIFICATE REQUEST'");
}

TEST_CASE(
    "ReadBundle names the encrypted key block when the password is "
    "missing or wrong") {
  const CliPki& pki = Pki();
  const std::string text = absl::StrCat(pki.leaf_pem, pki.Read("leaf.enc.pem"));
  CHECK_THAT(ReadBundle(text), StatusIs(Code::kInvalidArgument,
                                        "PEM block 2 'ENCRYPTED PRIVATE KEY'"));
  CHECK_THAT(
      ReadBundle(text, "wrong"),
      StatusIs(Code::kInvalidArgument, "PEM block 2 'ENCRYPTED PRIVATE KEY'"));
}

TEST_CASE("ReadPem names the block with bad base64") {
  const CliPki& pki = Pki();
  std::string broken = pki.intermediate_pem;
  broken.insert(broken.find('\n') + 10, "!*");
  CHECK_THAT(ReadPem(absl::StrCat(pki.leaf_pem, broken)),
             StatusIs(Code::kInvalidArgument,
                      "PEM block 2 'CERTIFICATE' has invalid base64"));
  const std::string empty_body =
      "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
  CHECK_THAT(ReadPem(empty_body),
             StatusIs(Code::kInvalidArgument,
                      "PEM block 1 'CERTIFICATE' has invalid base64"));
}

TEST_CASE("ReadPem rejects a certificate block holding something else") {
  const CliPki& pki = Pki();
  std::string wrong = pki.Read("leaf.csr");
  wrong = absl::StrReplaceAll(wrong, {{"CERTIFICATE REQUEST", "CERTIFICATE"}});
  CHECK_THAT(ReadPem(wrong),
             StatusIs(Code::kInvalidArgument, "PEM block 1 'CERTIFICATE'"));
}

TEST_CASE("ReadPem rejects a block without END line") {
  const CliPki& pki = Pki();
  const std::string pem = pki.leaf_pem.substr(0, pki.leaf_pem.size() / 2);
  CHECK_THAT(ReadPem(pem),
             StatusIs(Code::kInvalidArgument,
                      "PEM block 1 'CERTIFICATE' has no END line"));
}

TEST_CASE("ReadPem rejects PEM with neither certificates nor keys") {
  const CliPki& pki = Pki();
  CHECK_THAT(ReadPem(pki.Read("leaf.csr")),
             StatusIs(Code::kInvalidArgument,
                      "no certificates or private keys in PEM input "
                      "(skipped PEM block 1 'CERTIFICATE REQUEST')"));
  CHECK_THAT(ReadPem("just some text"),
             StatusIs(Code::kInvalidArgument, "no PEM blocks found"));
}

TEST_CASE("ReadPem refuses more than 1000 blocks") {
  const CliPki& pki = Pki();
  std::string many;
  for (int i = 0; i < kMaxPemBlocks + 1; ++i) many += pki.Read("leaf.csr");
  CHECK_THAT(ReadBundle(many),
             StatusIs(Code::kInvalidArgument, "more than 1000 PEM blocks"));
}

TEST_CASE("ReadBundle refuses inputs over 16 MiB") {
  const std::string huge(kMaxInputBytes + 1, '0');
  CHECK_THAT(ReadBundle(huge),
             StatusIs(Code::kInvalidArgument, "the limit is 16 MiB"));
}

TEST_CASE("ReadBundle rejects empty input and garbage") {
  CHECK_THAT(ReadBundle(""), StatusIs(Code::kInvalidArgument, "empty input"));
  CHECK_THAT(ReadBundle("hello, world"),
             StatusIs(Code::kInvalidArgument, std::string(kNotRecognised)));
  CHECK_THAT(ReadBundle(std::string("\x30\x03\x01\x01\xff", 5)),
             StatusIs(Code::kInvalidArgument, std::string(kNotRecognised)));
  CHECK_THAT(ReadBundle(std::string(1, '\0')),
             StatusIs(Code::kInvalidArgument, std::string(kNotRecognised)));
  CHECK_THAT(ReadDer("garbage"), StatusIs(Code::kInvalidArgument));
  CHECK_THAT(ReadPkcs7("garbage"), StatusIs(Code::kInvalidArgument));
  CHECK_THAT(ReadPkcs12("garbage", "secret"), StatusIs(Code::kInvalidArgument));
}

TEST_CASE("ReadBundle names a truncated or padded DER certificate") {
  const CliPki& pki = Pki();
  const std::string der = pki.Read("leaf.der");
  CHECK_THAT(ReadBundle(der.substr(0, der.size() - 1)),
             StatusIs(Code::kInvalidArgument,
                      "DER certificate is truncated: its header declares"));
  CHECK_THAT(ReadBundle(der + "xx"),
             StatusIs(Code::kInvalidArgument,
                      "DER certificate is followed by 2 trailing bytes"));
}

TEST_CASE("ReadBundle reads a DER private key, PKCS#8 and traditional") {
  const CliPki& pki = Pki();
  REQUIRE(
      pki.Run("openssl pkey -in leaf.key -outform DER -out leaf.p8.der && "
              "openssl ec -in leaf.key -outform DER -out leaf.ec.der"));
  for (const char* file : {"leaf.p8.der", "leaf.ec.der"}) {
    INFO(file);
    ParsedBundle bundle = ValueOrDie(ReadBundle(pki.Read(file)));
    CHECK(bundle.format == Format::kDer);
    CHECK(bundle.certificates.empty());
    REQUIRE(bundle.keys.size() == 1);
    CHECK_THAT(Cert(pki.leaf_pem).CheckKeyMatches(bundle.keys[0]), IsOk());
  }
}

TEST_CASE("ReadBundle names trailing bytes after a PKCS#12 or PKCS#7") {
  const CliPki& pki = Pki();
  CHECK_THAT(ReadBundle(pki.Read("modern.p12") + "x", "secret"),
             StatusIs(Code::kInvalidArgument,
                      "PKCS#12 is followed by 1 trailing bytes"));
  CHECK_THAT(ReadBundle(pki.Read("chain.p7b.der") + "xyz"),
             StatusIs(Code::kInvalidArgument,
                      "PKCS#7 is followed by 3 trailing bytes"));
}

TEST_CASE("ReadBundle reads PKCS#7 written by openssl crl2pkcs7, PEM and DER") {
  const CliPki& pki = Pki();
  const std::vector<std::string> expected = {Cert(pki.leaf_pem).der(),
                                             Cert(pki.intermediate_pem).der(),
                                             Cert(pki.root_pem).der()};
  ParsedBundle pem = ValueOrDie(ReadBundle(pki.Read("chain.p7b")));
  CHECK(pem.format == Format::kPkcs7Pem);
  std::vector<std::string> got = Ders(pem.certificates);
  CHECK(std::is_permutation(got.begin(), got.end(), expected.begin(),
                            expected.end()));
  ParsedBundle der = ValueOrDie(ReadBundle(pki.Read("chain.p7b.der")));
  CHECK(der.format == Format::kPkcs7Der);
  got = Ders(der.certificates);
  CHECK(std::is_permutation(got.begin(), got.end(), expected.begin(),
                            expected.end()));
}

TEST_CASE("ReadPkcs7 rejects a PKCS#7 with no certificates") {
  const CliPki& pki = Pki();
  CHECK_THAT(
      ReadBundle(pki.Read("empty.p7b.der")),
      StatusIs(Code::kInvalidArgument, "PKCS#7 contains no certificates"));
  CHECK_THAT(ReadPkcs7("-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n"),
             StatusIs(Code::kInvalidArgument, "no \"PKCS7\" PEM block"));
}

TEST_CASE("ReadBundle reads a modern PKCS#12 written by the CLI, leaf first") {
  const CliPki& pki = Pki();
  ParsedBundle bundle =
      ValueOrDie(ReadBundle(pki.Read("modern.p12"), "secret"));
  CHECK(bundle.format == Format::kPkcs12);
  CHECK(Ders(bundle.certificates) ==
        std::vector<std::string>{Cert(pki.leaf_pem).der(),
                                 Cert(pki.intermediate_pem).der()});
  REQUIRE(bundle.keys.size() == 1);
  CHECK_THAT(bundle.certificates[0].CheckKeyMatches(bundle.keys[0]), IsOk());
}

TEST_CASE(
    "ReadBundle reads a legacy (RC2-40/3DES) PKCS#12 written by the CLI") {
  const CliPki& pki = Pki();
  ParsedBundle bundle =
      ValueOrDie(ReadBundle(pki.Read("legacy.p12"), "secret"));
  CHECK(bundle.format == Format::kPkcs12);
  REQUIRE(bundle.certificates.size() == 2);
  CHECK(bundle.certificates[0] == Cert(pki.leaf_pem));
  REQUIRE(bundle.keys.size() == 1);
  CHECK_THAT(bundle.certificates[0].CheckKeyMatches(bundle.keys[0]), IsOk());
}

TEST_CASE("ReadPkcs12 reports a wrong or missing password") {
  const CliPki& pki = Pki();
  for (const char* file : {"modern.p12", "legacy.p12"}) {
    INFO(file);
    CHECK_THAT(ReadPkcs12(pki.Read(file), "wrong"),
               StatusIs(Code::kInvalidArgument,
                        "PKCS#12 MAC verification failed: wrong password"));
    CHECK_THAT(ReadPkcs12(pki.Read(file)),
               StatusIs(Code::kInvalidArgument, "PKCS#12 needs a password"));
    CHECK_THAT(ReadBundle(pki.Read(file)),
               StatusIs(Code::kInvalidArgument, "PKCS#12 needs a password"));
  }
  CHECK_THAT(ReadPkcs12(pki.Read("modern.p12"), std::string("sec\0ret", 7)),
             StatusIs(Code::kInvalidArgument, "password contains a NUL byte"));
}

TEST_CASE("ReadPkcs12 opens an empty-password PKCS#12 without a password") {
  const CliPki& pki = Pki();
  ParsedBundle bundle = ValueOrDie(ReadPkcs12(pki.Read("nopass.p12")));
  REQUIRE(bundle.certificates.size() == 1);
  CHECK(bundle.certificates[0] == Cert(pki.leaf_pem));
  CHECK(bundle.keys.size() == 1);
}

// DER writing for hostile PKCS#12 inputs built in the test.
std::string Der(uint8_t tag, absl::string_view contents) {
  std::string out(1, static_cast<char>(tag));
  if (contents.size() < 0x80) {
    out.push_back(static_cast<char>(contents.size()));
  } else {
    std::string bytes;
    for (size_t n = contents.size(); n > 0; n >>= 8) {
      bytes.insert(bytes.begin(), static_cast<char>(n & 0xff));
    }
    out.push_back(static_cast<char>(0x80 | bytes.size()));
    out += bytes;
  }
  out.append(contents.data(), contents.size());
  return out;
}

const std::string kOidData("\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01", 11);
const std::string kOidEncryptedData(
    "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x06", 11);
const std::string kOidShroudedKeyBag(
    "\x06\x0b\x2a\x86\x48\x86\xf7\x0d\x01\x0c\x0a\x01\x02", 13);

// pbeWithSHAAnd3-KeyTripleDES-CBC with 2,000,000,000 iterations.
std::string HugePbeAlgorithm() {
  std::string oid("\x06\x0a\x2a\x86\x48\x86\xf7\x0d\x01\x0c\x01\x03", 12);
  std::string count("\x02\x04\x77\x35\x94\x00", 6);
  return Der(0x30, oid + Der(0x30, Der(0x04, std::string(8, 's')) + count));
}

// A PFX without a MAC whose AuthenticatedSafe holds `content_info`.
std::string PfxWith(absl::string_view content_info) {
  std::string auth_safe = Der(0x30, content_info);
  return Der(0x30, absl::StrCat(
                       std::string("\x02\x01\x03", 3),
                       Der(0x30, kOidData + Der(0xa0, Der(0x04, auth_safe)))));
}

// A data ContentInfo holding a shrouded key bag with HugePbeAlgorithm().
std::string HugeShroudedKeyPfx() {
  std::string key_info =
      Der(0x30, HugePbeAlgorithm() + Der(0x04, std::string(32, 'x')));
  std::string bag = Der(0x30, kOidShroudedKeyBag + Der(0xa0, key_info));
  std::string safe_contents = Der(0x30, bag);
  return PfxWith(Der(0x30, kOidData + Der(0xa0, Der(0x04, safe_contents))));
}

// An encryptedData ContentInfo encrypted with HugePbeAlgorithm().
std::string HugeEncryptedContentsPfx() {
  std::string encrypted_content_info = Der(
      0x30, kOidData + HugePbeAlgorithm() + Der(0x80, std::string(32, 'x')));
  std::string encrypted_data =
      Der(0x30, std::string("\x02\x01\x00", 3) + encrypted_content_info);
  return PfxWith(Der(0x30, kOidEncryptedData + Der(0xa0, encrypted_data)));
}

void CheckPkcs12RefusedFast(const std::string& pfx,
                            const std::string& message) {
  auto start = std::chrono::steady_clock::now();
  CHECK_THAT(ReadPkcs12(pfx, "secret"),
             StatusIs(Code::kInvalidArgument, message));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
}

TEST_CASE("ReadPkcs12 refuses huge key bag iteration counts without a MAC") {
  CheckPkcs12RefusedFast(HugeShroudedKeyPfx(),
                         "PKCS#12 shrouded key bag asks for 2000000000");
  CheckPkcs12RefusedFast(HugeEncryptedContentsPfx(),
                         "PKCS#12 encrypted contents asks for 2000000000");
}

#if !defined(CERTPLANE_BORINGSSL)
// The same PFX with a valid one-iteration MAC under "secret".
std::string WithOneIterationMac(const std::string& pfx) {
  const auto* p = reinterpret_cast<const uint8_t*>(pfx.data());
  PKCS12* p12 = d2i_PKCS12(nullptr, &p, static_cast<long>(pfx.size()));
  REQUIRE(p12 != nullptr);
  REQUIRE(PKCS12_set_mac(p12, "secret", -1, nullptr, 0, 1, EVP_sha256()) == 1);
  uint8_t* der = nullptr;
  int length = i2d_PKCS12(p12, &der);
  PKCS12_free(p12);
  REQUIRE(length > 0);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(length));
  OPENSSL_free(der);
  return out;
}

TEST_CASE("ReadPkcs12 refuses huge key bag iteration counts behind a MAC") {
  CheckPkcs12RefusedFast(WithOneIterationMac(HugeShroudedKeyPfx()),
                         "PKCS#12 shrouded key bag asks for 2000000000");
  CheckPkcs12RefusedFast(WithOneIterationMac(HugeEncryptedContentsPfx()),
                         "PKCS#12 encrypted contents asks for 2000000000");
}
#endif

TEST_CASE("Every truncation of a PKCS#12 and a PKCS#7 is a clear error") {
  const CliPki& pki = Pki();
  for (const char* file : {"modern.p12", "chain.p7b.der", "chain.p7b"}) {
    std::string data = pki.Read(file);
    // A PEM file stays complete when only its final newline is cut.
    if (absl::EndsWith(file, ".p7b")) data.pop_back();
    INFO(file);
    REQUIRE(data.size() > 100);
    for (size_t length = 0; length < data.size(); ++length) {
      absl::StatusOr<ParsedBundle> bundle =
          ReadBundle(absl::string_view(data).substr(0, length), "secret");
      INFO("length " << length);
      REQUIRE_THAT(bundle, StatusIs(Code::kInvalidArgument));
      REQUIRE_FALSE(bundle.status().message().empty());
    }
  }
}

TEST_CASE("WritePem round-trips and matches the CLI's PEM") {
  const CliPki& pki = Pki();
  const std::vector<Certificate> chain = {Cert(pki.leaf_pem),
                                          Cert(pki.intermediate_pem)};
  const std::string pem = WritePem(chain);
  CHECK(pem == pki.leaf_pem + pki.intermediate_pem);
  ParsedBundle bundle = ValueOrDie(ReadBundle(pem));
  CHECK(Ders(bundle.certificates) == Ders(chain));
  CHECK(WriteDer(chain[0]) == pki.Read("leaf.der"));
}

TEST_CASE("WritePkcs7 round-trips and the CLI reads it") {
  const CliPki& pki = Pki();
  const std::vector<Certificate> chain = {
      Cert(pki.leaf_pem), Cert(pki.intermediate_pem), Cert(pki.root_pem)};
  for (bool pem : {false, true}) {
    INFO("pem " << pem);
    const std::string p7 = ValueOrDie(WritePkcs7(chain, pem));
    ParsedBundle bundle = ValueOrDie(ReadBundle(p7));
    CHECK(bundle.format == (pem ? Format::kPkcs7Pem : Format::kPkcs7Der));
    std::vector<std::string> got = Ders(bundle.certificates);
    std::vector<std::string> want = Ders(chain);
    CHECK(
        std::is_permutation(got.begin(), got.end(), want.begin(), want.end()));
    pki.Write("out.p7", p7);
    REQUIRE(pki.Run(absl::StrCat("openssl pkcs7 -inform ", pem ? "PEM" : "DER",
                                 " -in out.p7 -print_certs -out out.p7.txt")));
    const std::string printed = pki.Read("out.p7.txt");
    CHECK(absl::StrContains(printed, "CN = leaf.example"));
    CHECK(absl::StrContains(printed, "CN = Formats Intermediate"));
    CHECK(absl::StrContains(printed, "CN = Formats Root"));
  }
  CHECK_THAT(WritePkcs7({}, false),
             StatusIs(Code::kInvalidArgument, "at least one certificate"));
}

std::string Pkcs12Info(const CliPki& pki, absl::string_view p12, bool legacy) {
  pki.Write("out.p12", p12);
  REQUIRE(pki.Run(absl::StrCat("openssl pkcs12 ", legacy ? "-legacy " : "",
                               "-in out.p12 -passin pass:s3cret -info -nodes "
                               "-out out.p12.txt 2> out.p12.info; "
                               "cat out.p12.info >> out.p12.txt")));
  return pki.Read("out.p12.txt");
}

TEST_CASE("WritePkcs12 legacy round-trips and the CLI reads it") {
  const CliPki& pki = Pki();
  const PrivateKey key = LeafKey();
  const std::vector<Certificate> chain = {Cert(pki.leaf_pem),
                                          Cert(pki.intermediate_pem)};
  Pkcs12Options options;
  options.legacy = true;
  options.friendly_name = "my server";
  const std::string p12 =
      ValueOrDie(WritePkcs12(&key, chain, "s3cret", options));
  ParsedBundle bundle = ValueOrDie(ReadBundle(p12, "s3cret"));
  CHECK(Ders(bundle.certificates) == Ders(chain));
  REQUIRE(bundle.keys.size() == 1);
  CHECK(bundle.keys[0].public_key() == key.public_key());

  const std::string info = Pkcs12Info(pki, p12, /*legacy=*/true);
  INFO(info);
  CHECK(absl::StrContains(info, "MAC: sha1"));
  CHECK(absl::StrContains(info, "pbeWithSHA1And40BitRC2-CBC"));
  CHECK(absl::StrContains(info, "pbeWithSHA1And3-KeyTripleDES-CBC"));
  CHECK(absl::StrContains(info, "friendlyName: my server"));
  CHECK(absl::StrContains(info, "CN = leaf.example"));
}

#if defined(CERTPLANE_BORINGSSL)
TEST_CASE("WritePkcs12 modern is UNIMPLEMENTED on BoringSSL") {
  const CliPki& pki = Pki();
  const PrivateKey key = LeafKey();
  const std::vector<Certificate> chain = {Cert(pki.leaf_pem)};
  CHECK_THAT(WritePkcs12(&key, chain, "s3cret", {}),
             StatusIs(Code::kUnimplemented,
                      "BoringSSL cannot write a modern PKCS#12"));
}
#else
TEST_CASE("WritePkcs12 modern uses AES-256, PBKDF2-SHA256 and a SHA-256 MAC") {
  const CliPki& pki = Pki();
  const PrivateKey key = LeafKey();
  const std::vector<Certificate> chain = {Cert(pki.leaf_pem),
                                          Cert(pki.intermediate_pem)};
  Pkcs12Options options;
  options.iterations = 1000;
  const std::string p12 =
      ValueOrDie(WritePkcs12(&key, chain, "s3cret", options));
  ParsedBundle bundle = ValueOrDie(ReadBundle(p12, "s3cret"));
  CHECK(Ders(bundle.certificates) == Ders(chain));
  REQUIRE(bundle.keys.size() == 1);
  CHECK(bundle.keys[0].public_key() == key.public_key());
  CHECK_THAT(ReadBundle(p12, "wrong"),
             StatusIs(Code::kInvalidArgument, "wrong password"));

  const std::string info = Pkcs12Info(pki, p12, /*legacy=*/false);
  INFO(info);
  CHECK(absl::StrContains(info, "MAC: sha256, Iteration 1000"));
  CHECK(absl::StrContains(info,
                          "PBES2, PBKDF2, AES-256-CBC, Iteration 1000, "
                          "PRF hmacWithSHA256"));
  CHECK_FALSE(absl::StrContains(info, "RC2"));
  CHECK(absl::StrContains(info, "CN = Formats Intermediate"));
}

TEST_CASE("WritePkcs12 defaults to a high iteration count") {
  const CliPki& pki = Pki();
  const PrivateKey key = LeafKey();
  const std::vector<Certificate> chain = {Cert(pki.leaf_pem)};
  const std::string p12 = ValueOrDie(WritePkcs12(&key, chain, "s3cret"));
  const std::string info = Pkcs12Info(pki, p12, /*legacy=*/false);
  INFO(info);
  CHECK(absl::StrContains(
      info, absl::StrCat("MAC: sha256, Iteration ", kPkcs12Iterations)));
  CHECK(absl::StrContains(
      info, absl::StrCat("AES-256-CBC, Iteration ", kPkcs12Iterations)));
}

// Run in a child process (see the next test) whose OPENSSL_MODULES points at
// an empty directory, so that the legacy provider cannot load.
TEST_CASE("legacy PKCS#12 without the legacy provider", "[.no-legacy]") {
  const char* path = std::getenv("CERTPLANE_LEGACY_P12");
  REQUIRE(path != nullptr);
  CHECK_THAT(ReadPkcs12(ReadFileContents(path), "secret"),
             StatusIs(Code::kFailedPrecondition,
                      "OpenSSL's legacy provider could not be loaded"));
  CHECK_THAT(
      ReadPkcs12(ReadFileContents(std::string(path) + ".modern"), "secret"),
      IsOk());
}

// Run in a child process (see the next test), so that nothing else has
// loaded the legacy provider yet.
TEST_CASE("legacy provider is loaded only for legacy PKCS#12",
          "[.legacy-lazy]") {
  const char* path = std::getenv("CERTPLANE_LEGACY_P12");
  REQUIRE(path != nullptr);
  REQUIRE(OSSL_PROVIDER_available(nullptr, "legacy") == 0);
  CHECK_THAT(
      ReadPkcs12(ReadFileContents(std::string(path) + ".modern"), "secret"),
      IsOk());
  CHECK(OSSL_PROVIDER_available(nullptr, "legacy") == 0);
  CHECK_THAT(ReadPkcs12(ReadFileContents(path), "secret"), IsOk());
  CHECK(OSSL_PROVIDER_available(nullptr, "legacy") == 1);
}

TEST_CASE("ReadPkcs12 loads the legacy provider only for legacy files") {
  const CliPki& pki = Pki();
  char self[4096];
  const ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
  REQUIRE(length > 0);
  self[length] = '\0';
  REQUIRE(pki.Run("cp modern.p12 legacy.p12.modern"));
  const std::string command =
      absl::StrCat("CERTPLANE_LEGACY_P12='", pki.Path("legacy.p12"), "' '",
                   self, "' '[.legacy-lazy]' > legacy-lazy.log");
  const bool passed = pki.Run(command);
  INFO(pki.Read("legacy-lazy.log"));
  CHECK(passed);
  CHECK(absl::StrContains(pki.Read("legacy-lazy.log"),
                          "All tests passed (6 assertions in 1 test case)"));
}

TEST_CASE(
    "ReadPkcs12 is FAILED_PRECONDITION for legacy files when the "
    "legacy provider is missing") {
  const CliPki& pki = Pki();
  char self[4096];
  const ssize_t length = readlink("/proc/self/exe", self, sizeof(self) - 1);
  REQUIRE(length > 0);
  self[length] = '\0';
  REQUIRE(pki.Run("mkdir -p nomodules && cp modern.p12 legacy.p12.modern"));
  const std::string command = absl::StrCat(
      "OPENSSL_MODULES='", pki.Path("nomodules"), "' CERTPLANE_LEGACY_P12='",
      pki.Path("legacy.p12"), "' '", self, "' '[.no-legacy]' > no-legacy.log");
  const bool passed = pki.Run(command);
  INFO(pki.Read("no-legacy.log"));
  CHECK(passed);
  CHECK(absl::StrContains(pki.Read("no-legacy.log"),
                          "All tests passed (3 assertions in 1 test case)"));
}
#endif

TEST_CASE("WritePkcs12 rejects bad arguments") {
  const CliPki& pki = Pki();
  const PrivateKey key = LeafKey();
  const std::vector<Certificate> chain = {Cert(pki.intermediate_pem)};
  Pkcs12Options legacy;
  legacy.legacy = true;
  CHECK_THAT(WritePkcs12(&key, chain, "", legacy),
             StatusIs(Code::kInvalidArgument, "password must not be empty"));
  CHECK_THAT(WritePkcs12(nullptr, {}, "s3cret", legacy),
             StatusIs(Code::kInvalidArgument, "needs a private key"));
  CHECK_THAT(WritePkcs12(&key, chain, "s3cret", legacy),
             StatusIs(Code::kInvalidArgument,
                      "private key does not match certificate"));
  legacy.iterations = -5;
  CHECK_THAT(WritePkcs12(&key, {}, "s3cret", legacy),
             StatusIs(Code::kInvalidArgument, "iteration count -5"));
}

TEST_CASE("WritePkcs12 without a key writes a certificates-only file") {
  const CliPki& pki = Pki();
  const std::vector<Certificate> chain = {Cert(pki.leaf_pem),
                                          Cert(pki.root_pem)};
  Pkcs12Options options;
  options.legacy = true;
  const std::string p12 =
      ValueOrDie(WritePkcs12(nullptr, chain, "s3cret", options));
  ParsedBundle bundle = ValueOrDie(ReadPkcs12(p12, "s3cret"));
  CHECK(bundle.keys.empty());
  std::vector<std::string> got = Ders(bundle.certificates);
  std::vector<std::string> want = Ders(chain);
  CHECK(std::is_permutation(got.begin(), got.end(), want.begin(), want.end()));
}

TEST_CASE("WriteNginxBundle orders leaf first and drops the root") {
  const CliPki& pki = Pki();
  const PrivateKey key = LeafKey();
  const std::vector<Certificate> shuffled = {
      Cert(pki.root_pem), Cert(pki.intermediate_pem), Cert(pki.leaf_pem)};
  NginxBundle bundle = ValueOrDie(WriteNginxBundle(shuffled, &key));
  CHECK(bundle.fullchain_pem == pki.leaf_pem + pki.intermediate_pem);
  REQUIRE_FALSE(bundle.key_pem.empty());
  CHECK(absl::StartsWith(bundle.key_pem.view(), "-----BEGIN PRIVATE KEY-----"));
  pki.Write("nginx.key", bundle.key_pem.view());
  pki.Write("nginx.crt", bundle.fullchain_pem);
  // The CLI agrees that key and leaf belong together.
  CHECK(
      pki.Run("openssl pkey -in nginx.key -pubout -out a.pub && "
              "openssl x509 -in nginx.crt -pubkey -noout -out b.pub && "
              "cmp a.pub b.pub"));

  NginxBundle no_key = ValueOrDie(WriteNginxBundle(
      {Cert(pki.intermediate_pem), Cert(pki.leaf_pem)}, nullptr));
  CHECK(no_key.fullchain_pem == pki.leaf_pem + pki.intermediate_pem);
  CHECK(no_key.key_pem.empty());
}

TEST_CASE("WriteNginxBundle rejects a mismatched key and broken chains") {
  const CliPki& pki = Pki();
  const PrivateKey key = LeafKey();
  CHECK_THAT(WriteNginxBundle({Cert(pki.intermediate_pem)}, &key),
             StatusIs(Code::kInvalidArgument,
                      "private key does not match certificate"));
  CHECK_THAT(WriteNginxBundle({Cert(pki.root_pem)}, &key),
             StatusIs(Code::kInvalidArgument, "only self-signed"));
  CHECK_THAT(WriteNginxBundle({}, &key),
             StatusIs(Code::kInvalidArgument, "at least one certificate"));
  // Leaf and root without the intermediate: two unrelated certificates.
  const std::string other_leaf_cmd =
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
      "-keyout other.key -out other.pem -days 1 -subj '/CN=other' && "
      "openssl req -new -key other.key -subj '/CN=other child' -out oc.csr && "
      "openssl x509 -req -in oc.csr -CA other.pem -CAkey other.key "
      "-CAcreateserial -days 1 -out oc.pem";
  REQUIRE(pki.Run(other_leaf_cmd));
  CHECK_THAT(
      WriteNginxBundle({Cert(pki.leaf_pem), Cert(pki.Read("oc.pem"))}, nullptr),
      StatusIs(Code::kInvalidArgument, "do not form one chain"));
}

}  // namespace
}  // namespace certplane::crypto
