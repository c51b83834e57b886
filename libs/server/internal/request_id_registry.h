// Request ids of in-progress RPCs, keyed by their server context. Written by
// the runtime's interceptor, read by RequestId(). Internal to libs/server.
#ifndef CERTPLANE_LIBS_SERVER_INTERNAL_REQUEST_ID_REGISTRY_H_
#define CERTPLANE_LIBS_SERVER_INTERNAL_REQUEST_ID_REGISTRY_H_

#include <string>

namespace certplane::server::internal {

void RegisterRequestId(const void* context, std::string id);
void UnregisterRequestId(const void* context);

}  // namespace certplane::server::internal

#endif  // CERTPLANE_LIBS_SERVER_INTERNAL_REQUEST_ID_REGISTRY_H_
