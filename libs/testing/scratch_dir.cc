#include "libs/testing/scratch_dir.h"

#include <stdlib.h>
#include <sys/wait.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace certplane::testing {

std::string ReadFileContents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteFileContents(const std::string& path, absl::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) FAIL("cannot write " << path);
}

ScratchDir::ScratchDir(absl::string_view prefix) {
  std::error_code error;
  std::filesystem::path base = std::filesystem::temp_directory_path(error);
  if (error) base = "/tmp";
  std::string pattern = (base / absl::StrCat(prefix, "-XXXXXX")).string();
  if (mkdtemp(pattern.data()) == nullptr) {
    FAIL("mkdtemp(" << pattern << "): " << std::strerror(errno));
  }
  path_ = pattern;
}

ScratchDir::~ScratchDir() {
  std::error_code ignored;
  if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
}

std::string ScratchDir::Path(absl::string_view name) const {
  return absl::StrCat(path_, "/", name);
}

std::string ScratchDir::Read(absl::string_view name) const {
  return ReadFileContents(Path(name));
}

void ScratchDir::Write(absl::string_view name, absl::string_view data) const {
  WriteFileContents(Path(name), data);
}

CommandResult ScratchDir::Run(absl::string_view command) const {
  // Each run gets its own output files, so runs never see stale output.
  static std::atomic<int> counter{0};
  const int n = counter.fetch_add(1);
  const std::string out = Path(absl::StrCat(".run", n, ".out"));
  const std::string err = Path(absl::StrCat(".run", n, ".err"));
  const std::string full =
      absl::StrCat("cd '", path_, "' && (", command, ") </dev/null >'", out,
                   "' 2>'", err, "'");
  CommandResult result;
  int status = std::system(full.c_str());
  if (status != -1 && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.out = ReadFileContents(out);
  result.err = ReadFileContents(err);
  std::error_code ignored;
  std::filesystem::remove(out, ignored);
  std::filesystem::remove(err, ignored);
  return result;
}

std::string ScratchDir::RunOrFail(absl::string_view command) const {
  CommandResult result = Run(command);
  if (!result.ok()) {
    FAIL("command failed (exit " << result.exit_code << "): " << command << "\n"
                                 << result.err);
  }
  return result.out;
}

}  // namespace certplane::testing
