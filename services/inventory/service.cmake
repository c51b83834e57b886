# The inventory's import/export logic, gRPC service and binary (included by
# CMakeLists.txt; the store's targets come from store.cmake).

# Pure import logic: files in, a plan for the vault and the store out.
certplane_cc_library(
  NAME inventory_importer
  SRCS importer.cc
  HDRS importer.h inventory_store.h
  DEPS certplane::crypto absl::status absl::statusor absl::strings
       absl::time
)

certplane_cc_test(
  NAME inventory_importer_test
  SRCS importer_test.cc
  DEPS certplane::inventory_importer certplane::crypto_test_pki
)

# The gRPC handlers.
certplane_cc_library(
  NAME inventory_service
  SRCS inventory_service.cc
  HDRS inventory_service.h
  DEPS certplane::inventory_v1_proto certplane::vault_v1_proto
       certplane::inventory_importer certplane::crypto absl::status
       absl::statusor absl::synchronization absl::time absl::flat_hash_map
  PRIVATE_DEPS certplane::crypto_proto certplane::server
       certplane::grpc_status absl::strings gRPC::grpc++
)

# The binary and the service test need the SQL store (store.cmake).
if(NOT TARGET certplane_inventory_store)
  return()
endif()

certplane_cc_binary(
  NAME certplane_inventory
  OUTPUT_NAME certplane-inventory
  SRCS main.cc
  DEPS certplane::inventory_service certplane::inventory_store
       certplane::server certplane::json_log certplane::db absl::flags
       absl::status gRPC::grpc++
)

certplane_cc_test(
  NAME inventory_service_test
  SRCS inventory_service_test.cc
       ${PROJECT_SOURCE_DIR}/libs/server/testing/test_client.cc
  DEPS certplane::inventory_service certplane::inventory_store
       certplane::vault_service certplane::vault_store certplane::vault_kek
       certplane::vault_policy certplane::testing_db certplane::server
       certplane::crypto certplane::crypto_test_pki certplane::grpc_status
       certplane::testing_v1_proto certplane::service_testing gRPC::grpc++
       certplane_soci
  LABELS postgres
  TIMEOUT 900
)
# The binary's own test (migrations, flags, SIGTERM) runs the real binary.
target_compile_definitions(inventory_service_test PRIVATE
  CERTPLANE_INVENTORY_PATH="$<TARGET_FILE:certplane_inventory>")
add_dependencies(inventory_service_test certplane_inventory)
