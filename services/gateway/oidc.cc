#include "services/gateway/oidc.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "libs/crypto/jwk.h"

namespace certplane::gateway {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

absl::StatusOr<std::string> Base64Url(absl::string_view part,
                                      absl::string_view what) {
  std::string out;
  if (!absl::WebSafeBase64Unescape(part, &out)) {
    return absl::InvalidArgumentError(
        absl::StrCat("JWT ", what, " is not base64url"));
  }
  return out;
}

absl::StatusOr<Struct> JsonObject(absl::string_view json,
                                  absl::string_view what) {
  Struct s;
  if (!google::protobuf::util::JsonStringToMessage(std::string(json), &s)
           .ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is not a JSON object"));
  }
  return s;
}

std::string StringMember(const Struct& s, const std::string& name) {
  auto it = s.fields().find(name);
  if (it == s.fields().end() || it->second.kind_case() != Value::kStringValue) {
    return "";
  }
  return it->second.string_value();
}

const Value* Member(const Struct& s, const std::string& name) {
  auto it = s.fields().find(name);
  return it == s.fields().end() ? nullptr : &it->second;
}

absl::StatusOr<std::string> HttpGet(const std::string& url) {
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "http://")) {
    return absl::InvalidArgumentError(
        "--oidc_jwks_url must be http://host[:port]/path (for an https "
        "issuer, give the JWKS as --oidc_jwks_file, e.g. synced by a "
        "sidecar)");
  }
  const size_t slash = rest.find('/');
  std::string hostport(rest.substr(0, slash));
  std::string target =
      slash == absl::string_view::npos ? "/" : std::string(rest.substr(slash));
  std::string host = hostport, port = "80";
  if (size_t colon = hostport.rfind(':'); colon != std::string::npos) {
    host = hostport.substr(0, colon);
    port = hostport.substr(colon + 1);
  }
  namespace beast = boost::beast;
  namespace http = beast::http;
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  beast::error_code ec;
  boost::asio::ip::tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(host, port, ec);
  if (ec)
    return absl::UnavailableError(
        absl::StrCat("JWKS ", url, ": ", ec.message()));
  stream.expires_after(std::chrono::seconds(5));
  stream.connect(endpoints, ec);
  if (ec)
    return absl::UnavailableError(
        absl::StrCat("JWKS ", url, ": ", ec.message()));
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, hostport);
  req.set(http::field::user_agent, "certplane-gateway");
  http::write(stream, req, ec);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1 << 20);
  if (!ec) http::read(stream, buffer, parser, ec);
  if (ec)
    return absl::UnavailableError(
        absl::StrCat("JWKS ", url, ": ", ec.message()));
  if (parser.get().result_int() != 200) {
    return absl::UnavailableError(
        absl::StrCat("JWKS ", url, ": HTTP ", parser.get().result_int()));
  }
  return parser.get().body();
}

}  // namespace

absl::StatusOr<std::unique_ptr<OidcVerifier>> OidcVerifier::Create(
    OidcOptions options, std::function<absl::Time()> clock) {
  if (options.issuer.empty() || options.audience.empty()) {
    return absl::InvalidArgumentError(
        "OIDC needs both an issuer and an audience");
  }
  if (options.jwks_file.empty() == options.jwks_url.empty()) {
    return absl::InvalidArgumentError(
        "OIDC needs exactly one of a JWKS file and a JWKS URL");
  }
  std::unique_ptr<OidcVerifier> v(
      new OidcVerifier(std::move(options), std::move(clock)));
  if (absl::Status s = v->Reload(); !s.ok()) return s;
  return v;
}

