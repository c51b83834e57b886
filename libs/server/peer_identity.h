// Who is calling: the authenticated identity of an RPC's client.
//
// With mTLS (the default for certplane services) the identity is the client
// certificate's subject alternative names, or its common name when it has
// none, as gRPC's auth context reports them. Stateless and thread-safe.
#ifndef CERTPLANE_LIBS_SERVER_PEER_IDENTITY_H_
#define CERTPLANE_LIBS_SERVER_PEER_IDENTITY_H_

#include <string>
#include <vector>

namespace grpc {
class ServerContextBase;
}  // namespace grpc

namespace certplane::server {

// Every identity value of the authenticated peer; empty when the peer is not
// authenticated (plaintext development servers).
std::vector<std::string> PeerIdentities(const grpc::ServerContextBase& context);

// The identities joined with ","; "" when unauthenticated. For logs.
std::string PeerIdentity(const grpc::ServerContextBase& context);

}  // namespace certplane::server

#endif  // CERTPLANE_LIBS_SERVER_PEER_IDENTITY_H_
