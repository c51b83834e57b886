#include "services/vault/pkcs11_kek_source.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "libs/crypto/aead.h"

// Last: in its default (standard-names) mode this header defines short
// helper macros while it is being read and removes them at its end.
#include <p11-kit/pkcs11.h>

// PKCS#11 3.0 codes that the p11-kit 2.40 header does not define.
#ifndef CKR_AEAD_DECRYPT_FAILED
#define CKR_AEAD_DECRYPT_FAILED (0x35UL)
#endif

namespace certplane::vault {
namespace {

constexpr absl::string_view kLabelPrefix = "certplane-kek-v";
constexpr size_t kIvSize = 12;
constexpr size_t kTagSize = 16;
constexpr uint8_t kFormatVersion = 0x01;

std::string CkrName(CK_RV rv) {
  switch (rv) {
#define CERTPLANE_CKR(name) \
  case name:                \
    return #name;
    CERTPLANE_CKR(CKR_OK)
    CERTPLANE_CKR(CKR_CANCEL)
    CERTPLANE_CKR(CKR_HOST_MEMORY)
    CERTPLANE_CKR(CKR_SLOT_ID_INVALID)
    CERTPLANE_CKR(CKR_GENERAL_ERROR)
    CERTPLANE_CKR(CKR_FUNCTION_FAILED)
    CERTPLANE_CKR(CKR_ARGUMENTS_BAD)
    CERTPLANE_CKR(CKR_NEED_TO_CREATE_THREADS)
    CERTPLANE_CKR(CKR_CANT_LOCK)
    CERTPLANE_CKR(CKR_ATTRIBUTE_READ_ONLY)
    CERTPLANE_CKR(CKR_ATTRIBUTE_SENSITIVE)
    CERTPLANE_CKR(CKR_ATTRIBUTE_TYPE_INVALID)
    CERTPLANE_CKR(CKR_ATTRIBUTE_VALUE_INVALID)
    CERTPLANE_CKR(CKR_DATA_INVALID)
    CERTPLANE_CKR(CKR_DATA_LEN_RANGE)
    CERTPLANE_CKR(CKR_AEAD_DECRYPT_FAILED)
    CERTPLANE_CKR(CKR_DEVICE_ERROR)
    CERTPLANE_CKR(CKR_DEVICE_MEMORY)
    CERTPLANE_CKR(CKR_DEVICE_REMOVED)
    CERTPLANE_CKR(CKR_ENCRYPTED_DATA_INVALID)
    CERTPLANE_CKR(CKR_ENCRYPTED_DATA_LEN_RANGE)
    CERTPLANE_CKR(CKR_FUNCTION_CANCELED)
    CERTPLANE_CKR(CKR_FUNCTION_NOT_SUPPORTED)
    CERTPLANE_CKR(CKR_KEY_HANDLE_INVALID)
    CERTPLANE_CKR(CKR_KEY_SIZE_RANGE)
    CERTPLANE_CKR(CKR_KEY_TYPE_INCONSISTENT)
    CERTPLANE_CKR(CKR_KEY_FUNCTION_NOT_PERMITTED)
    CERTPLANE_CKR(CKR_MECHANISM_INVALID)
    CERTPLANE_CKR(CKR_MECHANISM_PARAM_INVALID)
    CERTPLANE_CKR(CKR_OBJECT_HANDLE_INVALID)
    CERTPLANE_CKR(CKR_OPERATION_ACTIVE)
    CERTPLANE_CKR(CKR_OPERATION_NOT_INITIALIZED)
    CERTPLANE_CKR(CKR_PIN_INCORRECT)
    CERTPLANE_CKR(CKR_PIN_INVALID)
    CERTPLANE_CKR(CKR_PIN_LEN_RANGE)
    CERTPLANE_CKR(CKR_PIN_EXPIRED)
    CERTPLANE_CKR(CKR_PIN_LOCKED)
    CERTPLANE_CKR(CKR_SESSION_CLOSED)
    CERTPLANE_CKR(CKR_SESSION_COUNT)
    CERTPLANE_CKR(CKR_SESSION_HANDLE_INVALID)
    CERTPLANE_CKR(CKR_SESSION_READ_ONLY)
    CERTPLANE_CKR(CKR_SESSION_EXISTS)
    CERTPLANE_CKR(CKR_TEMPLATE_INCOMPLETE)
    CERTPLANE_CKR(CKR_TEMPLATE_INCONSISTENT)
    CERTPLANE_CKR(CKR_TOKEN_NOT_PRESENT)
    CERTPLANE_CKR(CKR_TOKEN_NOT_RECOGNIZED)
    CERTPLANE_CKR(CKR_TOKEN_WRITE_PROTECTED)
    CERTPLANE_CKR(CKR_USER_ALREADY_LOGGED_IN)
    CERTPLANE_CKR(CKR_USER_NOT_LOGGED_IN)
    CERTPLANE_CKR(CKR_USER_PIN_NOT_INITIALIZED)
    CERTPLANE_CKR(CKR_USER_TYPE_INVALID)
    CERTPLANE_CKR(CKR_RANDOM_NO_RNG)
    CERTPLANE_CKR(CKR_BUFFER_TOO_SMALL)
    CERTPLANE_CKR(CKR_CRYPTOKI_NOT_INITIALIZED)
    CERTPLANE_CKR(CKR_CRYPTOKI_ALREADY_INITIALIZED)
#undef CERTPLANE_CKR
    default:
      return absl::StrFormat("CKR_0x%08lX", static_cast<unsigned long>(rv));
  }
}

// The error for a failed call: FAILED_PRECONDITION for token state (logins,
// PINs, missing objects), UNAVAILABLE for a device that went away, INTERNAL
// otherwise.
absl::Status CkError(absl::string_view call, CK_RV rv,
                     absl::string_view context = "") {
  std::string message = absl::StrCat(call, " failed: ", CkrName(rv));
  if (!context.empty()) absl::StrAppend(&message, " (", context, ")");
  switch (rv) {
    case CKR_DEVICE_REMOVED:
    case CKR_DEVICE_ERROR:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_HANDLE_INVALID:
      return absl::UnavailableError(message);
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_EXPIRED:
    case CKR_PIN_LOCKED:
    case CKR_USER_PIN_NOT_INITIALIZED:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_TOKEN_WRITE_PROTECTED:
    case CKR_KEY_HANDLE_INVALID:
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_MECHANISM_INVALID:
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
      return absl::FailedPreconditionError(message);
    default:
      return absl::InternalError(message);
  }
}

// Codes a token returns for a ciphertext, tag or AAD that does not verify.
bool IsDecryptFailure(CK_RV rv) {
  return rv == CKR_ENCRYPTED_DATA_INVALID ||
         rv == CKR_ENCRYPTED_DATA_LEN_RANGE || rv == CKR_AEAD_DECRYPT_FAILED ||
         rv == CKR_DATA_INVALID || rv == CKR_DATA_LEN_RANGE;
}

std::string Label(int version) { return absl::StrCat(kLabelPrefix, version); }

absl::StatusOr<crypto::SecretBytes> ReadPinFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot open PIN file ", path, ": ", std::strerror(errno)));
  }
  crypto::SecretBytes pin(256);
  size_t done = 0;
  absl::Status status = [&]() -> absl::Status {
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      return absl::InternalError(
          absl::StrCat("stat of PIN file ", path, ": ", std::strerror(errno)));
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "PIN file %s has mode %04o; it must be a regular file not "
          "accessible to group or others (chmod 600 %s)",
          path, st.st_mode & 07777, path));
    }
    while (done < pin.size()) {
      ssize_t n = ::read(fd, pin.data() + done, pin.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        return absl::InternalError(absl::StrCat("reading PIN file ", path, ": ",
                                                std::strerror(errno)));
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    if (done == pin.size()) {
      return absl::FailedPreconditionError(
          absl::StrCat("PIN file ", path, " is too large"));
    }
    return absl::OkStatus();
  }();
  ::close(fd);
  if (!status.ok()) return status;
  while (done > 0 &&
         (pin.data()[done - 1] == '\n' || pin.data()[done - 1] == '\r')) {
    --done;
  }
  pin.Truncate(done);
  return pin;
}

