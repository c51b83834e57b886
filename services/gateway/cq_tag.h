// Completion-queue tags for the gateway's asynchronous gRPC calls: the
// thread that takes a tag from a queue calls its OnEvent(ok). A MemberTag
// turns one member function of a call object into such a tag, so a call
// can have a tag per operation without allocating.
#ifndef CERTPLANE_SERVICES_GATEWAY_CQ_TAG_H_
#define CERTPLANE_SERVICES_GATEWAY_CQ_TAG_H_

namespace certplane::gateway {

class CqTag {
 public:
  virtual void OnEvent(bool ok) = 0;

 protected:
  ~CqTag() = default;
};

template <typename T, void (T::*kHandler)(bool)>
class MemberTag final : public CqTag {
 public:
  explicit MemberTag(T* owner) : owner_(owner) {}
  void OnEvent(bool ok) override { (owner_->*kHandler)(ok); }

 private:
  T* owner_;
};

}  // namespace certplane::gateway

#endif  // CERTPLANE_SERVICES_GATEWAY_CQ_TAG_H_
