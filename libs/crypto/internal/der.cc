#include "libs/crypto/internal/der.h"

#include <openssl/objects.h>

#include <climits>
#include <cstddef>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "libs/crypto/internal/ssl_util.h"

namespace certplane::crypto::internal {
namespace {

// DER of id-ecPublicKey (1.2.840.10045.2.1).
constexpr absl::string_view kOidEcPublicKey = "\x2a\x86\x48\xce\x3d\x02\x01";

// Password-based encryption object identifiers (DER contents).
constexpr absl::string_view kOidPbes2 =
    "\x2a\x86\x48\x86\xf7\x0d\x01\x05\x0d";  // 1.2.840.113549.1.5.13
constexpr absl::string_view kOidPbkdf2 =
    "\x2a\x86\x48\x86\xf7\x0d\x01\x05\x0c";  // 1.2.840.113549.1.5.12
constexpr absl::string_view kOidScrypt =
    "\x2b\x06\x01\x04\x01\xda\x47\x04\x0b";  // 1.3.6.1.4.1.11591.4.11
// pkcs-12PbeIds 1.2.840.113549.1.12.1.n (n = 1..6).
constexpr absl::string_view kOidPkcs12PbePrefix =
    "\x2a\x86\x48\x86\xf7\x0d\x01\x0c\x01";
constexpr absl::string_view kPbes2Ciphers[] = {
    "\x60\x86\x48\x01\x65\x03\x04\x01\x02",  // aes-128-cbc
    "\x60\x86\x48\x01\x65\x03\x04\x01\x16",  // aes-192-cbc
    "\x60\x86\x48\x01\x65\x03\x04\x01\x2a",  // aes-256-cbc
    "\x2a\x86\x48\x86\xf7\x0d\x03\x07",      // des-ede3-cbc
};

constexpr absl::string_view kOidPkcs7Data =
    "\x2a\x86\x48\x86\xf7\x0d\x01\x07\x01";  // 1.2.840.113549.1.7.1
constexpr absl::string_view kOidPkcs7Encrypted =
    "\x2a\x86\x48\x86\xf7\x0d\x01\x07\x06";  // 1.2.840.113549.1.7.6
constexpr absl::string_view kOidShroudedKeyBag =
    "\x2a\x86\x48\x86\xf7\x0d\x01\x0c\x0a\x01\x02";
constexpr absl::string_view kOidSafeContentsBag =
    "\x2a\x86\x48\x86\xf7\x0d\x01\x0c\x0a\x01\x06";
constexpr int kMaxSafeContentsNesting = 4;

bool StrictDerAtDepth(absl::string_view der, int depth) {
  if (depth > kMaxDerDepth) return false;
  while (!der.empty()) {
    Tlv tlv;
    if (!ReadTlv(&der, &tlv)) return false;
    if ((tlv.tag & 0x20) == 0) continue;  // Primitive.
    // Universal class: only SEQUENCE and SET may be constructed in DER.
    if ((tlv.tag & 0xc0) == 0 && tlv.tag != kDerSequence &&
        tlv.tag != kDerSet) {
      return false;
    }
    if (!StrictDerAtDepth(tlv.contents, depth + 1)) return false;
  }
  return true;
}

absl::Status Malformed(absl::string_view what, absl::string_view where) {
  return absl::InvalidArgumentError(
      absl::StrCat("malformed DER in ", what, ": ", where,
                   " is truncated or not strict DER (indefinite or "
                   "non-minimal length)"));
}

absl::Status MalformedPbe(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(
      "malformed DER in the encryption parameters of ", what,
      " (truncated element, or indefinite or non-minimal length)"));
}

absl::Status TooManyIterations(absl::string_view what, absl::string_view kdf,
                               absl::string_view count) {
  return absl::InvalidArgumentError(
      absl::StrCat(what, " asks for ", count, " ", kdf,
                   " iterations; refusing more than ", kMaxKdfIterations));
}

// Checks an iteration count INTEGER's contents: 1..kMaxKdfIterations.
absl::Status CheckIterations(const Tlv& count, absl::string_view what,
                             absl::string_view kdf) {
  long value = 0;
  if (!SmallInteger(count.contents, &value)) {
    return TooManyIterations(what, kdf, "an out-of-range number of");
  }
  if (value < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, " has a ", kdf, " iteration count of ", value, "; must be >= 1"));
  }
  if (value > kMaxKdfIterations) {
    return TooManyIterations(what, kdf, absl::StrCat(value));
  }
  return absl::OkStatus();
}

