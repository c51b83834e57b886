#include "services/vault/file_kek_source.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "libs/crypto/aead.h"
#include "libs/testing/status_matchers.h"
#include "services/vault/kek_source.h"

namespace certplane::vault {
namespace {

using ::certplane::testing::IsOk;
using ::certplane::testing::StatusIs;
using ::certplane::testing::ValueOrDie;

// base64 of 32 bytes 0x00..0x1f and of 32 bytes 0x20..0x3f.
constexpr char kKey1[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
constexpr char kKey2[] = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

class TempDir {
 public:
  TempDir() {
    std::string t =
        (std::filesystem::temp_directory_path() / "certplane-kek-XXXXXX")
            .string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    path_ = t;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const {
    return absl::StrCat(path_, "/", name);
  }
  std::vector<std::string> Entries() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path_)) {
      out.push_back(e.path().filename().string());
    }
    return out;
  }

 private:
  std::string path_;
};

std::string WriteFile(const std::string& path, const std::string& contents,
                      mode_t mode = 0600) {
  {
    std::ofstream out(path, std::ios::trunc);
    out << contents;
  }
  REQUIRE(::chmod(path.c_str(), mode) == 0);
  return path;
}

crypto::SecretBytes Dek() {
  return ValueOrDie(crypto::Aes256Gcm::GenerateKey());
}

TEST_CASE("FileKekSource wraps and unwraps a DEK", "[file_kek]") {
  TempDir dir;
  auto source = ValueOrDie(FileKekSource::Open(
      WriteFile(dir.File("kek"), absl::StrCat("v1 ", kKey1, "\n"))));
  REQUIRE(ValueOrDie(source->Versions()) == std::vector<int>{1});
  crypto::SecretBytes dek = Dek();
  std::string wrapped = ValueOrDie(source->Wrap(1, dek, "key-1/v1/team-a"));
  CHECK(wrapped.size() == dek.size() + crypto::Aes256Gcm::kOverhead);
  CHECK(wrapped.find(std::string(dek.view())) == std::string::npos);
  CHECK(ValueOrDie(source->Unwrap(1, wrapped, "key-1/v1/team-a")) == dek);
  CHECK(source->Describe() == absl::StrCat("file:", dir.File("kek")));
}

TEST_CASE("FileKekSource refuses every single-byte tamper with DATA_LOSS",
          "[file_kek]") {
  TempDir dir;
  auto source = ValueOrDie(FileKekSource::Open(
      WriteFile(dir.File("kek"), absl::StrCat("v1 ", kKey1, "\n"))));
  std::string wrapped = ValueOrDie(source->Wrap(1, Dek(), "ad"));
  for (size_t i = 0; i < wrapped.size(); ++i) {
    std::string tampered = wrapped;
    tampered[i] ^= 0x01;
    INFO("byte " << i);
    CHECK_THAT(source->Unwrap(1, tampered, "ad"),
               StatusIs(absl::StatusCode::kDataLoss));
  }
  CHECK_THAT(source->Unwrap(1, wrapped.substr(0, wrapped.size() - 1), "ad"),
             StatusIs(absl::StatusCode::kDataLoss));
  CHECK_THAT(source->Unwrap(1, "", "ad"),
             StatusIs(absl::StatusCode::kDataLoss));
}

TEST_CASE("FileKekSource refuses changed associated data with DATA_LOSS",
          "[file_kek]") {
  TempDir dir;
  auto source = ValueOrDie(FileKekSource::Open(
      WriteFile(dir.File("kek"), absl::StrCat("v1 ", kKey1, "\n"))));
  std::string wrapped = ValueOrDie(source->Wrap(1, Dek(), "key-1/v1"));
  CHECK_THAT(source->Unwrap(1, wrapped, "key-2/v1"),
             StatusIs(absl::StatusCode::kDataLoss, "KEK v1"));
  CHECK_THAT(source->Unwrap(1, wrapped, ""),
             StatusIs(absl::StatusCode::kDataLoss));
}

TEST_CASE("FileKekSource reports an unknown version as FAILED_PRECONDITION",
          "[file_kek]") {
  TempDir dir;
  auto source = ValueOrDie(FileKekSource::Open(
      WriteFile(dir.File("kek"), absl::StrCat("v1 ", kKey1, "\n"))));
  CHECK_THAT(source->Wrap(2, Dek(), "ad"),
             StatusIs(absl::StatusCode::kFailedPrecondition, "version 2"));
  std::string wrapped = ValueOrDie(source->Wrap(1, Dek(), "ad"));
  CHECK_THAT(source->Unwrap(7, wrapped, "ad"),
             StatusIs(absl::StatusCode::kFailedPrecondition, "version 7"));
}

TEST_CASE("FileKekSource binds the version: a v1 blob never opens as v2",
          "[file_kek]") {
  TempDir dir;
  // Both versions deliberately hold the same key: only the version binding
  // in the associated data tells them apart.
  auto source = ValueOrDie(FileKekSource::Open(WriteFile(
      dir.File("kek"), absl::StrCat("v1 ", kKey1, "\nv2 ", kKey1, "\n"))));
  std::string wrapped = ValueOrDie(source->Wrap(1, Dek(), "ad"));
  CHECK_THAT(source->Unwrap(2, wrapped, "ad"),
             StatusIs(absl::StatusCode::kDataLoss));
}

TEST_CASE("FileKekSource rotation adds v2 and keeps v1 blobs readable",
          "[file_kek]") {
  TempDir dir;
  std::string path = WriteFile(dir.File("kek"), absl::StrCat("v1 ", kKey1));
  auto source = ValueOrDie(FileKekSource::Open(path));
  crypto::SecretBytes dek = Dek();
  std::string old_wrapped = ValueOrDie(source->Wrap(1, dek, "ad"));

  CHECK(ValueOrDie(source->CreateVersion()) == 2);
  std::vector<int> versions = ValueOrDie(source->Versions());
  REQUIRE(versions == std::vector<int>{1, 2});
  CHECK(ValueOrDie(source->Unwrap(1, old_wrapped, "ad")) == dek);
  std::string new_wrapped =
      ValueOrDie(source->Wrap(versions.back(), dek, "ad"));
  CHECK(ValueOrDie(source->Unwrap(2, new_wrapped, "ad")) == dek);
  CHECK_THAT(source->Unwrap(1, new_wrapped, "ad"),
             StatusIs(absl::StatusCode::kDataLoss));

  // Durable: a fresh process (a new source) sees both versions, the file is
  // still private, and no temporary file is left behind.
  auto reopened = ValueOrDie(FileKekSource::Open(path));
  CHECK(ValueOrDie(reopened->Versions()) == std::vector<int>{1, 2});
  CHECK(ValueOrDie(reopened->Unwrap(1, old_wrapped, "ad")) == dek);
  CHECK(ValueOrDie(reopened->Unwrap(2, new_wrapped, "ad")) == dek);
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  CHECK(dir.Entries() == std::vector<std::string>{"kek"});
}

TEST_CASE("FileKekSource rotations from several threads get distinct versions",
          "[file_kek]") {
  TempDir dir;
  std::string path =
      WriteFile(dir.File("kek"), absl::StrCat("v1 ", kKey1, "\n"));
  auto source = ValueOrDie(FileKekSource::Open(path));
  std::string wrapped = ValueOrDie(source->Wrap(1, Dek(), "ad"));
  constexpr int kThreads = 4;
  std::vector<absl::StatusOr<int>> results(kThreads, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      results[i] = source->CreateVersion();
      // Wrapping and unwrapping go on while others rotate.
      (void)source->Unwrap(1, wrapped, "ad");
    });
  }
  for (auto& t : threads) t.join();
  std::set<int> created;
  for (const auto& r : results) created.insert(ValueOrDie(r));
  CHECK(created == std::set<int>{2, 3, 4, 5});
  CHECK(ValueOrDie(ValueOrDie(FileKekSource::Open(path))->Versions()) ==
        std::vector<int>{1, 2, 3, 4, 5});
}

