#include "services/gateway/audit_proto.h"

#include "google/protobuf/util/time_util.h"

namespace certplane::gateway {
namespace {

google::protobuf::Timestamp Ts(absl::Time t) {
  return google::protobuf::util::TimeUtil::MicrosecondsToTimestamp(
      absl::ToUnixMicros(t));
}
absl::Time FromTs(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixMicros(
      google::protobuf::util::TimeUtil::TimestampToMicroseconds(ts));
}

}  // namespace

v1::AuditEntry ToProto(const audit::AuditRecord& r) {
  v1::AuditEntry e;
  e.set_index(r.index);
  *e.mutable_time() = Ts(r.time);
  e.set_principal(r.principal);
  e.set_method(r.method);
  e.set_resource(r.resource);
  e.set_request_id(r.request_id);
  e.set_phase(r.phase);
  e.set_code(r.code);
  e.set_message(r.message);
  e.set_leaf_hash(r.leaf_hash);
  e.set_root_after(r.root_after);
  return e;
}

audit::AuditRecord FromProto(const v1::AuditEntry& e) {
  audit::AuditRecord r;
  r.index = e.index();
  r.time = FromTs(e.time());
  r.principal = e.principal();
  r.method = e.method();
  r.resource = e.resource();
  r.request_id = e.request_id();
  r.phase = e.phase();
  r.code = e.code();
  r.message = e.message();
  r.leaf_hash = e.leaf_hash();
  r.root_after = e.root_after();
  return r;
}

v1::Checkpoint ToProto(const audit::Checkpoint& c) {
  v1::Checkpoint p;
  p.set_tree_size(c.tree_size);
  p.set_root_hash(c.root);
  *p.mutable_time() = Ts(c.time);
  p.set_key_id(c.key_id);
  p.set_signature(c.signature);
  return p;
}

audit::Checkpoint FromProto(const v1::Checkpoint& p) {
  audit::Checkpoint c;
  c.tree_size = p.tree_size();
  c.root = p.root_hash();
  c.time = FromTs(p.time());
  c.key_id = p.key_id();
  c.signature = p.signature();
  return c;
}

}  // namespace certplane::gateway
