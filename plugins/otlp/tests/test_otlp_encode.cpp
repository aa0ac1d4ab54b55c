// The hand-written protobuf writer against byte sequences worked out from the protobuf encoding
// rules, and the OTLP encoder's grouping, severities and partial_success reading. What the
// encoder produces as a whole is decoded by protoc in tests/otlp_e2e.sh.
#include <catch2/catch.hpp>
#include <string>

#include "otlp_encode.hpp"
#include "protobuf_writer.hpp"

using outpost::otlp::ProtoWriter;

namespace {

std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    if (!out.empty()) out += ' ';
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

outpost_str str(const char* s) { return outpost_str{s, std::char_traits<char>::length(s)}; }

}  // namespace

TEST_CASE("a varint field of 150 is tag 08 then 96 01", "[protobuf]") {
  ProtoWriter w;
  w.uint_field(1, 150);
  CHECK(hex(w.bytes()) == "08 96 01");
}

TEST_CASE("varints take 1, 2, 5 and 10 bytes at their boundaries", "[protobuf]") {
  ProtoWriter a, b, c, d;
  a.varint(127);
  b.varint(128);
  c.varint(0xFFFFFFFFu);
  d.varint(~uint64_t{0});
  CHECK(hex(a.bytes()) == "7f");
  CHECK(hex(b.bytes()) == "80 01");
  CHECK(hex(c.bytes()) == "ff ff ff ff 0f");
  CHECK(hex(d.bytes()) == "ff ff ff ff ff ff ff ff ff 01");
}

TEST_CASE("a negative int64 is ten bytes of two's complement", "[protobuf]") {
  ProtoWriter w;
  w.int_field(3, -1);
  CHECK(hex(w.bytes()) == "18 ff ff ff ff ff ff ff ff ff 01");
}

TEST_CASE("a string field is tag, length and the bytes", "[protobuf]") {
  ProtoWriter w;
  w.bytes_field(2, "testing");
  CHECK(hex(w.bytes()) == "12 07 74 65 73 74 69 6e 67");
}

TEST_CASE("fixed64 and double are eight little-endian bytes", "[protobuf]") {
  ProtoWriter w;
  w.fixed64_field(3, 0x0102030405060708ull);
  w.double_field(4, 1.0);
  CHECK(hex(w.bytes()) == "19 08 07 06 05 04 03 02 01 21 00 00 00 00 00 00 f0 3f");
}

TEST_CASE("field numbers above 15 take a two-byte tag", "[protobuf]") {
  ProtoWriter w;
  w.bool_field(16, true);
  CHECK(hex(w.bytes()) == "80 01 01");
}

TEST_CASE("a nested message gets the shortest length prefix", "[protobuf]") {
  ProtoWriter w;
  w.begin(3);
  w.uint_field(1, 150);
  w.end();
  CHECK(hex(w.bytes()) == "1a 03 08 96 01");
  CHECK(w.depth() == 0);
}

TEST_CASE("empty and deeply nested messages", "[protobuf]") {
  ProtoWriter w;
  w.begin(1);
  w.begin(2);
  w.begin(3);
  w.end();
  w.end();
  w.end();
  w.begin(4);
  w.end();
  CHECK(hex(w.bytes()) == "0a 04 12 02 1a 00 22 00");
}

TEST_CASE("a nested message over 127 bytes has a two-byte length", "[protobuf]") {
  ProtoWriter w;
  w.begin(1);
  w.bytes_field(2, std::string(200, 'x'));  // 12 c8 01 + 200 bytes = 203
  w.end();
  w.uint_field(3, 1);
  const std::string& b = w.bytes();
  REQUIRE(b.size() == 1 + 2 + 203 + 2);
  CHECK(hex(b.substr(0, 6)) == "0a cb 01 12 c8 01");
  CHECK(hex(b.substr(b.size() - 2)) == "18 01");
}

TEST_CASE("metrics of one name share one Metric, counters are monotonic cumulative sums",
          "[otlp]") {
  outpost_kv l1{str("device"), str("a")};
  outpost_metric ms[3] = {};
  ms[0] = outpost_metric{str("up"), &l1, 1, 1.0, 100, OUTPOST_METRIC_GAUGE, 0};
  ms[1] = outpost_metric{str("bytes_total"), nullptr, 0, 5.0, 0, OUTPOST_METRIC_COUNTER, 0};
  ms[2] = outpost_metric{str("up"), nullptr, 0, 0.0, 200, OUTPOST_METRIC_GAUGE, 0};
  outpost_batch b = outpost_batch_make();
  b.metrics = ms;
  b.metric_count = 3;
  outpost::otlp::Resource r;
  r.attributes = {{"service.name", "outpost"}};
  const auto e = outpost::otlp::encode_metrics(r, b, 999);
  CHECK(e.items == 3);
  const std::string& s = e.body;
  // "up" is named once, before "bytes_total"; the counter's point got now (999 = e7 03 ...).
  const auto up = s.find("\x0a\x02up");
  const auto bytes = s.find(
      "\x0a\x0b"
      "bytes_total");
  REQUIRE(up != std::string::npos);
  REQUIRE(bytes != std::string::npos);
  CHECK(up < bytes);
  CHECK(s.find("\x0a\x02up", up + 1) == std::string::npos);
  // Sum { aggregation_temporality = 2 (CUMULATIVE), is_monotonic = true }
  CHECK(s.find(std::string("\x10\x02\x18\x01", 4)) != std::string::npos);
  CHECK(s.find(std::string("\x19\xe7\x03\0\0\0\0\0\0", 9)) != std::string::npos);
}

TEST_CASE("an empty batch encodes no request", "[otlp]") {
  const outpost_batch b = outpost_batch_make();
  CHECK(outpost::otlp::encode_metrics({}, b, 1).body.empty());
  CHECK(outpost::otlp::encode_logs({}, b, 1).body.empty());
}

TEST_CASE("syslog severities map onto the OTLP severity ranges", "[otlp]") {
  using outpost::otlp::severity_number;
  CHECK(severity_number(OUTPOST_SEV_EMERGENCY) == 24);
  CHECK(severity_number(OUTPOST_SEV_ALERT) == 23);
  CHECK(severity_number(OUTPOST_SEV_CRITICAL) == 21);
  CHECK(severity_number(OUTPOST_SEV_ERROR) == 17);
  CHECK(severity_number(OUTPOST_SEV_WARNING) == 13);
  CHECK(severity_number(OUTPOST_SEV_NOTICE) == 10);
  CHECK(severity_number(OUTPOST_SEV_INFO) == 9);
  CHECK(severity_number(OUTPOST_SEV_DEBUG) == 5);
  CHECK(severity_number(42) == 0);
  CHECK(std::string(outpost::otlp::severity_text(OUTPOST_SEV_WARNING)) == "WARNING");
}

TEST_CASE("partial_success is read from an export response", "[otlp]") {
  ProtoWriter w;
  w.begin(1);
  w.int_field(1, 7);
  w.bytes_field(2, "bad points");
  w.end();
  const auto p = outpost::otlp::decode_partial_success(w.bytes());
  CHECK(p.rejected == 7);
  CHECK(p.message == "bad points");
  CHECK(outpost::otlp::decode_partial_success("").rejected == 0);
  CHECK(outpost::otlp::decode_partial_success("\x0a\x7f").rejected == 0);  // truncated
}
