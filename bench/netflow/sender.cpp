// bench_netflow_sender: a fast, paced NetFlow v5 / v9 / IPFIX exporter for the netflow benchmark.
//
// Every packet is built before the clock starts (a pool of distinct data packets; only the
// header's sequence number is patched per send), sent with sendmmsg in bursts, paced to a target
// packets/s, for a fixed number of data packets. The contents are deterministic, so a collector
// that lost nothing reports exactly the record count printed at the end. Every record carries
// packets=1, so a collector's packet total equals its record count as well.
//
//   bench_netflow_sender --to 127.0.0.1:PORT --version 5|9|10 --packets N --pps R
//                        [--records K] [--template-every M] [--burst B] [--pool P]
//
// v9 and IPFIX: one template packet first, then data packets, and the template again every M
// data packets (a router does it on a timer; the count keeps runs identical). Template packets
// are sent on top of the N data packets and carry no flow records.
//
// Prints one line: sent version=V packets=N template_packets=T records=X seconds=S pps=P
// Loopback only: the destination must be in 127.0.0.0/8.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "bench_netflow_sender: %s\n", msg.c_str());
  std::exit(2);
}

struct Writer {
  std::vector<uint8_t>& b;
  void u8(uint32_t v) { b.push_back(static_cast<uint8_t>(v)); }
  void u16(uint32_t v) {
    u8(v >> 8);
    u8(v);
  }
  void u32(uint32_t v) {
    u16(v >> 16);
    u16(v & 0xFFFF);
  }
  void u64(uint64_t v) {
    u32(static_cast<uint32_t>(v >> 32));
    u32(static_cast<uint32_t>(v));
  }
};

void put32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}
void put16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// One flow, derived from its index in the pool: distinct 5-tuples, each always seen on the same
// interface (so a deduplicating collector counts every record).
struct Flow {
  uint32_t src, dst, nexthop;
  uint16_t in_if, out_if;
  uint32_t packets, bytes;
  uint16_t sport, dport;
  uint8_t flags, proto, tos, src_mask, dst_mask;
  uint16_t src_as, dst_as;
};

Flow make_flow(uint32_t g) {
  static constexpr uint16_t kPorts[] = {80, 443, 53, 22, 123, 8080, 3306, 161};
  Flow f{};
  f.src = (198u << 24) | (18u << 16) | (g & 0xFFFF);            // 198.18.0.0/16 (RFC 2544)
  f.dst = (198u << 24) | (19u << 16) | ((g * 7919u) & 0xFFFF);  // 198.19.0.0/16
  f.nexthop = (198u << 24) | (18u << 16) | (255u << 8) | 1u;
  f.in_if = static_cast<uint16_t>(1 + g % 8);
  f.out_if = static_cast<uint16_t>(9 + g % 8);
  f.packets = 1;
  f.bytes = 40 + (g * 37u) % 1460;
  f.sport = static_cast<uint16_t>(1024 + g % 60000);
  f.dport = kPorts[g % 8];
  f.proto = (f.dport == 53 || f.dport == 123 || f.dport == 161) ? 17 : 6;
  f.flags = f.proto == 6 ? 0x1b : 0;
  f.tos = 0;
  f.src_as = static_cast<uint16_t>(64512 + g % 100);
  f.dst_as = static_cast<uint16_t>(64612 + g % 100);
  f.src_mask = 16;
  f.dst_mask = 24;
  return f;
}

constexpr uint32_t kUptimeMs = 3'600'000;  // exporter up for an hour
constexpr uint16_t kTemplateId = 256;