absl::StatusOr<crypto::SecretBytes> ReadPin(const Pkcs11KekConfig& config) {
  crypto::SecretBytes pin;
  if (!config.pin_env.empty()) {
    const char* value = std::getenv(config.pin_env.c_str());
    if (value == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("environment variable ", config.pin_env,
                       " (the token PIN) is not set"));
    }
    pin = crypto::SecretBytes(absl::string_view(value));
  } else {
    absl::StatusOr<crypto::SecretBytes> from_file =
        ReadPinFile(config.pin_file);
    if (!from_file.ok()) return from_file.status();
    pin = *std::move(from_file);
  }
  if (pin.empty()) {
    return absl::FailedPreconditionError("the token PIN is empty");
  }
  return pin;
}

std::string TrimmedLabel(const unsigned char (&label)[32]) {
  std::string out(reinterpret_cast<const char*>(label), sizeof(label));
  return std::string(absl::StripTrailingAsciiWhitespace(out));
}

// Seals `plaintext` under `key` with CKM_AES_GCM: returns
// IV || ciphertext || tag, the IV drawn from the token's generator.
absl::StatusOr<std::string> GcmEncrypt(CK_FUNCTION_LIST* fl,
                                       CK_SESSION_HANDLE session,
                                       CK_OBJECT_HANDLE key,
                                       const crypto::SecretBytes& plaintext,
                                       absl::string_view aad) {
  std::string out(kIvSize + plaintext.size() + kTagSize, '\0');
  auto* iv = reinterpret_cast<CK_BYTE*>(out.data());
  CK_RV rv = fl->C_GenerateRandom(session, iv, kIvSize);
  if (rv != CKR_OK) return CkError("C_GenerateRandom", rv);
  std::string aad_copy(aad);
  CK_GCM_PARAMS params;
  std::memset(&params, 0, sizeof(params));
  params.pIv = iv;
  params.ulIvLen = kIvSize;
  params.ulIvBits = kIvSize * 8;
  params.pAAD = reinterpret_cast<CK_BYTE*>(aad_copy.data());
  params.ulAADLen = aad_copy.size();
  params.ulTagBits = kTagSize * 8;
  CK_MECHANISM mechanism = {CKM_AES_GCM, &params, sizeof(params)};
  rv = fl->C_EncryptInit(session, &mechanism, key);
  if (rv != CKR_OK) return CkError("C_EncryptInit(CKM_AES_GCM)", rv);
  // C_Encrypt takes a non-const pointer: pass a copy of the secret.
  crypto::SecretBytes input = plaintext;
  CK_ULONG out_len = plaintext.size() + kTagSize;
  rv =
      fl->C_Encrypt(session, input.data(), input.size(),
                    reinterpret_cast<CK_BYTE*>(out.data() + kIvSize), &out_len);
  if (rv != CKR_OK) return CkError("C_Encrypt", rv);
  if (out_len != plaintext.size() + kTagSize) {
    return absl::InternalError(absl::StrCat(
        "C_Encrypt returned ", out_len, " bytes; expected ",
        plaintext.size() + kTagSize, " (ciphertext and a 16-byte tag)"));
  }
  return out;
}

