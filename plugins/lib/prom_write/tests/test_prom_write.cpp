// The remote write body writer against independent decoders: protoc --decode_raw reads the
// protobuf, snappy's own Uncompress the compression.
#include <snappy.h>
#include <unistd.h>

#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <outpost_lib/prom_write.hpp>
#include <string>

#include "../../../../sdk/jsonl/testing/sink_testing.hpp"

using namespace outpost::lib::promrw;
using sink_testing::BatchBuilder;

namespace {

// protoc's own reading of a protobuf message with no schema.
std::string decode_raw(const std::string& body) {
  char path[] = "/tmp/outpost-promrw-XXXXXX";
  const int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size()));
  ::close(fd);
  const std::string cmd = std::string("protoc --decode_raw < ") + path + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int rc = ::pclose(p);
  ::unlink(path);
  INFO(out);
  REQUIRE(rc == 0);
  return out;
}

std::string hex_bits(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%016llx",
                static_cast<unsigned long long>(std::bit_cast<uint64_t>(v)));
  return b;
}

}  // namespace

TEST_CASE("metric names keep [a-zA-Z0-9_:] and label names [a-zA-Z0-9_]; no leading digit") {
  CHECK(sanitize_metric_name("rtt_ms") == "rtt_ms");
  CHECK(sanitize_metric_name("node:rtt.ms-max") == "node:rtt_ms_max");
  CHECK(sanitize_metric_name("9lives") == "_9lives");
  CHECK(sanitize_metric_name("") == "_");
  CHECK(sanitize_metric_name("t\xc3\xa9") == "t__");  // each byte of a UTF-8 letter
  CHECK(sanitize_label_name("if:name") == "if_name");
  CHECK(sanitize_label_name("0x") == "_0x");
  CHECK(sanitize_label_name("__name__") == "__name__");
  CHECK(sanitize_label_name("a b") == "a_b");
}

TEST_CASE("a WriteRequest as protoc --decode_raw reads it: labels 1, samples 2, value fixed64") {
  Series s{{{"__name__", "up"}, {"job", "x"}}, {{1700000000123, 1.5}, {1700000001123, -2}}};
  const Piece p{&s, 0, 2};
  const std::string text = decode_raw(encode_write_request(std::span<const Piece>(&p, 1)));
  const std::string want = std::string() +
                           "1 {\n"
                           "  1 {\n    1: \"__name__\"\n    2: \"up\"\n  }\n"
                           "  1 {\n    1: \"job\"\n    2: \"x\"\n  }\n"
                           "  2 {\n    1: " +
                           hex_bits(1.5) +
                           "\n    2: 1700000000123\n  }\n"
                           "  2 {\n    1: " +
                           hex_bits(-2) +
                           "\n    2: 1700000001123\n  }\n"
                           "}\n";
  CHECK(text == want);
}

TEST_CASE("negative timestamps are 10-byte varints; NaN is never the stale marker") {
  const double stale = std::bit_cast<double>(uint64_t{0x7ff0000000000002ULL});
  Series s{{{"__name__", "m"}},
           {{-1, stale},
            {0, std::numeric_limits<double>::infinity()},
            {1, -std::numeric_limits<double>::infinity()}}};
  const Piece p{&s, 0, 3};
  const std::string text = decode_raw(encode_write_request(std::span<const Piece>(&p, 1)));
  CHECK(text.find("1: 0x7ff8000000000001\n    2: 18446744073709551615\n") != std::string::npos);
  CHECK(text.find("1: 0x7ff0000000000000\n    2: 0\n") != std::string::npos);
  CHECK(text.find("1: 0xfff0000000000000\n    2: 1\n") != std::string::npos);
  CHECK(text.find("0x7ff0000000000002") == std::string::npos);
}

TEST_CASE("series: sanitised, sorted labels, external labels, collisions, grouped samples") {
  BatchBuilder b;
  // Out of time order, two series interleaved, a label colliding with another after sanitising.
  b.metric("rtt.ms", {{"device", "b"}, {"if.name", "eth1"}, {"if_name", "eth0"}}, 3, 3'000'999'999);
  b.metric("rtt.ms", {{"device", "a"}}, 1, 1'000'000'000);
  b.metric("rtt.ms", {{"device", "b"}, {"if.name", "eth1"}, {"if_name", "eth0"}}, 2, 2'000'000'000);
  b.metric("up", {{"__name__", "nope"}, {"site", "own"}, {"empty", ""}}, 1, 5'000'000);
  b.event("gw", "syslog", "hello", OUTPOST_SEV_INFO);
  const outpost_batch batch = b.batch();
  const Encoder enc({{"site", "site-1"}, {"engine.id", "e1"}}, 2000);
  EncodeStats st;
  const auto series = enc.group(batch, st);
  REQUIRE(series.size() == 3);
  CHECK(series[0].labels ==
        outpost::Labels{
            {"__name__", "rtt_ms"}, {"device", "a"}, {"engine_id", "e1"}, {"site", "site-1"}});
  // "if.name" and "if_name" both become if_name: the bytewise smaller original ("if.name") wins.
  CHECK(series[1].labels == outpost::Labels{{"__name__", "rtt_ms"},
                                            {"device", "b"},
                                            {"engine_id", "e1"},
                                            {"if_name", "eth1"},
                                            {"site", "site-1"}});
  REQUIRE(series[1].samples.size() == 2);
  CHECK(series[1].samples[0].time_ms == 2000);
  CHECK(series[1].samples[1].time_ms == 3000);  // ns truncated to the millisecond
  // The metric name wins over a label called __name__; the series' own label over an external.
  CHECK(series[2].labels ==
        outpost::Labels{{"__name__", "up"}, {"engine_id", "e1"}, {"site", "own"}});
  CHECK(st.labels_collided == 3);
  CHECK(st.labels_empty == 1);
  CHECK(st.events_ignored == 1);
}

TEST_CASE("a batch splits into requests of at most max_samples samples, nothing lost") {
  BatchBuilder b;
  for (int i = 0; i < 7; ++i) b.metric("a", {}, i, int64_t{i} * 1'000'000'000);
  for (int i = 0; i < 3; ++i) b.metric("b", {}, i, int64_t{i} * 1'000'000'000);
  const Encoder enc({}, 4);
  EncodeStats st;
  const auto bodies = enc.encode(b.batch(), st);
  REQUIRE(bodies.size() == 3);
  CHECK(st.samples == 10);
  std::size_t samples = 0;
  for (const auto& body : bodies) {
    const std::string text = decode_raw(body);
    std::size_t n = 0;
    for (std::size_t at = 0; (at = text.find("\n  2 {", at)) != std::string::npos; ++at) ++n;
    CHECK(n <= 4);
    samples += n;
  }
  CHECK(samples == 10);
}

TEST_CASE("snappy block format round-trips through snappy's own decoder") {
  BatchBuilder b;
  for (int i = 0; i < 500; ++i)
    b.metric("rtt_ms", {{"device", "d" + std::to_string(i % 7)}}, i * 0.25, int64_t{i} * 1'000'000);
  EncodeStats st;
  const auto bodies = Encoder({}, 2000).encode(b.batch(), st);
  REQUIRE(bodies.size() == 1);
  const std::string packed = snappy_compress(bodies[0]);
  CHECK(packed.size() < bodies[0].size());
  std::string back;
  REQUIRE(snappy::Uncompress(packed.data(), packed.size(), &back));
  CHECK(back == bodies[0]);
}