TEST_CASE("FileKekSource rotations from two processes' sources lose no version",
          "[file_kek]") {
  // Two sources opened separately on one file stand for two vault
  // processes: rotate_mu_ does not order them, only the file lock does.
  TempDir dir;
  std::string path =
      WriteFile(dir.File("kek"), absl::StrCat("v1 ", kKey1, "\n"));
  auto a = ValueOrDie(FileKekSource::Open(path));
  auto b = ValueOrDie(FileKekSource::Open(path));
  constexpr int kRotations = 10;
  std::vector<absl::StatusOr<int>> from_a, from_b;
  std::thread ta([&] {
    for (int i = 0; i < kRotations; ++i) from_a.push_back(a->CreateVersion());
  });
  std::thread tb([&] {
    for (int i = 0; i < kRotations; ++i) from_b.push_back(b->CreateVersion());
  });
  ta.join();
  tb.join();
  std::set<int> created;
  for (const auto& r : from_a) created.insert(ValueOrDie(r));
  for (const auto& r : from_b) created.insert(ValueOrDie(r));
  CHECK(created.size() == 2 * kRotations);
  // Every version either source handed out is on disk.
  std::vector<int> on_disk =
      ValueOrDie(ValueOrDie(FileKekSource::Open(path))->Versions());
  for (int version : created) {
    CHECK(std::find(on_disk.begin(), on_disk.end(), version) != on_disk.end());
  }
}

