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
