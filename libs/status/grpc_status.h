// The single place where certplane converts between absl::Status (what all
// certplane code returns) and grpc::Status (what goes on the wire).
//
// Codes map one to one (both follow google.rpc.Code) and the message is
// carried unchanged in both directions, so a client sees exactly the code and
// message a handler returned. Codes outside the canonical range become
// UNKNOWN, with the original message kept and the unrecognised code number
// appended, rather than being passed off as some other error.
//
// Stateless and thread-safe.
#ifndef CERTPLANE_LIBS_STATUS_GRPC_STATUS_H_
#define CERTPLANE_LIBS_STATUS_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace certplane {

// absl::Status -> grpc::Status, for returning from gRPC handlers.
grpc::Status ToGrpcStatus(const absl::Status& status);

// grpc::Status -> absl::Status, for the results of outgoing calls. An OK
// grpc::Status is always absl::OkStatus() (any message is dropped, as
// absl::OkStatus() holds none). grpc::Status::error_details(), when present,
// is kept as the payload kGrpcErrorDetailsPayloadUrl.
absl::Status FromGrpcStatus(const grpc::Status& status);

// Payload URL under which FromGrpcStatus keeps grpc error_details (a
// serialized google.rpc.Status) and ToGrpcStatus reads it back.
inline constexpr char kGrpcErrorDetailsPayloadUrl[] =
    "type.googleapis.com/google.rpc.Status";

grpc::StatusCode ToGrpcCode(absl::StatusCode code);
absl::StatusCode FromGrpcCode(grpc::StatusCode code);

}  // namespace certplane

#endif  // CERTPLANE_LIBS_STATUS_GRPC_STATUS_H_