absl::StatusOr<std::vector<std::pair<std::string, OidcVerifier::Key>>>
OidcVerifier::FetchKeys() {
  std::string json;
  if (!options_.jwks_file.empty()) {
    std::ifstream in(options_.jwks_file);
    if (!in) {
      return absl::NotFoundError(
          absl::StrCat("cannot read the JWKS file ", options_.jwks_file));
    }
    std::stringstream s;
    s << in.rdbuf();
    json = s.str();
  } else {
    absl::StatusOr<std::string> body = HttpGet(options_.jwks_url);
    if (!body.ok()) return body.status();
    json = *std::move(body);
  }
  absl::StatusOr<Struct> jwks = JsonObject(json, "the JWKS");
  if (!jwks.ok()) return jwks.status();
  const Value* keys = Member(*jwks, "keys");
  if (keys == nullptr || keys->kind_case() != Value::kListValue) {
    return absl::InvalidArgumentError("the JWKS has no \"keys\" array");
  }
  std::vector<std::pair<std::string, Key>> out;
  for (const Value& k : keys->list_value().values()) {
    if (k.kind_case() != Value::kStructValue) continue;
    const Struct& jwk = k.struct_value();
    const std::string use = StringMember(jwk, "use");
    if (!use.empty() && use != "sig") continue;
    crypto::JwkParams params;
    params.kty = StringMember(jwk, "kty");
    params.crv = StringMember(jwk, "crv");
    bool decoded = true;
    for (auto [name, field] :
         std::vector<std::pair<const char*, std::string*>>{{"n", &params.n},
                                                           {"e", &params.e},
                                                           {"x", &params.x},
                                                           {"y", &params.y}}) {
      std::string v = StringMember(jwk, name);
      if (!v.empty() && !absl::WebSafeBase64Unescape(v, field)) decoded = false;
    }
    if (!decoded) continue;
    absl::StatusOr<crypto::PublicKey> key = crypto::PublicKeyFromJwk(params);
    if (!key.ok()) continue;  // Keys of other kinds are for someone else.
    out.push_back(
        {StringMember(jwk, "kid"), Key{StringMember(jwk, "alg"), *key}});
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(
        "the JWKS holds no RSA or P-256 signing key");
  }
  return out;
}

absl::Status OidcVerifier::Reload() {
  absl::StatusOr<std::vector<std::pair<std::string, Key>>> keys = FetchKeys();
  if (!keys.ok()) return keys.status();
  absl::MutexLock lock(&mu_);
  keys_ = *std::move(keys);
  loaded_ = clock_();
  return absl::OkStatus();
}