absl::Status CheckPbkdf2(absl::string_view params, absl::string_view what) {
  Tlv sequence, salt, count;
  absl::string_view in = params;
  if (!ReadTlvWithTag(&in, kDerSequence, &sequence) || !in.empty()) {
    return MalformedPbe(what);
  }
  absl::string_view p = sequence.contents;
  if (!ReadTlvWithTag(&p, kDerOctetString, &salt)) {
    return absl::UnimplementedError(absl::StrCat(
        what, " uses a PBKDF2 salt that is not an OCTET STRING; unsupported"));
  }
  if (!ReadTlvWithTag(&p, kDerInteger, &count)) return MalformedPbe(what);
  return CheckIterations(count, what, "PBKDF2");
}

absl::Status CheckScrypt(absl::string_view params, absl::string_view what) {
  Tlv sequence, salt, n_tlv, r_tlv, p_tlv;
  absl::string_view in = params;
  if (!ReadTlvWithTag(&in, kDerSequence, &sequence) || !in.empty()) {
    return MalformedPbe(what);
  }
  absl::string_view p = sequence.contents;
  if (!ReadTlvWithTag(&p, kDerOctetString, &salt) ||
      !ReadTlvWithTag(&p, kDerInteger, &n_tlv) ||
      !ReadTlvWithTag(&p, kDerInteger, &r_tlv) ||
      !ReadTlvWithTag(&p, kDerInteger, &p_tlv)) {
    return MalformedPbe(what);
  }
  long n = 0, r = 0, parallel = 0;
  const bool small = SmallInteger(n_tlv.contents, &n) &&
                     SmallInteger(r_tlv.contents, &r) &&
                     SmallInteger(p_tlv.contents, &parallel);
  if (!small || n < 2 || r < 1 || parallel < 1 ||
      static_cast<uint64_t>(n) > kMaxScryptNTimesR ||
      static_cast<uint64_t>(r) > kMaxScryptNTimesR ||
      static_cast<uint64_t>(n) * static_cast<uint64_t>(r) > kMaxScryptNTimesR ||
      static_cast<uint64_t>(parallel) > kMaxScryptP) {
    return absl::InvalidArgumentError(absl::StrCat(
        what,
        " asks for scrypt parameters outside what certplane runs (N*r <= ",
        kMaxScryptNTimesR, ", p <= ", kMaxScryptP, "); refusing"));
  }
  return absl::OkStatus();
}

absl::Status CheckPbes2(absl::string_view params, absl::string_view what) {
  Tlv sequence, kdf, scheme, kdf_oid, cipher_oid;
  absl::string_view in = params;
  if (!ReadTlvWithTag(&in, kDerSequence, &sequence) || !in.empty()) {
    return MalformedPbe(what);
  }
  absl::string_view p = sequence.contents;
  if (!ReadTlvWithTag(&p, kDerSequence, &kdf) ||
      !ReadTlvWithTag(&p, kDerSequence, &scheme) || !p.empty()) {
    return MalformedPbe(what);
  }
  absl::string_view k = kdf.contents;
  if (!ReadTlvWithTag(&k, kDerOid, &kdf_oid)) return MalformedPbe(what);
  if (kdf_oid.contents == kOidPbkdf2) {
    if (auto status = CheckPbkdf2(k, what); !status.ok()) return status;
  } else if (kdf_oid.contents == kOidScrypt) {
    if (auto status = CheckScrypt(k, what); !status.ok()) return status;
  } else {
    return absl::UnimplementedError(absl::StrCat(
        what, " uses key derivation function ", OidName(kdf_oid.contents),
        ", which certplane does not support (PBKDF2 or scrypt)"));
  }
  absl::string_view c = scheme.contents;
  if (!ReadTlvWithTag(&c, kDerOid, &cipher_oid)) return MalformedPbe(what);
  for (absl::string_view known : kPbes2Ciphers) {
    if (cipher_oid.contents == known) return absl::OkStatus();
  }
  return absl::UnimplementedError(absl::StrCat(
      what, " is encrypted with ", OidName(cipher_oid.contents),
      ", which certplane does not support (AES-CBC or DES-EDE3-CBC)"));
}

}  // namespace