// --- NetFlow v5 -------------------------------------------------------------------------------
std::vector<uint8_t> v5_packet(uint32_t first, int k, uint32_t unix_secs) {
  std::vector<uint8_t> b;
  Writer w{b};
  w.u16(5);
  w.u16(static_cast<uint32_t>(k));
  w.u32(kUptimeMs);
  w.u32(unix_secs);
  w.u32(0);
  w.u32(0);  // flow_sequence, patched per send
  w.u8(0);
  w.u8(0);
  w.u16(0);
  for (int i = 0; i < k; ++i) {
    const Flow f = make_flow(first + static_cast<uint32_t>(i));
    const uint32_t start = kUptimeMs - 10'000 + (first + static_cast<uint32_t>(i)) % 5000;
    w.u32(f.src);
    w.u32(f.dst);
    w.u32(f.nexthop);
    w.u16(f.in_if);
    w.u16(f.out_if);
    w.u32(f.packets);
    w.u32(f.bytes);
    w.u32(start);
    w.u32(start + 1000);
    w.u16(f.sport);
    w.u16(f.dport);
    w.u8(0);
    w.u8(f.flags);
    w.u8(f.proto);
    w.u8(f.tos);
    w.u16(f.src_as);
    w.u16(f.dst_as);
    w.u8(f.src_mask);
    w.u8(f.dst_mask);
    w.u16(0);
  }
  return b;
}

// --- NetFlow v9 -------------------------------------------------------------------------------
struct Field {
  uint16_t id, len;
};
constexpr Field kV9Fields[] = {{8, 4}, {12, 4}, {15, 4}, {10, 2}, {14, 2}, {2, 4},
                               {1, 4}, {22, 4}, {21, 4}, {7, 2},  {11, 2}, {6, 1},
                               {4, 1}, {5, 1},  {16, 2}, {17, 2}, {9, 1},  {13, 1}};
// IPFIX: 32-bit interfaces and ASes, 64-bit counters, absolute millisecond timestamps.
constexpr Field kIpfixFields[] = {{8, 4}, {12, 4},  {15, 4},  {10, 4}, {14, 4}, {2, 8},
                                  {1, 8}, {152, 8}, {153, 8}, {7, 2},  {11, 2}, {6, 1},
                                  {4, 1}, {5, 1},   {16, 4},  {17, 4}, {9, 1},  {13, 1}};

template <std::size_t N>
void template_set(Writer& w, uint16_t set_id, const Field (&fields)[N]) {
  w.u16(set_id);
  w.u16(static_cast<uint32_t>(4 + 4 + 4 * N));
  w.u16(kTemplateId);
  w.u16(static_cast<uint32_t>(N));
  for (const auto& f : fields) {
    w.u16(f.id);
    w.u16(f.len);
  }
}

std::vector<uint8_t> v9_template_packet(uint32_t unix_secs) {
  std::vector<uint8_t> b;
  Writer w{b};
  w.u16(9);
  w.u16(1);
  w.u32(kUptimeMs);
  w.u32(unix_secs);
  w.u32(0);
  w.u32(1);
  template_set(w, 0, kV9Fields);
  return b;
}

std::vector<uint8_t> v9_packet(uint32_t first, int k, uint32_t unix_secs) {
  std::vector<uint8_t> b;
  Writer w{b};
  w.u16(9);
  w.u16(static_cast<uint32_t>(k));
  w.u32(kUptimeMs);
  w.u32(unix_secs);
  w.u32(0);  // sequence (export packets), patched per send
  w.u32(1);  // source id
  const std::size_t set_at = b.size();
  w.u16(kTemplateId);
  w.u16(0);
  for (int i = 0; i < k; ++i) {
    const Flow f = make_flow(first + static_cast<uint32_t>(i));
    const uint32_t start = kUptimeMs - 10'000 + (first + static_cast<uint32_t>(i)) % 5000;
    w.u32(f.src);
    w.u32(f.dst);
    w.u32(f.nexthop);
    w.u16(f.in_if);
    w.u16(f.out_if);
    w.u32(f.packets);
    w.u32(f.bytes);
    w.u32(start);
    w.u32(start + 1000);
    w.u16(f.sport);
    w.u16(f.dport);
    w.u8(f.flags);
    w.u8(f.proto);
    w.u8(f.tos);
    w.u16(f.src_as);
    w.u16(f.dst_as);
    w.u8(f.src_mask);
    w.u8(f.dst_mask);
  }
  while ((b.size() - set_at) % 4) w.u8(0);
  put16(b.data() + set_at + 2, static_cast<uint32_t>(b.size() - set_at));
  return b;
}