TEST_CASE("FileKekSource ignores a temporary file left by a crashed rotation",
          "[file_kek]") {
  TempDir dir;
  std::string path =
      WriteFile(dir.File("kek"), absl::StrCat("v1 ", kKey1, "\n"));
  // A crash between writing the temporary file and the rename leaves it
  // behind, half written; the key file itself is the old, whole one.
  WriteFile(dir.File("kek.tmp-Ab12Cd"), absl::StrCat("v1 ", kKey1, "\nv2 AA"));
  auto source = ValueOrDie(FileKekSource::Open(path));
  CHECK(ValueOrDie(source->Versions()) == std::vector<int>{1});
  CHECK(ValueOrDie(source->CreateVersion()) == 2);
  CHECK(ValueOrDie(ValueOrDie(FileKekSource::Open(path))->Versions()) ==
        std::vector<int>{1, 2});
}

TEST_CASE("FileKekSource refuses a symbolic link", "[file_kek]") {
  TempDir dir;
  std::string path =
      WriteFile(dir.File("kek"), absl::StrCat("v1 ", kKey1, "\n"));
  std::filesystem::create_symlink(path, dir.File("link"));
  CHECK_THAT(FileKekSource::Open(dir.File("link")),
             StatusIs(absl::StatusCode::kFailedPrecondition, "symbolic link"));
}

TEST_CASE("FileKekSource refuses a file readable by group or others",
          "[file_kek]") {
  TempDir dir;
  std::string contents = absl::StrCat("v1 ", kKey1, "\n");
  CHECK_THAT(FileKekSource::Open(WriteFile(dir.File("a"), contents, 0644)),
             StatusIs(absl::StatusCode::kFailedPrecondition, "mode 0644"));
  CHECK_THAT(FileKekSource::Open(WriteFile(dir.File("b"), contents, 0640)),
             StatusIs(absl::StatusCode::kFailedPrecondition, "mode 0640"));
  CHECK_THAT(FileKekSource::Open(WriteFile(dir.File("c"), contents, 0602)),
             StatusIs(absl::StatusCode::kFailedPrecondition, "mode 0602"));
  CHECK_THAT(FileKekSource::Open(WriteFile(dir.File("d"), contents, 0400)),
             IsOk());
}

TEST_CASE("FileKekSource refuses a missing file or a directory", "[file_kek]") {
  TempDir dir;
  CHECK_THAT(FileKekSource::Open(dir.File("missing")),
             StatusIs(absl::StatusCode::kFailedPrecondition, "does not exist"));
  std::filesystem::create_directory(dir.File("sub"));
  ::chmod(dir.File("sub").c_str(), 0700);
  CHECK_THAT(
      FileKekSource::Open(dir.File("sub")),
      StatusIs(absl::StatusCode::kFailedPrecondition, "not a regular file"));
}

