#include "services/gateway/rpc_util.h"

#include <utility>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"

namespace certplane::gateway {

std::string FlattenByteBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const grpc::Slice& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

const google::protobuf::MethodDescriptor* FindRpcMethod(
    absl::string_view full_method) {
  if (!absl::ConsumePrefix(&full_method, "/")) return nullptr;
  std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(full_method, absl::MaxSplits('/', 1));
  const google::protobuf::ServiceDescriptor* service =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          std::string(parts.first));
  if (service == nullptr) return nullptr;
  return service->FindMethodByName(std::string(parts.second));
}

}  // namespace certplane::gateway