void AppendDerTlv(std::string* out, uint8_t tag, absl::string_view contents) {
  out->push_back(static_cast<char>(tag));
  if (contents.size() < 0x80) {
    out->push_back(static_cast<char>(contents.size()));
  } else {
    char bytes[sizeof(size_t)];
    int count = 0;
    for (size_t rest = contents.size(); rest != 0; rest >>= 8) {
      bytes[count++] = static_cast<char>(rest & 0xff);
    }
    out->push_back(static_cast<char>(0x80 | count));
    while (count > 0) out->push_back(bytes[--count]);
  }
  out->append(contents.data(), contents.size());
}

bool ReadTlv(absl::string_view* in, Tlv* out) {
  if (in->size() < 2) return false;
  const auto* p = reinterpret_cast<const uint8_t*>(in->data());
  const uint8_t tag = p[0];
  if ((tag & 0x1f) == 0x1f) return false;  // High tag numbers: never used.
  size_t header = 2;
  size_t length = p[1];
  if (length & 0x80) {
    const size_t count = length & 0x7f;
    // count == 0 is the BER indefinite form; more than 4 bytes is never
    // needed for inputs certplane accepts.
    if (count == 0 || count > 4 || in->size() - 2 < count) return false;
    if (p[2] == 0) return false;  // Leading zero: not minimal.
    length = 0;
    for (size_t i = 0; i < count; ++i) length = (length << 8) | p[2 + i];
    if (length < 0x80) return false;  // Should have used the short form.
    header += count;
  }
  if (length > in->size() - header) return false;
  out->tag = tag;
  out->contents = in->substr(header, length);
  in->remove_prefix(header + length);
  return true;
}

bool ReadTlvWithTag(absl::string_view* in, uint8_t tag, Tlv* out) {
  absl::string_view copy = *in;
  Tlv tlv;
  if (!ReadTlv(&copy, &tlv) || tlv.tag != tag) return false;
  *out = tlv;
  *in = copy;
  return true;
}

bool IsStrictDer(absl::string_view der) { return StrictDerAtDepth(der, 0); }

bool SmallInteger(absl::string_view contents, long* value) {
  if (contents.empty() || contents.size() > sizeof(long) ||
      (static_cast<uint8_t>(contents[0]) & 0x80)) {
    return false;
  }
  if (contents.size() > 1 && contents[0] == 0 &&
      (static_cast<uint8_t>(contents[1]) & 0x80) == 0) {
    return false;  // Not minimal.
  }
  unsigned long v = 0;
  for (char c : contents) v = (v << 8) | static_cast<uint8_t>(c);
  if (v > static_cast<unsigned long>(LONG_MAX)) return false;
  *value = static_cast<long>(v);
  return true;
}

std::string OidName(absl::string_view oid_contents) {
  // Not every library build knows this one by name.
  if (oid_contents == kOidScrypt) return "scrypt";
  // Re-wrap as a DER OBJECT IDENTIFIER for d2i_ASN1_OBJECT.
  if (oid_contents.size() > 127) return "unknown algorithm";
  std::string der;
  der.push_back(static_cast<char>(kDerOid));
  der.push_back(static_cast<char>(oid_contents.size()));
  der.append(oid_contents.data(), oid_contents.size());
  const auto* p = reinterpret_cast<const uint8_t*>(der.data());
  SslPtr<ASN1_OBJECT> obj(
      d2i_ASN1_OBJECT(nullptr, &p, static_cast<long>(der.size())));
  if (obj == nullptr) {
    ClearSslErrors();
    return "unknown algorithm";
  }
  int nid = OBJ_obj2nid(obj.get());
  if (nid != NID_undef) {
    // "PBE-MD5-DES (pbeWithMD5AndDES-CBC)", or just "X25519".
    const char* short_name = OBJ_nid2sn(nid);
    const char* long_name = OBJ_nid2ln(nid);
    if (short_name == nullptr) short_name = "";
    if (long_name == nullptr || absl::string_view(long_name) == short_name) {
      return short_name;
    }
    return absl::StrCat(short_name, " (", long_name, ")");
  }
  char text[128];
  if (OBJ_obj2txt(text, sizeof(text), obj.get(), 1) <= 0) {
    ClearSslErrors();
    return "unknown algorithm";
  }
  return absl::StrCat("OID ", text);
}

