// The clickhouse sink without a ClickHouse server: RowBinary rows byte by byte, the schema and
// its checks, configuration refusals, and how the sink classifies a server's answers, against a
// scripted HTTP server on loopback that answers as ClickHouse 18.16 does. The real server is in
// clickhouse_e2e.sh.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <functional>
#include <outpost/testing.hpp>
#include <string>
#include <thread>
#include <vector>

#include "row_binary.hpp"
#include "schema.hpp"

namespace {

using namespace outpost::clickhouse;
using outpost::testing::FakeHost;
using Settings = std::vector<std::pair<std::string, std::string>>;

const outpost_plugin_descriptor* plugin() {
  static const outpost_plugin_descriptor* d =
      outpost::testing::open_plugin(OUTPOST_TEST_PLUGIN_DIR "/outpost_clickhouse.so");
  return d;
}

outpost_flow v4_flow() {
  outpost_flow f{};
  f.start_ns = 1'700'000'000'000'000'000;
  f.end_ns = 1'700'000'005'500'000'000;
  const uint8_t src[4] = {10, 1, 2, 3}, dst[4] = {192, 0, 2, 9}, exp[4] = {127, 0, 0, 1};
  std::memcpy(f.src_addr, src, 4);
  std::memcpy(f.dst_addr, dst, 4);
  std::memcpy(f.exporter_addr, exp, 4);
  f.family = 4;
  f.protocol = 6;
  f.src_port = 0x1234;
  f.dst_port = 443;
  f.bytes = 1500;
  f.packets = 3;
  f.sampling_rate = 1;
  return f;
}

uint64_t le(const std::string& b, std::size_t at, std::size_t n) {
  uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(b[at + i])} << (8 * i);
  return v;
}

// A loopback HTTP server answering each request with what script(request) returns (a whole
// response, status line first). One connection at a time; enough for the sink's one handle.
class ScriptedServer {
 public:
  explicit ScriptedServer(std::function<std::string(const std::string&)> script)
      : script_(std::move(script)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 8);
    thread_ = std::thread([this] { serve(); });
  }
  ~ScriptedServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> requests() {
    std::lock_guard g(mu_);
    return requests_;
  }

 private:
  void serve() {
    while (!stop_) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string in;
      char buf[65536];
      while (true) {
        const auto head_end = in.find("\r\n\r\n");
        if (head_end != std::string::npos) {
          std::size_t body_len = 0;
          const auto cl = in.find("Content-Length: ");
          if (cl != std::string::npos && cl < head_end) body_len = std::stoul(in.substr(cl + 16));
          if (in.size() >= head_end + 4 + body_len) {
            const std::string request = in.substr(0, head_end + 4 + body_len);
            in.erase(0, request.size());
            {
              std::lock_guard g(mu_);
              requests_.push_back(request);
            }
            const std::string answer = script_(request);
            if (::write(c, answer.data(), answer.size()) < 0) break;
            continue;
          }
        }
        const ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
      }
      ::close(c);
    }
  }
  std::function<std::string(const std::string&)> script_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

std::string http(int status, const std::string& body, const std::string& extra = {}) {
  return "HTTP/1.1 " + std::to_string(status) +
         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + extra + "\r\n" + body;
}

// ClickHouse 18.16 as far as the sink asks: its version, DDL, a table that fits, no repeats;
// inserts answered by `insert`.
std::function<std::string(const std::string&)> clickhouse_like(std::string insert_answer) {
  return [insert_answer](const std::string& req) {
    if (req.find("query=INSERT") != std::string::npos) return insert_answer;
    if (req.find("version()") != std::string::npos) return http(200, "18.16.1\n");
    if (req.find("system.columns") != std::string::npos) {
      const bool flows = req.find("table = 'flows'") != std::string::npos;
      std::string cols;
      for (const auto& c : columns_of(flows ? TableKind::flows : TableKind::rollups))
        cols += std::string(c.name) + "\t" + std::string(c.type) + "\n";
      return http(200, cols);
    }
    if (req.find("count()") != std::string::npos) return http(200, "0\n");
    return http(200, "");
  };
}