// Opens IV || ciphertext || tag into `plaintext`; returns the token's code.
CK_RV GcmDecrypt(CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session,
                 CK_OBJECT_HANDLE key, absl::string_view sealed,
                 absl::string_view aad, crypto::SecretBytes& plaintext,
                 const char** failed_call) {
  *failed_call = "C_Decrypt";
  if (sealed.size() < kIvSize + kTagSize) return CKR_ENCRYPTED_DATA_LEN_RANGE;
  std::string iv(sealed.substr(0, kIvSize));
  std::string ciphertext(sealed.substr(kIvSize));
  std::string aad_copy(aad);
  CK_GCM_PARAMS params;
  std::memset(&params, 0, sizeof(params));
  params.pIv = reinterpret_cast<CK_BYTE*>(iv.data());
  params.ulIvLen = kIvSize;
  params.ulIvBits = kIvSize * 8;
  params.pAAD = reinterpret_cast<CK_BYTE*>(aad_copy.data());
  params.ulAADLen = aad_copy.size();
  params.ulTagBits = kTagSize * 8;
  CK_MECHANISM mechanism = {CKM_AES_GCM, &params, sizeof(params)};
  CK_RV rv = fl->C_DecryptInit(session, &mechanism, key);
  if (rv != CKR_OK) {
    *failed_call = "C_DecryptInit(CKM_AES_GCM)";
    return rv;
  }
  crypto::SecretBytes out(ciphertext.size());
  CK_ULONG out_len = out.size();
  rv = fl->C_Decrypt(session, reinterpret_cast<CK_BYTE*>(ciphertext.data()),
                     ciphertext.size(), out.data(), &out_len);
  if (rv != CKR_OK) return rv;
  if (out_len != ciphertext.size() - kTagSize) return CKR_GENERAL_ERROR;
  out.Truncate(out_len);
  plaintext = std::move(out);
  return CKR_OK;
}

}  // namespace

