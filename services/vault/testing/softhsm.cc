#include "services/vault/testing/softhsm.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace certplane::vault::testing {
namespace {

// Runs `command` through the shell, returning its combined output; INTERNAL
// with the output when it exits non-zero.
absl::StatusOr<std::string> Run(const std::string& command) {
  FILE* pipe = ::popen(absl::StrCat(command, " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    return absl::InternalError(
        absl::StrCat("popen(", command, "): ", std::strerror(errno)));
  }
  std::string output;
  char buffer[512];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    output.append(buffer, n);
  }
  int status = ::pclose(pipe);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(
        absl::StrCat("`", command, "` failed: ", output));
  }
  return output;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SoftHsmToken>> SoftHsmToken::Create() {
  if (::access(kModule, R_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "SoftHSM2 module ", kModule,
        " is missing: install softhsm2 (scripts/install-deps.sh)"));
  }
  if (Run("command -v softhsm2-util").status().code() !=
      absl::StatusCode::kOk) {
    return absl::FailedPreconditionError(
        "softhsm2-util is not on PATH: install softhsm2 "
        "(scripts/install-deps.sh)");
  }
  std::string dir_template =
      (std::filesystem::temp_directory_path() / "certplane-softhsm-XXXXXX")
          .string();
  if (::mkdtemp(dir_template.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", std::strerror(errno)));
  }
  const char* old = std::getenv("SOFTHSM2_CONF");
  std::unique_ptr<SoftHsmToken> token(new SoftHsmToken(
      dir_template, old ? std::optional<std::string>(old) : std::nullopt));

  std::string tokens = absl::StrCat(token->dir_, "/tokens");
  std::string conf = absl::StrCat(token->dir_, "/softhsm2.conf");
  std::error_code ec;
  std::filesystem::create_directory(tokens, ec);
  if (ec) {
    return absl::InternalError(
        absl::StrCat("creating ", tokens, ": ", ec.message()));
  }
  {
    std::ofstream out(conf);
    out << "directories.tokendir = " << tokens << "\n"
        << "objectstore.backend = file\n"
        << "log.level = ERROR\n"
        << "slots.removable = false\n";
    if (!out) return absl::InternalError(absl::StrCat("writing ", conf));
  }
  ::setenv("SOFTHSM2_CONF", conf.c_str(), 1);
  ::setenv(kPinEnv, kUserPin, 1);
  absl::StatusOr<std::string> init =
      Run(absl::StrCat("softhsm2-util --init-token --free --label ", kLabel,
                       " --pin ", kUserPin, " --so-pin ", kSoPin));
  if (!init.ok()) return init.status();
  return token;
}

SoftHsmToken::~SoftHsmToken() {
  if (old_conf_) {
    ::setenv("SOFTHSM2_CONF", old_conf_->c_str(), 1);
  } else {
    ::unsetenv("SOFTHSM2_CONF");
  }
  ::unsetenv(kPinEnv);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string SoftHsmToken::SpecParams() const {
  return absl::StrCat("module=", kModule, ";token=", kLabel,
                      ";pin-env=", kPinEnv);
}

}  // namespace certplane::vault::testing