outpost_status write_flows(FakeHost& h) {
  const outpost_flow f = v4_flow();
  outpost_batch b = outpost_batch_make();
  b.flows = &f;
  b.flow_count = 1;
  return h.write(b);
}

}  // namespace

TEST_CASE("a flow row is RowBinary in the schema's column order") {
  EncodedRows rows;
  append_flow(rows, v4_flow(), 0x0102030405060708ull, 42);
  // DateTime 4, two Int64, three FixedString(16), 2 x UInt8, 2 x UInt16, 2 x UInt8, 3 x UInt32,
  // three UInt64.
  REQUIRE(rows.body.size() == 4 + 16 + 48 + 2 + 4 + 2 + 12 + 24);
  CHECK(rows.rows == 1);
  CHECK(le(rows.body, 0, 4) == 1'700'000'005u);  // the end, to the second
  CHECK(rows.min_time == 1'700'000'005u);
  CHECK(static_cast<int64_t>(le(rows.body, 4, 8)) == v4_flow().start_ns);
  // the exporter, then src: IPv4 as ::ffff:a.b.c.d
  const std::string src = rows.body.substr(4 + 16 + 16, 16);
  CHECK(src == std::string(10, '\0') + "\xff\xff" + std::string("\x0a\x01\x02\x03", 4));
  const std::size_t after_addrs = 4 + 16 + 48;
  CHECK(le(rows.body, after_addrs, 1) == 4);               // family
  CHECK(le(rows.body, after_addrs + 1, 1) == 6);           // protocol
  CHECK(le(rows.body, after_addrs + 2, 2) == 0x1234);      // src_port, little-endian
  CHECK(le(rows.body, rows.body.size() - 24, 8) == 1500);  // bytes
  CHECK(le(rows.body, rows.body.size() - 8, 8) == 0x0102030405060708ull);  // batch
}

TEST_CASE("a flow without times takes the writer's clock") {
  outpost_flow f = v4_flow();
  f.start_ns = f.end_ns = 0;
  EncodedRows rows;
  append_flow(rows, f, 1, 77);
  CHECK(le(rows.body, 0, 4) == 77);
}

TEST_CASE("a rollup row: known labels in their columns, the rest in the arrays") {
  const std::string name = "flow_interface_bytes";
  const std::vector<std::pair<std::string, std::string>> labels = {
      {"exporter", "127.0.0.1"}, {"ifindex", "3"}, {"direction", "in"}, {"site", "hq"}};
  std::vector<outpost_kv> kv;
  for (const auto& [k, v] : labels) kv.push_back({outpost::to_c(k), outpost::to_c(v)});
  outpost_metric m{outpost::to_c(name),       kv.data(), kv.size(), 1234.5,
                   1'700'000'000'000'000'000, 0,         0};
  EncodedRows rows;
  append_rollup(rows, m, 9, 1);
  std::string expected;
  expected += std::string("\x00\xf1\x53\x65", 4);  // 1'700'000'000 LE
  expected += static_cast<char>(name.size()) + name;
  expected +=
      "\x09"
      "127.0.0.1"
      "\x01"
      "3"
      "\x02"
      "in";
  expected += std::string(4, '\0');  // src, dst, protocol, port: empty
  double v = 1234.5;
  char vb[8];
  std::memcpy(vb, &v, 8);
  expected.append(vb, 8);
  expected += "\x01\x04site\x01\x02hq";
  expected += std::string("\x09\0\0\0\0\0\0\0", 8);
  CHECK(rows.body == expected);
}

TEST_CASE("the tables: MergeTree by day, ordered by time and exporter, TTL on request") {
  const std::string sql = create_table_sql("net", "flows", TableKind::flows, 0);
  CHECK(sql.rfind("CREATE TABLE IF NOT EXISTS net.flows (time DateTime, start_ns Int64", 0) == 0);
  CHECK(sql.find("ENGINE = MergeTree PARTITION BY toDate(time) ORDER BY (time, exporter)") !=
        std::string::npos);
  CHECK(sql.find("TTL") == std::string::npos);
  CHECK(create_table_sql("net", "r", TableKind::rollups, 30).find("TTL time + INTERVAL 30 DAY") !=
        std::string::npos);
  CHECK(column_list(TableKind::rollups).rfind("(time, name, exporter,", 0) == 0);
}

TEST_CASE("a table that lacks a column or types one otherwise does not fit") {
  std::vector<std::pair<std::string, std::string>> cols;
  for (const auto& c : columns_of(TableKind::flows))
    cols.emplace_back(std::string(c.name), std::string(c.type));
  cols.emplace_back("extra", "String");  // the user's own column, with its default: fine
  CHECK(schema_mismatches(TableKind::flows, cols).empty());
  cols[15].second = "UInt32";    // bytes
  cols.erase(cols.begin() + 2);  // end_ns
  const auto m = schema_mismatches(TableKind::flows, cols);
  REQUIRE(m.size() == 2);
  CHECK(m[0] == "no column end_ns (Int64)");
  CHECK(m[1] == "column bytes is UInt32, not UInt64");
}

TEST_CASE("server versions and names") {
  CHECK(parse_version("18.16.1\n")->major == 18);
  CHECK_FALSE(parse_version("18.16.1")->has_table_ttl());
  CHECK(parse_version("19.6.2.11")->has_table_ttl());
  CHECK(parse_version("23.8")->has_table_ttl());
  CHECK_FALSE(parse_version("garbage"));
  CHECK(valid_identifier("flows_2"));
  CHECK_FALSE(valid_identifier("flows; DROP TABLE x"));
  CHECK_FALSE(valid_identifier("2flows"));
  CHECK_FALSE(valid_identifier(""));
}

TEST_CASE("settings that cannot work are refused at create") {
  for (const Settings& s : std::vector<Settings>{{{"url", "ftp://127.0.0.1:8123"}},
                                                 {{"database", "a-b"}},
                                                 {{"flows_table", "x y"}},
                                                 {{"flows_table", "t"}, {"rollups_table", "t"}},
                                                 {{"ttl_days", "-1"}},
                                                 {{"client_cert", "c.pem"}}}) {
    FakeHost h(plugin());
    CHECK(h.create(s) == OUTPOST_E_CONFIG);
  }
}

TEST_CASE("metrics other than rollups, and events, are counted and ignored: nothing is sent") {
  FakeHost h(plugin());
  REQUIRE(h.create({{"url", "http://127.0.0.1:9"}, {"stats_interval", "1h"}}) == OUTPOST_OK);
  REQUIRE(h.start() == OUTPOST_OK);
  const std::string name = "cpu_load";
  outpost_metric m{outpost::to_c(name), nullptr, 0, 1.0, 1, 0, 0};
  outpost_event e{};
  outpost_batch b = outpost_batch_make();
  b.metrics = &m;
  b.metric_count = 1;
  b.events = &e;
  b.event_count = 1;
  CHECK(h.write(b) == OUTPOST_OK);  // port 9 is closed: a request would have failed
  REQUIRE(h.stop() == OUTPOST_OK);
  CHECK(h.find("outpost_clickhouse_ignored_total", {{"kind", "metric"}}).at(0).value == 1);
  CHECK(h.find("outpost_clickhouse_ignored_total", {{"kind", "event"}}).at(0).value == 1);
}

TEST_CASE("nothing listening: retry, the spool keeps the batch") {
  FakeHost h(plugin());
  REQUIRE(h.create({{"url", "http://127.0.0.1:9"}}) == OUTPOST_OK);
  CHECK(OUTPOST_STATUS_CLASS(write_flows(h)) == OUTPOST_CLASS_RETRY);
}

TEST_CASE("the server's answers, classified as the spool acts on them") {
  struct Case {
    std::string answer;
    outpost_status expected;
  };
  const std::vector<Case> cases = {
      {http(200, ""), OUTPOST_OK},
      // 18.16 answers a wrong password with 401 and code 193: the operator's to fix, data kept
      {http(401, "Code: 193, e.displayText() = DB::Exception: Wrong password for user x"),
       OUTPOST_E_AUTH},
      {http(500, "Code: 497, e.displayText() = DB::Exception: default: Not enough privileges"),
       OUTPOST_E_AUTH},
      // rows that do not fit the table: 18.16 says 500 with a parse or column code: rejected
      {http(500, "Code: 33, e.displayText() = DB::Exception: Cannot read all data."),
       OUTPOST_E_INVALID_ARGUMENT},
      {http(500, "Code: 16, e.displayText() = DB::Exception: No such column x in table t"),
       OUTPOST_E_INVALID_ARGUMENT},
      {http(400, "Code: 62, e.displayText() = DB::Exception: Syntax error"),
       OUTPOST_E_INVALID_ARGUMENT},
      // newer servers word it "Code: N. DB::Exception: ..."
      {http(500, "Code: 27. DB::Exception: Cannot parse input: expected '\\t' before: 'x'"),
       OUTPOST_E_INVALID_ARGUMENT},
      // the server's own trouble passes: retry
      {http(500, "Code: 241, e.displayText() = DB::Exception: Memory limit exceeded"),
       OUTPOST_E_UNAVAILABLE},
      {http(500, "Code: 252, e.displayText() = DB::Exception: Too many parts"),
       OUTPOST_E_UNAVAILABLE},
      {http(502, "bad gateway"), OUTPOST_E_UNAVAILABLE},
      {http(503, "busy", "Retry-After: 7\r\n"), OUTPOST_E_BUSY},
      // the table went away: created again on the next offer
      {http(404, "Code: 60, e.displayText() = DB::Exception: Table default.flows doesn't exist."),
       OUTPOST_E_UNAVAILABLE},
  };
  for (const auto& c : cases) {
    ScriptedServer server(clickhouse_like(c.answer));
    FakeHost h(plugin());
    REQUIRE(h.create({{"url", server.url()}, {"user", "outpost"}}) == OUTPOST_OK);
    INFO(c.answer);
    CHECK(write_flows(h) == c.expected);
    const auto reqs = server.requests();
    REQUIRE(!reqs.empty());
    CHECK(reqs.front().find("X-ClickHouse-User: outpost") != std::string::npos);
  }
}

TEST_CASE("without create_tables a missing table is the operator's to create; the data waits") {
  ScriptedServer server([](const std::string& req) {
    if (req.find("version()") != std::string::npos) return http(200, "18.16.1\n");
    return http(200, "");  // system.columns: no rows, no such table
  });
  FakeHost h(plugin());
  REQUIRE(h.create({{"url", server.url()}, {"create_tables", "false"}}) == OUTPOST_OK);
  CHECK(write_flows(h) == OUTPOST_E_NOT_FOUND);
  for (const auto& r : server.requests()) CHECK(r.find("CREATE") == std::string::npos);
}

TEST_CASE("a batch offered again is looked for and not inserted twice") {
  std::atomic<int> inserts{0};
  ScriptedServer server([&](const std::string& req) {
    if (req.find("count()") != std::string::npos) return http(200, "1\n");  // already there
    if (req.find("query=INSERT") != std::string::npos) ++inserts;
    return clickhouse_like(http(200, ""))(req);
  });
  FakeHost h(plugin());
  REQUIRE(h.create({{"url", server.url()}}) == OUTPOST_OK);
  CHECK(write_flows(h) == OUTPOST_OK);  // the first batch after a start may be a repeat
  CHECK(inserts == 0);
}

TEST_CASE("ttl_days on a server without table TTL is the operator's to change") {
  ScriptedServer server(clickhouse_like(http(200, "")));
  FakeHost h(plugin());
  REQUIRE(h.create({{"url", server.url()}, {"ttl_days", "30"}}) == OUTPOST_OK);
  CHECK(write_flows(h) == OUTPOST_E_CONFIG);
}