// ------------------------------------------------------------- the module

// One loaded, initialized PKCS#11 module, shared by every source that names
// the same path. The library stays mapped once loaded (modules are not all
// safe to unload and reload); the last source to close calls C_Finalize.
struct Pkcs11KekSource::Module {
  std::string path;
  void* handle = nullptr;
  CK_FUNCTION_LIST* fl = nullptr;
  int users = 0;
  bool finalize = false;  // False if someone else had initialized it.

  static absl::Mutex mu;
  static absl::flat_hash_map<std::string, Module*>& All()
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    static auto* all = new absl::flat_hash_map<std::string, Module*>();
    return *all;
  }

  static absl::StatusOr<Module*> Acquire(const std::string& path) {
    absl::MutexLock lock(&mu);
    Module*& module = All()[path];
    if (module == nullptr) module = new Module{.path = path};
    if (module->handle == nullptr) {
      module->handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (module->handle == nullptr) {
        const char* error = ::dlerror();
        return absl::FailedPreconditionError(
            absl::StrCat("cannot load PKCS#11 module ", path, ": ",
                         error != nullptr ? error : "dlopen failed"));
      }
      auto get_function_list = reinterpret_cast<CK_C_GetFunctionList>(
          ::dlsym(module->handle, "C_GetFunctionList"));
      if (get_function_list == nullptr) {
        return absl::FailedPreconditionError(absl::StrCat(
            path, " is not a PKCS#11 module: it has no C_GetFunctionList"));
      }
      CK_RV rv = get_function_list(&module->fl);
      if (rv != CKR_OK || module->fl == nullptr) {
        module->fl = nullptr;
        return absl::FailedPreconditionError(
            CkError("C_GetFunctionList", rv, path).message());
      }
    }
    if (module->users == 0) {
      CK_C_INITIALIZE_ARGS args;
      std::memset(&args, 0, sizeof(args));
      args.flags = CKF_OS_LOCKING_OK;
      CK_RV rv = module->fl->C_Initialize(&args);
      if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        module->finalize = false;
      } else if (rv == CKR_OK) {
        module->finalize = true;
      } else {
        return absl::FailedPreconditionError(
            CkError("C_Initialize", rv, path).message());
      }
    }
    ++module->users;
    return module;
  }

  void Release() {
    absl::MutexLock lock(&mu);
    if (--users == 0 && finalize) {
      fl->C_Finalize(nullptr);
      finalize = false;
    }
  }
};

absl::Mutex Pkcs11KekSource::Module::mu(absl::kConstInit);

// ----------------------------------------------------------------- config

absl::StatusOr<Pkcs11KekConfig> Pkcs11KekConfig::Parse(
    absl::string_view params) {
  Pkcs11KekConfig config;
  absl::flat_hash_map<std::string, bool> seen;
  for (absl::string_view part : absl::StrSplit(params, ';')) {
    if (part.empty()) continue;
    size_t eq = part.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "pkcs11 spec: \"", part, "\" is not of the form name=value"));
    }
    std::string name(part.substr(0, eq));
    std::string value(part.substr(eq + 1));
    std::string* field = nullptr;
    if (name == "module") {
      field = &config.module;
    } else if (name == "token") {
      field = &config.token;
    } else if (name == "pin-env") {
      field = &config.pin_env;
    } else if (name == "pin-file") {
      field = &config.pin_file;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("pkcs11 spec: unknown attribute \"", name,
                       "\" (expected module, token, pin-env or pin-file)"));
    }
    if (seen[name]) {
      return absl::InvalidArgumentError(
          absl::StrCat("pkcs11 spec: ", name, " is given twice"));
    }
    seen[name] = true;
    if (value.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("pkcs11 spec: ", name, " is empty"));
    }
    *field = std::move(value);
  }
  if (config.module.empty()) {
    return absl::InvalidArgumentError(
        "pkcs11 spec: missing module=<path of the PKCS#11 module>");
  }
  if (config.token.empty()) {
    return absl::InvalidArgumentError(
        "pkcs11 spec: missing token=<token label>");
  }
  if (config.pin_env.empty() == config.pin_file.empty()) {
    return absl::InvalidArgumentError(
        "pkcs11 spec: give exactly one of pin-env=<VAR> and pin-file=<path>");
  }
  return config;
}