absl::Status CheckPbeAlgorithm(absl::string_view algorithm_der,
                               absl::string_view what) {
  if (!IsStrictDer(algorithm_der)) return MalformedPbe(what);
  absl::string_view in = algorithm_der;
  Tlv algorithm, oid;
  if (!ReadTlvWithTag(&in, kDerSequence, &algorithm) || !in.empty()) {
    return MalformedPbe(what);
  }
  absl::string_view a = algorithm.contents;
  if (!ReadTlvWithTag(&a, kDerOid, &oid)) return MalformedPbe(what);
  if (oid.contents == kOidPbes2) return CheckPbes2(a, what);
  if (oid.contents.size() == kOidPkcs12PbePrefix.size() + 1 &&
      absl::StartsWith(oid.contents, kOidPkcs12PbePrefix) &&
      oid.contents.back() >= 1 && oid.contents.back() <= 6) {
    // PKCS12PBEParams ::= SEQUENCE { salt OCTET STRING, iterations INTEGER }
    Tlv sequence, salt, count;
    if (!ReadTlvWithTag(&a, kDerSequence, &sequence) || !a.empty()) {
      return MalformedPbe(what);
    }
    absl::string_view p = sequence.contents;
    if (!ReadTlvWithTag(&p, kDerOctetString, &salt) ||
        !ReadTlvWithTag(&p, kDerInteger, &count) || !p.empty()) {
      return MalformedPbe(what);
    }
    return CheckIterations(count, what, "PKCS#12 KDF");
  }
  return absl::UnimplementedError(absl::StrCat(
      what, " is encrypted with ", OidName(oid.contents),
      ", which certplane does not support; re-encrypt it with PBES2 "
      "(PBKDF2, AES-256-CBC)"));
}