TEST_CASE("FileKekSource refuses malformed key files naming the problem",
          "[file_kek]") {
  TempDir dir;
  struct Case {
    std::string contents;
    std::string message;
  };
  std::vector<Case> cases = {
      {"", "no KEK versions"},
      {"\n\n", "no KEK versions"},
      {absl::StrCat("x1 ", kKey1), "line 1 is not of the form"},
      {absl::StrCat("v1", kKey1), "line 1 is not of the form"},
      {absl::StrCat("v0 ", kKey1), "version v<N>, N >= 1"},
      {absl::StrCat("vX ", kKey1), "version v<N>, N >= 1"},
      {"v1 not*base64!!", "invalid character"},
      {"v1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "length 43"},
      {"v1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw=", "key is 29 bytes"},
      {absl::StrCat("v1 ", kKey1, "\nv1 ", kKey2), "duplicate version v1"},
      {absl::StrCat("v1 ", kKey1, "\nv2 junk"), "line 2 (v2)"},
  };
  int i = 0;
  for (const Case& c : cases) {
    INFO("contents: " << c.contents);
    std::string path = WriteFile(dir.File(absl::StrCat("k", i++)), c.contents);
    absl::StatusOr<std::unique_ptr<FileKekSource>> source =
        FileKekSource::Open(path);
    CHECK_THAT(source,
               StatusIs(absl::StatusCode::kFailedPrecondition, c.message));
    if (!source.ok()) {
      // Errors never quote key material.
      CHECK(source.status().message().find(kKey2) == std::string::npos);
    }
  }
}

TEST_CASE("FileKekSource accepts versions out of order and blank lines",
          "[file_kek]") {
  TempDir dir;
  auto source = ValueOrDie(FileKekSource::Open(WriteFile(
      dir.File("kek"), absl::StrCat("\nv3 ", kKey2, "\n\nv1 ", kKey1, "\n"))));
  CHECK(ValueOrDie(source->Versions()) == std::vector<int>{1, 3});
}

TEST_CASE("CreateKekFile writes a private v1 file and never overwrites",
          "[file_kek]") {
  TempDir dir;
  std::string path = dir.File("kek");
  REQUIRE_THAT(CreateKekFile(path), IsOk());
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  auto source = ValueOrDie(FileKekSource::Open(path));
  CHECK(ValueOrDie(source->Versions()) == std::vector<int>{1});
  crypto::SecretBytes dek = Dek();
  std::string wrapped = ValueOrDie(source->Wrap(1, dek, "ad"));

  CHECK_THAT(CreateKekFile(path),
             StatusIs(absl::StatusCode::kAlreadyExists, "not overwriting"));
  // The existing key is untouched.
  CHECK(ValueOrDie(
            ValueOrDie(FileKekSource::Open(path))->Unwrap(1, wrapped, "ad")) ==
        dek);
  CHECK(dir.Entries() == std::vector<std::string>{"kek"});

  // Two new files get different keys.
  REQUIRE_THAT(CreateKekFile(dir.File("other")), IsOk());
  CHECK_THAT(ValueOrDie(FileKekSource::Open(dir.File("other")))
                 ->Unwrap(1, wrapped, "ad"),
             StatusIs(absl::StatusCode::kDataLoss));
}

TEST_CASE("Secret base64 round-trips and refuses non-canonical input",
          "[file_kek]") {
  for (size_t n = 0; n < 8; ++n) {
    crypto::SecretBytes secret(n);
    for (size_t i = 0; i < n; ++i)
      secret.data()[i] = static_cast<uint8_t>(0xf0 + i);
    crypto::SecretBytes encoded = EncodeSecretBase64(secret);
    if (n == 0) {
      CHECK(encoded.empty());
      continue;
    }
    CHECK(ValueOrDie(DecodeSecretBase64(encoded.view())) == secret);
  }
  CHECK(std::string(ValueOrDie(DecodeSecretBase64("Zm9vYg==")).view()) ==
        "foob");
  CHECK_THAT(DecodeSecretBase64("Zm9vYh=="),
             StatusIs(absl::StatusCode::kInvalidArgument, "not canonical"));
  CHECK_THAT(DecodeSecretBase64("Zm=v"),
             StatusIs(absl::StatusCode::kInvalidArgument, "invalid character"));
  CHECK_THAT(DecodeSecretBase64(""),
             StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_CASE("CreateKekSource dispatches file: specs and refuses bad ones",
          "[kek_source]") {
  TempDir dir;
  std::string path =
      WriteFile(dir.File("kek"), absl::StrCat("v1 ", kKey1, "\n"));
  auto source = ValueOrDie(CreateKekSource(absl::StrCat("file:", path)));
  CHECK(source->Describe() == absl::StrCat("file:", path));
  CHECK(dynamic_cast<RotatableKekSource*>(source.get()) != nullptr);

  CHECK_THAT(CreateKekSource(""),
             StatusIs(absl::StatusCode::kInvalidArgument, "empty"));
  CHECK_THAT(CreateKekSource("vault-kek"),
             StatusIs(absl::StatusCode::kInvalidArgument, "no kind"));
  CHECK_THAT(CreateKekSource("aws-kms:alias/x"),
             StatusIs(absl::StatusCode::kInvalidArgument,
                      "unknown KEK source kind \"aws-kms\""));
  CHECK_THAT(CreateKekSource("file:"),
             StatusIs(absl::StatusCode::kInvalidArgument, "needs a path"));
  CHECK_THAT(CreateKekSource(absl::StrCat("file:", dir.File("missing"))),
             StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_CASE("KekAssociatedData prefixes the version big-endian", "[kek_source]") {
  CHECK(KekAssociatedData(1, "ad") == std::string("\0\0\0\1ad", 6));
  CHECK(KekAssociatedData(258, "") == std::string("\0\0\1\2", 4));
}

}  // namespace
}  // namespace certplane::vault
