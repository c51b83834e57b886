# The inventory's storage: schema migrations and the SOCI store over libs/db
# (see inventory_store.h, sql_inventory_store.h, migrations.h).
certplane_cc_library(
  NAME inventory_store
  SRCS sql_inventory_store.cc migrations.cc
  HDRS inventory_store.h sql_inventory_store.h migrations.h
  DEPS certplane::db certplane::aip absl::status absl::statusor absl::strings
       absl::time absl::span
  PRIVATE_DEPS certplane_soci absl::random_random
)

certplane_cc_test(
  NAME inventory_store_test
  SRCS sql_inventory_store_test.cc
  DEPS certplane::inventory_store certplane::testing_db certplane_soci
       absl::strings absl::time
  LABELS postgres
  TIMEOUT 600
)