// --- IPFIX ------------------------------------------------------------------------------------
std::vector<uint8_t> ipfix_template_packet(uint32_t unix_secs) {
  std::vector<uint8_t> b;
  Writer w{b};
  w.u16(10);
  w.u16(0);
  w.u32(unix_secs);
  w.u32(0);
  w.u32(1);
  template_set(w, 2, kIpfixFields);
  put16(b.data() + 2, static_cast<uint32_t>(b.size()));
  return b;
}

std::vector<uint8_t> ipfix_packet(uint32_t first, int k, uint32_t unix_secs) {
  std::vector<uint8_t> b;
  Writer w{b};
  w.u16(10);
  w.u16(0);
  w.u32(unix_secs);
  w.u32(0);  // sequence (data records before this message), patched per send
  w.u32(1);  // observation domain
  const std::size_t set_at = b.size();
  w.u16(kTemplateId);
  w.u16(0);
  const uint64_t now_ms = uint64_t{unix_secs} * 1000;
  for (int i = 0; i < k; ++i) {
    const Flow f = make_flow(first + static_cast<uint32_t>(i));
    const uint64_t start = now_ms - 10'000 + (first + static_cast<uint32_t>(i)) % 5000;
    w.u32(f.src);
    w.u32(f.dst);
    w.u32(f.nexthop);
    w.u32(f.in_if);
    w.u32(f.out_if);
    w.u64(f.packets);
    w.u64(f.bytes);
    w.u64(start);
    w.u64(start + 1000);
    w.u16(f.sport);
    w.u16(f.dport);
    w.u8(f.flags);
    w.u8(f.proto);
    w.u8(f.tos);
    w.u32(f.src_as);
    w.u32(f.dst_as);
    w.u8(f.src_mask);
    w.u8(f.dst_mask);
  }
  put16(b.data() + set_at + 2, static_cast<uint32_t>(b.size() - set_at));
  put16(b.data() + 2, static_cast<uint32_t>(b.size()));
  return b;
}

uint64_t parse_u64(std::string_view opt, const char* s) {
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (errno || end == s || *end) die(std::string(opt) + ": not a number: " + s);
  return v;
}

