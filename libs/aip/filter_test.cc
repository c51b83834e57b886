#include "libs/aip/filter.h"

#include <catch2/catch.hpp>

#include "libs/testing/status_matchers.h"

namespace certplane::aip {
namespace {

TEST_CASE("EmptyFilterCompilesToTrue") {
  FieldSchema schema;
  db::SqlParams params;
  auto sql = CompileFilter("  ", schema, params);
  REQUIRE(sql.ok());
  CHECK(*sql == "1 = 1");
}

}  // namespace
}  // namespace certplane::aip
