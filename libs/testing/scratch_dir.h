// Test support: a temporary folder for a test's files, with helpers to read
// and write files in it and to run shell commands there (the openssl CLI,
// softhsm2-util, ...). The folder and everything in it is removed when the
// ScratchDir is destroyed. Not thread-safe; one owner at a time.
#ifndef CERTPLANE_LIBS_TESTING_SCRATCH_DIR_H_
#define CERTPLANE_LIBS_TESTING_SCRATCH_DIR_H_

#include <string>

#include "absl/strings/string_view.h"

namespace certplane::testing {

// What a command run by ScratchDir::Run printed, and how it ended.
struct CommandResult {
  int exit_code = -1;  // The shell's exit status; -1 if it could not start.
  std::string out;     // Standard output.
  std::string err;     // Standard error.
  bool ok() const { return exit_code == 0; }
};

// Whole contents of a file; "" when it cannot be read.
std::string ReadFileContents(const std::string& path);
// Writes (truncating) a file; fails the current test if it cannot.
void WriteFileContents(const std::string& path, absl::string_view data);

class ScratchDir {
 public:
  // Creates /tmp/<prefix>-XXXXXX (or under $TMPDIR); fails the current
  // test with the reason if it cannot.
  explicit ScratchDir(absl::string_view prefix = "certplane-test");
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }
  // `name` inside the folder.
  std::string Path(absl::string_view name) const;
  std::string Read(absl::string_view name) const;
  void Write(absl::string_view name, absl::string_view data) const;

  // Runs `command` with /bin/sh in the folder, standard input from
  // /dev/null, capturing its output.
  CommandResult Run(absl::string_view command) const;
  // Same, but fails the current test (with the command's stderr) unless it
  // exits 0; returns its standard output.
  std::string RunOrFail(absl::string_view command) const;

 private:
  std::string path_;
};

}  // namespace certplane::testing

#endif  // CERTPLANE_LIBS_TESTING_SCRATCH_DIR_H_