namespace {

absl::Status MalformedPkcs12(absl::string_view where) {
  return absl::InvalidArgumentError(absl::StrCat(
      "malformed DER in PKCS#12 ", where,
      " (truncated element, or indefinite or non-minimal length)"));
}

// The complete encoding of the element at the front of `in`, consumed.
bool ReadElement(absl::string_view* in, uint8_t tag, absl::string_view* out) {
  absl::string_view before = *in;
  Tlv tlv;
  if (!ReadTlvWithTag(in, tag, &tlv)) return false;
  *out = before.substr(0, before.size() - in->size());
  return true;
}

// The OCTET STRING inside the [0] EXPLICIT content of a data ContentInfo.
bool DataContents(absl::string_view content_body, absl::string_view* out) {
  Tlv explicit_tag, octets;
  if (!ReadTlvWithTag(&content_body, kDerContext0, &explicit_tag)) {
    return false;
  }
  absl::string_view inner = explicit_tag.contents;
  if (!ReadTlvWithTag(&inner, kDerOctetString, &octets) || !inner.empty()) {
    return false;
  }
  *out = octets.contents;
  return true;
}

absl::Status CheckSafeContentsDer(absl::string_view der, int depth) {
  if (depth > kMaxSafeContentsNesting) {
    return absl::InvalidArgumentError("PKCS#12 nests SafeContents too deeply");
  }
  if (!IsStrictDer(der)) return MalformedPkcs12("SafeContents");
  absl::string_view in = der;
  Tlv safe_contents;
  if (!ReadTlvWithTag(&in, kDerSequence, &safe_contents) || !in.empty()) {
    return MalformedPkcs12("SafeContents");
  }
  absl::string_view bags = safe_contents.contents;
  while (!bags.empty()) {
    Tlv bag, bag_id, value;
    if (!ReadTlvWithTag(&bags, kDerSequence, &bag)) {
      return MalformedPkcs12("SafeBag");
    }
    absl::string_view b = bag.contents;
    if (!ReadTlvWithTag(&b, kDerOid, &bag_id) ||
        !ReadTlvWithTag(&b, kDerContext0, &value)) {
      return MalformedPkcs12("SafeBag");
    }
    if (bag_id.contents == kOidShroudedKeyBag) {
      absl::string_view v = value.contents;
      Tlv key_info;
      absl::string_view algorithm;
      if (!ReadTlvWithTag(&v, kDerSequence, &key_info)) {
        return MalformedPkcs12("shrouded key bag");
      }
      absl::string_view k = key_info.contents;
      if (!ReadElement(&k, kDerSequence, &algorithm)) {
        return MalformedPkcs12("shrouded key bag");
      }
      if (auto status =
              CheckPbeAlgorithm(algorithm, "PKCS#12 shrouded key bag");
          !status.ok()) {
        return status;
      }
    } else if (bag_id.contents == kOidSafeContentsBag) {
      if (auto status = CheckSafeContentsDer(value.contents, depth + 1);
          !status.ok()) {
        return status;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckPkcs12Der(absl::string_view der, long max_mac_iterations) {
  if (!IsStrictDer(der)) {
    return absl::InvalidArgumentError(
        "PKCS#12 is not strict DER (BER with indefinite or non-minimal "
        "lengths, as some tools write); its work cannot be bounded before "
        "decoding, so it is refused");
  }
  absl::string_view in = der;
  Tlv pfx, version, auth_safe, content_type;
  if (!ReadTlvWithTag(&in, kDerSequence, &pfx)) return MalformedPkcs12("PFX");
  absl::string_view p = pfx.contents;
  if (!ReadTlvWithTag(&p, kDerInteger, &version) ||
      !ReadTlvWithTag(&p, kDerSequence, &auth_safe)) {
    return MalformedPkcs12("PFX");
  }
  Tlv mac_data;
  if (ReadTlvWithTag(&p, kDerSequence, &mac_data)) {
    absl::string_view m = mac_data.contents;
    Tlv digest_info, salt, iterations;
    if (!ReadTlvWithTag(&m, kDerSequence, &digest_info) ||
        !ReadTlvWithTag(&m, kDerOctetString, &salt)) {
      return MalformedPkcs12("MacData");
    }
    if (ReadTlvWithTag(&m, kDerInteger, &iterations)) {
      long count = 0;
      if (!SmallInteger(iterations.contents, &count) || count < 1 ||
          count > max_mac_iterations) {
        return absl::InvalidArgumentError(absl::StrCat(
            "PKCS#12 MAC iteration count is outside 1..", max_mac_iterations));
      }
    }
  }
  absl::string_view a = auth_safe.contents;
  absl::string_view authenticated_safe;
  if (!ReadTlvWithTag(&a, kDerOid, &content_type) ||
      content_type.contents != kOidPkcs7Data ||
      !DataContents(a, &authenticated_safe)) {
    return MalformedPkcs12("authSafe (not a data ContentInfo)");
  }
  absl::string_view s = authenticated_safe;
  Tlv safes;
  if (!ReadTlvWithTag(&s, kDerSequence, &safes) || !s.empty()) {
    return MalformedPkcs12("AuthenticatedSafe");
  }
  absl::string_view infos = safes.contents;
  while (!infos.empty()) {
    Tlv info, type;
    if (!ReadTlvWithTag(&infos, kDerSequence, &info)) {
      return MalformedPkcs12("ContentInfo");
    }
    absl::string_view i = info.contents;
    if (!ReadTlvWithTag(&i, kDerOid, &type)) {
      return MalformedPkcs12("ContentInfo");
    }
    if (type.contents == kOidPkcs7Data) {
      absl::string_view safe_contents;
      if (!DataContents(i, &safe_contents)) {
        return MalformedPkcs12("data ContentInfo");
      }
      if (auto status = CheckSafeContentsDer(safe_contents, 0); !status.ok()) {
        return status;
      }
    } else if (type.contents == kOidPkcs7Encrypted) {
      // [0] { EncryptedData { version, EncryptedContentInfo {
      //   contentType, contentEncryptionAlgorithm, [0] IMPLICIT ... } } }
      Tlv explicit_tag, encrypted_data, data_version, content_info, inner_type;
      absl::string_view algorithm;
      if (!ReadTlvWithTag(&i, kDerContext0, &explicit_tag)) {
        return MalformedPkcs12("encryptedData ContentInfo");
      }
      absl::string_view e = explicit_tag.contents;
      if (!ReadTlvWithTag(&e, kDerSequence, &encrypted_data)) {
        return MalformedPkcs12("EncryptedData");
      }
      absl::string_view d = encrypted_data.contents;
      if (!ReadTlvWithTag(&d, kDerInteger, &data_version) ||
          !ReadTlvWithTag(&d, kDerSequence, &content_info)) {
        return MalformedPkcs12("EncryptedData");
      }
      absl::string_view c = content_info.contents;
      if (!ReadTlvWithTag(&c, kDerOid, &inner_type) ||
          !ReadElement(&c, kDerSequence, &algorithm)) {
        return MalformedPkcs12("EncryptedContentInfo");
      }
      if (auto status =
              CheckPbeAlgorithm(algorithm, "PKCS#12 encrypted contents");
          !status.ok()) {
        return status;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckSpkiAlgorithm(absl::string_view spki_der,
                                absl::string_view what) {
  // Bytes after the SubjectPublicKeyInfo are for the caller to refuse.
  absl::string_view in = spki_der;
  Tlv spki, algorithm, oid;
  if (!ReadTlvWithTag(&in, kDerSequence, &spki) ||
      !IsStrictDer(spki_der.substr(0, spki_der.size() - in.size()))) {
    return Malformed(what, "SubjectPublicKeyInfo");
  }
  absl::string_view body = spki.contents;
  if (!ReadTlvWithTag(&body, kDerSequence, &algorithm)) {
    return Malformed(what, "SubjectPublicKeyInfo algorithm");
  }
  absl::string_view alg = algorithm.contents;
  if (!ReadTlvWithTag(&alg, kDerOid, &oid)) {
    return Malformed(what, "SubjectPublicKeyInfo algorithm");
  }
  if (oid.contents != kOidEcPublicKey) return absl::OkStatus();
  Tlv curve;
  if (!ReadTlv(&alg, &curve) || !alg.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what,
                     " is an EC key that does not name its curve; use a named "
                     "curve"));
  }
  if (curve.tag == kDerSequence) {
    return absl::InvalidArgumentError(
        absl::StrCat(what,
                     " has explicit EC curve parameters; explicit "
                     "EC curve parameters are not supported; use a "
                     "named curve"));
  }
  if (curve.tag != kDerOid) {
    return absl::InvalidArgumentError(
        absl::StrCat(what,
                     " is an EC key that does not name its curve; use a named "
                     "curve"));
  }
  return absl::OkStatus();
}

absl::Status WithMalformedContext(const absl::Status& status,
                                  absl::string_view context) {
  if (!absl::StartsWith(status.message(), "malformed DER")) return status;
  return absl::Status(status.code(),
                      absl::StrCat(context, ": ", status.message()));
}

absl::Status CheckCertificateDerKey(absl::string_view der) {
  constexpr absl::string_view kWhat = "certificate";
  absl::string_view in = der;
  Tlv certificate, tbs;
  if (!ReadTlvWithTag(&in, kDerSequence, &certificate)) {
    return Malformed(kWhat, "Certificate");
  }
  absl::string_view body = certificate.contents;
  if (!ReadTlvWithTag(&body, kDerSequence, &tbs)) {
    return Malformed(kWhat, "TBSCertificate");
  }
  absl::string_view t = tbs.contents;
  Tlv skip;
  ReadTlvWithTag(&t, kDerContext0, &skip);  // Optional version.
  // serialNumber, signature, issuer, validity, subject.
  for (int i = 0; i < 5; ++i) {
    if (!ReadTlv(&t, &skip)) return Malformed(kWhat, "TBSCertificate");
  }
  absl::string_view rest = t;
  Tlv spki;
  if (!ReadTlvWithTag(&t, kDerSequence, &spki)) {
    return Malformed(kWhat, "subjectPublicKeyInfo");
  }
  return CheckSpkiAlgorithm(rest.substr(0, rest.size() - t.size()),
                            "certificate key");
}

absl::Status CheckCsrDerKey(absl::string_view der) {
  constexpr absl::string_view kWhat = "CSR";
  absl::string_view in = der;
  Tlv request, info, skip;
  if (!ReadTlvWithTag(&in, kDerSequence, &request)) {
    return Malformed(kWhat, "CertificationRequest");
  }
  absl::string_view body = request.contents;
  if (!ReadTlvWithTag(&body, kDerSequence, &info)) {
    return Malformed(kWhat, "CertificationRequestInfo");
  }
  absl::string_view t = info.contents;
  // version, subject.
  for (int i = 0; i < 2; ++i) {
    if (!ReadTlv(&t, &skip))
      return Malformed(kWhat, "CertificationRequestInfo");
  }
  absl::string_view rest = t;
  Tlv spki;
  if (!ReadTlvWithTag(&t, kDerSequence, &spki)) {
    return Malformed(kWhat, "subjectPKInfo");
  }
  return CheckSpkiAlgorithm(rest.substr(0, rest.size() - t.size()), "CSR key");
}

}  // namespace certplane::crypto::internal