double now_s() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  std::string to;
  int version = 9;
  uint64_t packets = 0, pps = 10'000, template_every = 1000, burst = 32, pool = 64;
  int records = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (i + 1 >= argc) die("missing value after " + std::string(a));
    const char* v = argv[++i];
    if (a == "--to")
      to = v;
    else if (a == "--version")
      version = static_cast<int>(parse_u64(a, v));
    else if (a == "--packets")
      packets = parse_u64(a, v);
    else if (a == "--pps")
      pps = parse_u64(a, v);
    else if (a == "--records")
      records = static_cast<int>(parse_u64(a, v));
    else if (a == "--template-every")
      template_every = parse_u64(a, v);
    else if (a == "--burst")
      burst = parse_u64(a, v);
    else if (a == "--pool")
      pool = parse_u64(a, v);
    else
      die("unknown option " + std::string(a));
  }
  if (version != 5 && version != 9 && version != 10) die("--version must be 5, 9 or 10");
  if (records == 0) records = version == 5 ? 30 : version == 9 ? 30 : 20;
  if (records < 1 || (version == 5 && records > 30) || records > 60) die("--records out of range");
  if (packets == 0 || pps == 0 || burst == 0 || burst > 1024 || pool == 0 || pool > 4096)
    die("--packets, --pps, --burst (1..1024) and --pool (1..4096) must be set and positive");
  if (template_every == 0) template_every = packets;

  const auto colon = to.rfind(':');
  if (colon == std::string::npos) die("--to HOST:PORT");
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(static_cast<uint16_t>(parse_u64("--to port", to.c_str() + colon + 1)));
  if (::inet_pton(AF_INET, to.substr(0, colon).c_str(), &dst.sin_addr) != 1)
    die("bad address " + to);
  if ((ntohl(dst.sin_addr.s_addr) >> 24) != 127) die("loopback destinations only (127.0.0.0/8)");

  const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die(std::string("socket: ") + std::strerror(errno));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&dst), sizeof dst) != 0)
    die(std::string("connect: ") + std::strerror(errno));
  const int sndbuf = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

  // Everything is built before the clock starts.
  const uint32_t unix_secs = static_cast<uint32_t>(::time(nullptr));
  std::vector<std::vector<uint8_t>> data(pool);
  for (uint64_t p = 0; p < pool; ++p) {
    const uint32_t first = static_cast<uint32_t>(p * static_cast<uint64_t>(records));
    data[p] = version == 5   ? v5_packet(first, records, unix_secs)
              : version == 9 ? v9_packet(first, records, unix_secs)
                             : ipfix_packet(first, records, unix_secs);
  }
  std::vector<uint8_t> tmpl;
  if (version == 9) tmpl = v9_template_packet(unix_secs);
  if (version == 10) tmpl = ipfix_template_packet(unix_secs);
  const std::size_t max_len = std::max(tmpl.size(), data[0].size());
  // A slot per message of a burst (data or template): a copy whose sequence can be patched.
  const std::size_t slots = static_cast<std::size_t>(burst) * 2 + 1;
  std::vector<uint8_t> buf(slots * max_len);
  std::vector<iovec> iov(slots);
  std::vector<mmsghdr> msgs(slots);

  uint64_t sent_data = 0, sent_templates = 0, export_seq = 0, record_seq = 0;
  // Stamps the next message into slot s: a template when one is due, else the next data packet.
  auto stage = [&](std::size_t s, bool is_template) {
    uint8_t* p = buf.data() + s * max_len;
    const auto& src = is_template ? tmpl : data[sent_data % pool];
    std::memcpy(p, src.data(), src.size());
    if (version == 5)
      put32(p + 16, static_cast<uint32_t>(record_seq));
    else if (version == 9)
      put32(p + 12, static_cast<uint32_t>(export_seq));
    else
      put32(p + 8, static_cast<uint32_t>(record_seq));
    ++export_seq;
    if (is_template)
      ++sent_templates;
    else {
      ++sent_data;
      record_seq += static_cast<uint64_t>(records);
    }
    iov[s] = {p, src.size()};
    msgs[s] = {};
    msgs[s].msg_hdr.msg_iov = &iov[s];
    msgs[s].msg_hdr.msg_iovlen = 1;
  };
  auto flush = [&](std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
      const int r = ::sendmmsg(fd, msgs.data() + done, static_cast<unsigned>(n - done), 0);
      if (r < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == ENOBUFS) continue;
        if (errno == ECONNREFUSED) continue;  // nobody listening yet: that datagram is lost
        die(std::string("sendmmsg: ") + std::strerror(errno));
      }
      done += static_cast<std::size_t>(r);
    }
  };

  if (!tmpl.empty()) {  // the first template, a moment ahead of the data
    stage(0, true);
    flush(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double t0 = now_s();
  while (sent_data < packets) {
    // Wait until a whole burst is due (or the rest), then send it at once.
    const uint64_t want = std::min<uint64_t>(burst, packets - sent_data);
    const double due = t0 + static_cast<double>(sent_data + want) / static_cast<double>(pps);
    for (;;) {
      const double left = due - now_s();
      if (left <= 0) break;
      if (left > 200e-6) {
        timespec ts{0, static_cast<long>((left - 100e-6) * 1e9)};
        ::nanosleep(&ts, nullptr);
      }
    }
    std::size_t n = 0;
    for (uint64_t i = 0; i < want; ++i) {
      if (!tmpl.empty() && sent_data > 0 && sent_data % template_every == 0 &&
          sent_templates * template_every <= sent_data)
        stage(n++, true);
      stage(n++, false);
    }
    flush(n);
  }
  const double secs = now_s() - t0;
  ::close(fd);
  std::printf(
      "sent version=%d packets=%llu template_packets=%llu records=%llu seconds=%.3f pps=%.0f\n",
      version, static_cast<unsigned long long>(sent_data),
      static_cast<unsigned long long>(sent_templates),
      static_cast<unsigned long long>(sent_data * static_cast<uint64_t>(records)), secs,
      static_cast<double>(sent_data) / secs);
  return 0;
}