std::string Pkcs11KekConfig::Describe() const {
  return absl::StrCat("pkcs11:module=", module, ";token=", token,
                      pin_env.empty() ? absl::StrCat(";pin-file=", pin_file)
                                      : absl::StrCat(";pin-env=", pin_env));
}

// ----------------------------------------------------------------- source

Pkcs11KekSource::Pkcs11KekSource(Pkcs11KekConfig config, Module* module,
                                 unsigned long session)
    : config_(std::move(config)), module_(module), session_(session) {}

Pkcs11KekSource::~Pkcs11KekSource() {
  // Closing the application's last session on the token also logs it out.
  module_->fl->C_CloseSession(session_);
  module_->Release();
}

absl::StatusOr<std::unique_ptr<Pkcs11KekSource>> Pkcs11KekSource::Open(
    const Pkcs11KekConfig& config, Options options) {
  absl::StatusOr<Module*> module = Module::Acquire(config.module);
  if (!module.ok()) return module.status();
  CK_FUNCTION_LIST* fl = (*module)->fl;
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  auto fail = [&](absl::Status status) -> absl::Status {
    if (session != CK_INVALID_HANDLE) fl->C_CloseSession(session);
    (*module)->Release();
    return status;
  };

  CK_ULONG slot_count = 0;
  CK_RV rv = fl->C_GetSlotList(CK_TRUE, nullptr, &slot_count);
  if (rv != CKR_OK) return fail(CkError("C_GetSlotList", rv));
  std::vector<CK_SLOT_ID> slots(slot_count);
  if (slot_count > 0) {
    rv = fl->C_GetSlotList(CK_TRUE, slots.data(), &slot_count);
    if (rv != CKR_OK) return fail(CkError("C_GetSlotList", rv));
    slots.resize(slot_count);
  }
  std::vector<CK_SLOT_ID> matching;
  std::vector<std::string> labels;
  for (CK_SLOT_ID slot : slots) {
    CK_TOKEN_INFO info;
    rv = fl->C_GetTokenInfo(slot, &info);
    if (rv != CKR_OK) {
      return fail(CkError("C_GetTokenInfo", rv, absl::StrCat("slot ", slot)));
    }
    std::string label = TrimmedLabel(info.label);
    if (label == config.token) matching.push_back(slot);
    labels.push_back(absl::StrCat("\"", label, "\""));
  }
  if (matching.size() != 1) {
    return fail(absl::FailedPreconditionError(absl::StrCat(
        matching.empty() ? "no token" : "more than one token", " labelled \"",
        config.token, "\" in ", config.module, " (tokens: ",
        labels.empty() ? "none" : absl::StrJoin(labels, ", "), ")")));
  }

  rv = fl->C_OpenSession(matching[0], CKF_SERIAL_SESSION | CKF_RW_SESSION,
                         nullptr, nullptr, &session);
  if (rv != CKR_OK) {
    session = CK_INVALID_HANDLE;
    return fail(CkError("C_OpenSession", rv, config.token));
  }
  {
    absl::StatusOr<crypto::SecretBytes> pin = ReadPin(config);
    if (!pin.ok()) return fail(pin.status());
    rv = fl->C_Login(session, CKU_USER, pin->data(), pin->size());
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
      absl::Status status = CkError(
          "C_Login", rv, absl::StrCat("user PIN for token ", config.token));
      if (rv == CKR_PIN_INCORRECT) {
        status = absl::FailedPreconditionError(absl::StrCat(
            status.message(), ": the PIN from ",
            config.pin_env.empty() ? config.pin_file : config.pin_env,
            " was refused"));
      }
      return fail(status);
    }
  }

  std::unique_ptr<Pkcs11KekSource> source(
      new Pkcs11KekSource(config, *module, session));
  absl::MutexLock lock(&source->mu_);
  absl::StatusOr<std::map<int, unsigned long>> keys = source->FindKeys();
  if (!keys.ok()) return keys.status();
  source->keys_ = *std::move(keys);
  if (source->keys_.empty()) {
    if (!options.create_first_version) {
      return absl::FailedPreconditionError(absl::StrCat(
          "token ", config.token, " holds no KEK (no ", kLabelPrefix,
          "<N> key); create the first version on first start"));
    }
    absl::StatusOr<int> created = source->CreateVersionLocked();
    if (!created.ok()) return created.status();
  }
  return source;
}

