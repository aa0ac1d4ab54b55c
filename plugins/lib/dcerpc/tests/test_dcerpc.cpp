#include <catch2/catch.hpp>
#include <outpost_lib/dcerpc.hpp>
namespace rpc = outpost::lib::dcerpc;
TEST_CASE("placeholder") { CHECK(rpc::ndr_syntax().major == 2); }