absl::StatusOr<OidcIdentity> OidcVerifier::Verify(absl::string_view jwt) {
  std::vector<absl::string_view> parts = absl::StrSplit(jwt, '.');
  if (parts.size() != 3)
    return absl::InvalidArgumentError("not a JWS compact JWT");
  absl::StatusOr<std::string> header_json = Base64Url(parts[0], "header");
  if (!header_json.ok()) return header_json.status();
  absl::StatusOr<Struct> header = JsonObject(*header_json, "JWT header");
  if (!header.ok()) return header.status();
  const std::string alg = StringMember(*header, "alg");
  if (alg != "RS256" && alg != "ES256") {
    return absl::InvalidArgumentError(absl::StrCat(
        "JWT alg \"", alg.substr(0, 20), "\" is not RS256 or ES256"));
  }
  const std::string kid = StringMember(*header, "kid");
  absl::StatusOr<std::string> signature = Base64Url(parts[2], "signature");
  if (!signature.ok()) return signature.status();
  std::string signed_der = *signature;
  if (alg == "ES256") {
    absl::StatusOr<std::string> der = crypto::EcdsaRawToDer(*signature, 32);
    if (!der.ok()) return der.status();
    signed_der = *std::move(der);
  }
  const std::string signing_input = absl::StrCat(parts[0], ".", parts[1]);
  const absl::Time now = clock_();

  auto find = [&]() -> std::optional<crypto::PublicKey> {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, key] : keys_) {
      if (!kid.empty() && id != kid) continue;
      if (!key.alg.empty() && key.alg != alg) continue;
      const bool rsa = key.key.info().algorithm == crypto::KeyAlgorithm::kRsa;
      if (rsa != (alg == "RS256")) continue;
      return key.key;
    }
    return std::nullopt;
  };
  {
    bool stale = false;
    {
      absl::MutexLock lock(&mu_);
      stale = now - loaded_ > options_.jwks_refresh;
    }
    if (stale) (void)Reload();  // Keep the old keys if the reload fails.
  }
  std::optional<crypto::PublicKey> key = find();
  if (!key.has_value()) {
    bool may_reload = false;
    {
      absl::MutexLock lock(&mu_);
      if (now - last_kid_reload_ > absl::Seconds(30)) {
        last_kid_reload_ = now;
        may_reload = true;
      }
    }
    if (may_reload && Reload().ok()) key = find();
  }
  if (!key.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "no JWKS key for kid \"", kid.substr(0, 64), "\" and ", alg));
  }
  if (!crypto::VerifySignature(*key, signing_input, signed_der, "sha256")
           .ok()) {
    return absl::InvalidArgumentError("JWT signature does not verify");
  }

  absl::StatusOr<std::string> payload_json = Base64Url(parts[1], "payload");
  if (!payload_json.ok()) return payload_json.status();
  absl::StatusOr<Struct> claims = JsonObject(*payload_json, "JWT payload");
  if (!claims.ok()) return claims.status();
  if (StringMember(*claims, "iss") != options_.issuer) {
    return absl::InvalidArgumentError("JWT issuer is not the configured one");
  }
  const Value* aud = Member(*claims, "aud");
  bool audience_ok = false;
  if (aud != nullptr && aud->kind_case() == Value::kStringValue) {
    audience_ok = aud->string_value() == options_.audience;
  } else if (aud != nullptr && aud->kind_case() == Value::kListValue) {
    for (const Value& a : aud->list_value().values()) {
      if (a.kind_case() == Value::kStringValue &&
          a.string_value() == options_.audience) {
        audience_ok = true;
      }
    }
  }
  if (!audience_ok)
    return absl::InvalidArgumentError("JWT audience does not match");
  auto time_claim = [&](const char* name) -> std::optional<absl::Time> {
    const Value* v = Member(*claims, name);
    if (v == nullptr || v->kind_case() != Value::kNumberValue)
      return std::nullopt;
    return absl::FromUnixSeconds(static_cast<int64_t>(v->number_value()));
  };
  std::optional<absl::Time> exp = time_claim("exp");
  if (!exp.has_value()) return absl::InvalidArgumentError("JWT has no exp");
  if (now > *exp + options_.leeway) {
    return absl::InvalidArgumentError("JWT expired");
  }
  if (auto nbf = time_claim("nbf"); nbf && now + options_.leeway < *nbf) {
    return absl::InvalidArgumentError("JWT is not valid yet (nbf)");
  }
  if (auto iat = time_claim("iat"); iat && now + options_.leeway < *iat) {
    return absl::InvalidArgumentError("JWT was issued in the future (iat)");
  }
  std::string user = StringMember(*claims, options_.user_claim);
  if (user.empty()) user = StringMember(*claims, "sub");
  bool printable = !user.empty() && user.size() <= 250;
  for (char c : user) printable = printable && c > 0x20 && c < 0x7f;
  if (!printable) {
    return absl::InvalidArgumentError(
        "JWT names no usable user (claim or sub)");
  }
  OidcIdentity identity;
  identity.user = absl::StrCat("user:", user);
  const Value* groups = Member(*claims, options_.groups_claim);
  if (groups != nullptr && groups->kind_case() == Value::kListValue) {
    for (const Value& g : groups->list_value().values()) {
      if (g.kind_case() != Value::kStringValue) continue;
      auto it = options_.group_roles.find(g.string_value());
      if (it == options_.group_roles.end()) continue;
      identity.roles.insert(identity.roles.end(), it->second.begin(),
                            it->second.end());
    }
  }
  return identity;
}

}  // namespace certplane::gateway