absl::StatusOr<std::map<int, unsigned long>> Pkcs11KekSource::FindKeys() const {
  CK_FUNCTION_LIST* fl = module_->fl;
  CK_OBJECT_CLASS key_class = CKO_SECRET_KEY;
  CK_KEY_TYPE key_type = CKK_AES;
  CK_BBOOL yes = CK_TRUE;
  CK_ATTRIBUTE search[] = {
      {CKA_CLASS, &key_class, sizeof(key_class)},
      {CKA_KEY_TYPE, &key_type, sizeof(key_type)},
      {CKA_TOKEN, &yes, sizeof(yes)},
  };
  CK_RV rv = fl->C_FindObjectsInit(session_, search, std::size(search));
  if (rv != CKR_OK) return CkError("C_FindObjectsInit", rv);
  std::vector<CK_OBJECT_HANDLE> handles;
  while (true) {
    CK_OBJECT_HANDLE batch[64];
    CK_ULONG found = 0;
    rv = fl->C_FindObjects(session_, batch, std::size(batch), &found);
    if (rv != CKR_OK) {
      fl->C_FindObjectsFinal(session_);
      return CkError("C_FindObjects", rv);
    }
    if (found == 0) break;
    handles.insert(handles.end(), batch, batch + found);
  }
  rv = fl->C_FindObjectsFinal(session_);
  if (rv != CKR_OK) return CkError("C_FindObjectsFinal", rv);

  std::map<int, unsigned long> keys;
  for (CK_OBJECT_HANDLE handle : handles) {
    char label[128];
    CK_ATTRIBUTE attr = {CKA_LABEL, label, sizeof(label)};
    rv = fl->C_GetAttributeValue(session_, handle, &attr, 1);
    if (rv == CKR_BUFFER_TOO_SMALL || rv == CKR_ATTRIBUTE_TYPE_INVALID) {
      continue;  // A long or missing label is not one of ours.
    }
    if (rv != CKR_OK) return CkError("C_GetAttributeValue(CKA_LABEL)", rv);
    absl::string_view text(label, attr.ulValueLen);
    if (!absl::ConsumePrefix(&text, kLabelPrefix)) continue;
    int version = 0;
    if (!absl::SimpleAtoi(text, &version) || version < 1 ||
        Label(version) != absl::string_view(label, attr.ulValueLen)) {
      continue;
    }
    CK_BBOOL sensitive = CK_FALSE;
    CK_BBOOL extractable = CK_TRUE;
    CK_ULONG value_len = 0;
    CK_ATTRIBUTE checks[] = {
        {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
        {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
        {CKA_VALUE_LEN, &value_len, sizeof(value_len)},
    };
    rv = fl->C_GetAttributeValue(session_, handle, checks, std::size(checks));
    if (rv != CKR_OK) {
      return CkError("C_GetAttributeValue", rv, Label(version));
    }
    if (sensitive != CK_TRUE || extractable != CK_FALSE) {
      return absl::FailedPreconditionError(absl::StrCat(
          "KEK object ", Label(version), " on token ", config_.token,
          " is not protected (CKA_SENSITIVE must be true and CKA_EXTRACTABLE "
          "false); refusing to use it"));
    }
    if (value_len != crypto::Aes256Gcm::kKeySize) {
      return absl::FailedPreconditionError(
          absl::StrCat("KEK object ", Label(version), " is an AES-",
                       value_len * 8, " key; expected AES-256"));
    }
    if (!keys.emplace(version, handle).second) {
      return absl::FailedPreconditionError(
          absl::StrCat("token ", config_.token,
                       " holds more than one key "
                       "labelled ",
                       Label(version)));
    }
  }
  return keys;
}

std::string Pkcs11KekSource::Describe() const { return config_.Describe(); }

absl::StatusOr<std::vector<int>> Pkcs11KekSource::Versions() const {
  absl::MutexLock lock(&mu_);
  std::vector<int> versions;
  for (const auto& [version, unused] : keys_) versions.push_back(version);
  if (versions.empty()) {
    return absl::FailedPreconditionError("the token holds no KEK");
  }
  return versions;
}

absl::StatusOr<unsigned long> Pkcs11KekSource::KeyHandle(int version) const {
  auto it = keys_.find(version);
  if (it == keys_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("KEK version ", version, " is not on token ",
                     config_.token, " (no key labelled ", Label(version), ")"));
  }
  return it->second;
}

absl::StatusOr<std::string> Pkcs11KekSource::Wrap(
    int version, const crypto::SecretBytes& dek,
    absl::string_view associated_data) const {
  std::string aad = KekAssociatedData(version, associated_data);
  absl::MutexLock lock(&mu_);
  absl::StatusOr<unsigned long> key = KeyHandle(version);
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> sealed =
      GcmEncrypt(module_->fl, session_, *key, dek, aad);
  if (!sealed.ok()) {
    return absl::Status(
        sealed.status().code(),
        absl::StrCat(sealed.status().message(), " (", Label(version), ")"));
  }
  std::string out(1, static_cast<char>(kFormatVersion));
  out.append(*sealed);
  return out;
}

absl::StatusOr<crypto::SecretBytes> Pkcs11KekSource::Unwrap(
    int version, absl::string_view wrapped,
    absl::string_view associated_data) const {
  std::string aad = KekAssociatedData(version, associated_data);
  absl::MutexLock lock(&mu_);
  absl::StatusOr<unsigned long> key = KeyHandle(version);
  if (!key.ok()) return key.status();
  if (wrapped.size() < 1 + kIvSize + kTagSize) {
    return absl::DataLossError(absl::StrCat("wrapped DEK is ", wrapped.size(),
                                            " bytes; too short to be sealed"));
  }
  if (static_cast<uint8_t>(wrapped[0]) != kFormatVersion) {
    return absl::DataLossError(
        absl::StrFormat("wrapped DEK has unknown format byte 0x%02x",
                        static_cast<uint8_t>(wrapped[0])));
  }
  crypto::SecretBytes plaintext;
  const char* call = "C_Decrypt";
  CK_RV rv = GcmDecrypt(module_->fl, session_, *key, wrapped.substr(1), aad,
                        plaintext, &call);
  if (rv == CKR_OK) return plaintext;
  std::string failure = absl::StrCat(call, " failed: ", CkrName(rv));
  if (IsDecryptFailure(rv) && absl::string_view(call) == "C_Decrypt") {
    return absl::DataLossError(absl::StrCat(
        "wrapped DEK does not open under KEK ", Label(version), ": ", failure,
        " (tampered blob, wrong associated data or wrong KEK)"));
  }
  if ((rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED) &&
      absl::string_view(call) == "C_Decrypt") {
    // Some tokens (SoftHSM2 2.6) report a failed GCM tag check only as a
    // general error. Tell that apart from a broken token: if the same key
    // still seals and opens a probe, the token works and this blob did not
    // authenticate.
    absl::StatusOr<std::string> probe = GcmEncrypt(
        module_->fl, session_, *key,
        crypto::SecretBytes(absl::string_view("certplane-probe")), "probe");
    crypto::SecretBytes opened;
    const char* probe_call = "C_Decrypt";
    CK_RV probe_rv = probe.ok()
                         ? GcmDecrypt(module_->fl, session_, *key, *probe,
                                      "probe", opened, &probe_call)
                         : CKR_GENERAL_ERROR;
    if (probe.ok() && probe_rv == CKR_OK &&
        opened.view() == "certplane-probe") {
      return absl::DataLossError(absl::StrCat(
          "wrapped DEK does not open under KEK ", Label(version), ": ", failure,
          " while the token opens a probe under the same key (tampered "
          "blob, wrong associated data or wrong KEK)"));
    }
    return absl::InternalError(absl::StrCat(
        failure, " (", Label(version), "), and the token also fails a probe: ",
        probe.ok() ? absl::StrCat(probe_call, " failed: ", CkrName(probe_rv))
                   : std::string(probe.status().message())));
  }
  return CkError(call, rv, Label(version));
}

absl::StatusOr<int> Pkcs11KekSource::CreateVersion() {
  absl::MutexLock lock(&mu_);
  return CreateVersionLocked();
}

absl::StatusOr<int> Pkcs11KekSource::CreateVersionLocked() {
  // Look again: another process may have rotated since we opened.
  absl::StatusOr<std::map<int, unsigned long>> keys = FindKeys();
  if (!keys.ok()) return keys.status();
  keys_ = *std::move(keys);
  int next = keys_.empty() ? 1 : keys_.rbegin()->first + 1;
  std::string label = Label(next);

  CK_OBJECT_CLASS key_class = CKO_SECRET_KEY;
  CK_KEY_TYPE key_type = CKK_AES;
  CK_ULONG value_len = crypto::Aes256Gcm::kKeySize;
  CK_BBOOL yes = CK_TRUE;
  CK_BBOOL no = CK_FALSE;
  CK_ATTRIBUTE attributes[] = {
      {CKA_CLASS, &key_class, sizeof(key_class)},
      {CKA_KEY_TYPE, &key_type, sizeof(key_type)},
      {CKA_VALUE_LEN, &value_len, sizeof(value_len)},
      {CKA_LABEL, label.data(), label.size()},
      {CKA_ID, label.data(), label.size()},
      {CKA_TOKEN, &yes, sizeof(yes)},
      {CKA_PRIVATE, &yes, sizeof(yes)},
      {CKA_SENSITIVE, &yes, sizeof(yes)},
      {CKA_EXTRACTABLE, &no, sizeof(no)},
      {CKA_ENCRYPT, &yes, sizeof(yes)},
      {CKA_DECRYPT, &yes, sizeof(yes)},
      {CKA_WRAP, &no, sizeof(no)},
      {CKA_UNWRAP, &no, sizeof(no)},
      {CKA_SIGN, &no, sizeof(no)},
      {CKA_VERIFY, &no, sizeof(no)},
      {CKA_DERIVE, &no, sizeof(no)},
  };
  CK_MECHANISM mechanism = {CKM_AES_KEY_GEN, nullptr, 0};
  CK_OBJECT_HANDLE handle = CK_INVALID_HANDLE;
  CK_RV rv = module_->fl->C_GenerateKey(session_, &mechanism, attributes,
                                        std::size(attributes), &handle);
  if (rv != CKR_OK) return CkError("C_GenerateKey(CKM_AES_KEY_GEN)", rv, label);
  keys_.emplace(next, handle);
  return next;
}

absl::StatusOr<Pkcs11KekSource::KeyObjectInfo> Pkcs11KekSource::InspectVersion(
    int version) const {
  CK_FUNCTION_LIST* fl = module_->fl;
  absl::MutexLock lock(&mu_);
  absl::StatusOr<unsigned long> key = KeyHandle(version);
  if (!key.ok()) return key.status();
  CK_BBOOL token = CK_FALSE, sensitive = CK_FALSE, extractable = CK_TRUE,
           always_sensitive = CK_FALSE, never_extractable = CK_FALSE;
  CK_ATTRIBUTE flags[] = {
      {CKA_TOKEN, &token, sizeof(token)},
      {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
      {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
      {CKA_ALWAYS_SENSITIVE, &always_sensitive, sizeof(always_sensitive)},
      {CKA_NEVER_EXTRACTABLE, &never_extractable, sizeof(never_extractable)},
  };
  CK_RV rv = fl->C_GetAttributeValue(session_, *key, flags, std::size(flags));
  if (rv != CKR_OK) return CkError("C_GetAttributeValue", rv, Label(version));
  KeyObjectInfo info;
  info.token = token == CK_TRUE;
  info.sensitive = sensitive == CK_TRUE;
  info.extractable = extractable == CK_TRUE;
  info.always_sensitive = always_sensitive == CK_TRUE;
  info.never_extractable = never_extractable == CK_TRUE;
  // Only the length is asked for (no buffer), so nothing is copied out even
  // if a token wrongly allowed it.
  CK_ATTRIBUTE value = {CKA_VALUE, nullptr, 0};
  rv = fl->C_GetAttributeValue(session_, *key, &value, 1);
  info.value_query_result = CkrName(rv);
  return info;
}

}  // namespace certplane::vault
