// The one Catch2 main for every certplane test binary.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
