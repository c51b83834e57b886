#include "libs/server/request_id.h"

#include <cstdint>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server_context.h"
#include "libs/server/internal/request_id_registry.h"

namespace certplane::server {
namespace {

struct Registry {
  absl::Mutex mu;
  absl::flat_hash_map<const void*, std::string> ids ABSL_GUARDED_BY(mu);
};

Registry& GetRegistry() {
  static Registry* const registry = new Registry;
  return *registry;
}

}  // namespace

namespace internal {

void RegisterRequestId(const void* context, std::string id) {
  Registry& registry = GetRegistry();
  absl::MutexLock lock(&registry.mu);
  registry.ids[context] = std::move(id);
}

void UnregisterRequestId(const void* context) {
  Registry& registry = GetRegistry();
  absl::MutexLock lock(&registry.mu);
  registry.ids.erase(context);
}

}  // namespace internal

std::string RequestId(const grpc::ServerContextBase& context) {
  Registry& registry = GetRegistry();
  absl::MutexLock lock(&registry.mu);
  auto it = registry.ids.find(static_cast<const void*>(&context));
  return it == registry.ids.end() ? std::string() : it->second;
}

std::string NewRequestId() {
  thread_local absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen),
                         absl::Uniform<uint64_t>(gen));
}

bool IsAcceptableRequestId(absl::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7E) return false;
  }
  return true;
}

}  // namespace certplane::server
