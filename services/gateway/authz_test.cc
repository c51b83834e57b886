#include "services/gateway/authz.h"

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "certplane/gateway/v1/gateway.grpc.pb.h"
#include "certplane/inventory/v1/inventory.grpc.pb.h"
#include "certplane/issuance/v1/issuance.grpc.pb.h"
#include "certplane/vault/v1/vault.grpc.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "libs/testing/status_matchers.h"

namespace certplane::gateway {
namespace {

using ::certplane::testing::ValueOrDie;

const google::protobuf::ServiceDescriptor* Service(const char* name) {
  // Referencing one message per package links its descriptors in.
  (void)inventory::v1::GetCertificateRequest::descriptor();
  (void)issuance::v1::GetOrderRequest::descriptor();
  (void)vault::v1::GetKeyRequest::descriptor();
  (void)v1::WhoAmIRequest::descriptor();
  const auto* s =
      google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
          name);
  REQUIRE(s != nullptr);
  return s;
}

constexpr const char* kServices[] = {
    "certplane.inventory.v1.InventoryService",
    "certplane.issuance.v1.IssuanceService",
    "certplane.vault.v1.VaultService",
    "certplane.gateway.v1.GatewayService",
    "certplane.gateway.v1.AuditService",
};

TEST_CASE("EveryPublicRpcHasARuleAndEveryRuleAnRpc") {
  size_t methods = 0;
  for (const char* name : kServices) {
    const auto* service = Service(name);
    for (int i = 0; i < service->method_count(); ++i) {
      std::string full = absl::StrCat("/", service->full_name(), "/",
                                      service->method(i)->name());
      INFO(full);
      CHECK(MethodRules().contains(full));
      ++methods;
    }
  }
  CHECK(MethodRules().size() == methods);
}

TEST_CASE("EveryScopeFieldNamesAStringFieldOfTheRequest") {
  for (const auto& [method, rule] : MethodRules()) {
    absl::string_view m = method;
    m.remove_prefix(1);
    std::string service(m.substr(0, m.find('/')));
    std::string name(m.substr(m.find('/') + 1));
    const auto* descriptor = Service(service.c_str())->FindMethodByName(name);
    REQUIRE(descriptor != nullptr);
    std::unique_ptr<google::protobuf::Message> request(
        google::protobuf::MessageFactory::generated_factory()
            ->GetPrototype(descriptor->input_type())
            ->New());
    for (const Scope& scope : rule.scopes) {
      if (scope.field.empty()) continue;
      INFO(method << " field " << scope.field);
      CHECK(StringField(*request, scope.field).ok());
    }
  }
}

TEST_CASE("RolesGrantTheDocumentedPermissions") {
  CHECK(RoleGrants("viewer", Permission::kView));
  CHECK_FALSE(RoleGrants("viewer", Permission::kRequest));
  CHECK(RoleGrants("requester", Permission::kRequest));
  CHECK_FALSE(RoleGrants("requester", Permission::kApprove));
  CHECK(RoleGrants("approver", Permission::kApprove));
  CHECK(RoleGrants("approver", Permission::kCancel));
  CHECK_FALSE(RoleGrants("approver", Permission::kRequest));
  CHECK(RoleGrants("operator", Permission::kOperate));
  CHECK_FALSE(RoleGrants("operator", Permission::kApprove));
  CHECK_FALSE(RoleGrants("operator", Permission::kAdmin));
  CHECK(RoleGrants("admin", Permission::kAdmin));
  CHECK(RoleGrants("admin", Permission::kApprove));
}

TEST_CASE("TeamRolesDoNotReachOtherTeamsOrGlobalScope") {
  server::Caller c;
  c.identity = "user:bob";
  c.roles = {{"operator", "payments"}, {"viewer", "*"}};
  CHECK(Allows(c, Permission::kOperate, "payments"));
  CHECK_FALSE(Allows(c, Permission::kOperate, "search"));
  CHECK_FALSE(Allows(c, Permission::kOperate, "*"));
  CHECK(Allows(c, Permission::kView, "*"));
  CHECK(TeamsAllowed(c, Permission::kOperate) ==
        std::vector<std::string>{"payments"});
  CHECK(TeamsAllowed(c, Permission::kView) == std::vector<std::string>{"*"});
}

TEST_CASE("ListFiltersAreNarrowedToTheCallersTeams") {
  CHECK(NarrowFilterToTeams("", {"a"}) == "owner = \"a\"");
  CHECK(NarrowFilterToTeams("days_to_expiry < 30", {"a", "b"}) ==
        "(days_to_expiry < 30) AND (owner = \"a\" OR owner = \"b\")");
}

TEST_CASE("ExportingAKeyNeedsOperateAndIsAudited") {
  inventory::v1::ExportCertificateRequest request;
  request.set_format(inventory::v1::FULLCHAIN_PEM);
  const std::string method =
      "/certplane.inventory.v1.InventoryService/ExportCertificate";
  Rule pem = ValueOrDie(RuleFor(method, request));
  CHECK(pem.permission == Permission::kView);
  CHECK_FALSE(pem.audited);
  request.set_format(inventory::v1::PKCS12);
  Rule p12 = ValueOrDie(RuleFor(method, request));
  CHECK(p12.permission == Permission::kOperate);
  CHECK(p12.audited);
}

TEST_CASE("StringFieldsReadAndWriteNestedPaths") {
  inventory::v1::UpdateCertificateRequest request;
  REQUIRE(SetStringField(request, "certificate.owner", "payments").ok());
  CHECK(request.certificate().owner() == "payments");
  CHECK(ValueOrDie(StringField(request, "certificate.owner")) == "payments");
  CHECK_FALSE(StringField(request, "certificate.nope").ok());
  CHECK_FALSE(StringField(request, "update_mask").ok());
}

}  // namespace
}  // namespace certplane::gateway
