// Conversions between the audit log's records (libs/audit) and the
// gateway's API messages, for the gateway and `certplane audit`.
#ifndef CERTPLANE_SERVICES_GATEWAY_AUDIT_PROTO_H_
#define CERTPLANE_SERVICES_GATEWAY_AUDIT_PROTO_H_

#include "certplane/gateway/v1/gateway.pb.h"
#include "libs/audit/audit_log.h"

namespace certplane::gateway {

v1::AuditEntry ToProto(const audit::AuditRecord& record);
audit::AuditRecord FromProto(const v1::AuditEntry& entry);
v1::Checkpoint ToProto(const audit::Checkpoint& checkpoint);
audit::Checkpoint FromProto(const v1::Checkpoint& checkpoint);

}  // namespace certplane::gateway

#endif  // CERTPLANE_SERVICES_GATEWAY_AUDIT_PROTO_H_
