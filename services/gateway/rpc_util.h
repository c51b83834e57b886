// Small helpers the gateway's fronts share: gRPC byte buffers to and from
// strings, and a method's descriptor from its full name.
#ifndef CERTPLANE_SERVICES_GATEWAY_RPC_UTIL_H_
#define CERTPLANE_SERVICES_GATEWAY_RPC_UTIL_H_

#include <string>

#include "absl/strings/string_view.h"
#include "grpcpp/support/byte_buffer.h"

namespace google::protobuf {
class MethodDescriptor;
}  // namespace google::protobuf

namespace certplane::gateway {

// The buffer's bytes ("" if it cannot be read).
std::string FlattenByteBuffer(const grpc::ByteBuffer& buffer);
grpc::ByteBuffer ToByteBuffer(const std::string& bytes);

// "/package.Service/Method" in the linked protos, or null.
const google::protobuf::MethodDescriptor* FindRpcMethod(
    absl::string_view full_method);

}  // namespace certplane::gateway

#endif  // CERTPLANE_SERVICES_GATEWAY_RPC_UTIL_H_
