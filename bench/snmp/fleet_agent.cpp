// bench_snmp_fleet_agent: one process answering SNMPv1 and SNMPv2c for a fleet of simulated
// devices, fast enough that a poller, not the agent, is what a benchmark measures.
//
// Every device has its own UDP socket: either one loopback address each (127.20.0.1,
// 127.20.0.2, ... all on --port), or one address and a port each (--port-range). One epoll
// loop per thread (--threads) reads them with recvmmsg and answers from the same socket.
//
// What a device serves (the same tree for every device, values per device and moving in time):
//   SNMPv2-MIB system: sysDescr, sysObjectID (1.3.6.1.4.1.99999.1.1, claimed by no profile),
//     sysUpTime (advancing; every device booted at another time), sysContact, sysName
//     ("dev-<index>"), sysLocation, sysServices
//   IF-MIB: ifNumber; ifTable (ifIndex, ifDescr, ifType, ifMtu, ifSpeed, ifPhysAddress,
//     ifAdminStatus, ifOperStatus, ifLastChange, ifIn/OutOctets, ifIn/OutUcastPkts,
//     ifIn/OutNUcastPkts, ifIn/OutDiscards, ifIn/OutErrors, ifInUnknownProtos, ifOutQLen,
//     ifSpecific) and ifXTable (ifName, the multicast/broadcast counters, ifHC* counters,
//     ifLinkUpDownTrapEnable, ifHighSpeed, ifPromiscuousMode, ifConnectorPresent, ifAlias,
//     ifCounterDiscontinuityTime) for --ifaces interfaces; counters advance with time.
// Requests: GET, GETNEXT, GETBULK (v2c), in lexicographic OID order; noSuchObject /
// noSuchInstance for unknown OIDs and endOfMibView past the end (v2c); noSuchName (v1), where
// Counter64 objects do not exist (RFC 3584: skipped by GETNEXT). Responses are bounded by
// --max-size (1400 bytes by default, like real agents): GETBULK repetitions are cut there; a
// GET or GETNEXT whose answer does not fit gets tooBig. Other PDUs, other versions and a wrong
// community are dropped silently, as agents do.
//
// On purpose, some devices are slow (every answer delayed by --slow-min-ms..--slow-max-ms) and
// some dead (their socket is bound but never answers): --slow-fraction, --dead-fraction, picked
// by a hash of the device index so that every run picks the same ones. --list FILE writes
// "index address port kind" for every device. Statistics go to stderr every --stats seconds,
// on SIGUSR1 and at exit (SIGINT/SIGTERM).
//
//   bench_snmp_fleet_agent --devices 1000 --base 127.20.0.1 --port 16100 --ifaces 8
//       --slow-fraction 0.02 --dead-fraction 0.01 --list fleet.txt
//   bench_snmp_fleet_agent --self-check          (encoder/decoder and MIB checks, no sockets)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Oid = std::vector<uint32_t>;
using Bytes = std::vector<uint8_t>;

// ---- BER ---------------------------------------------------------------------------------------
enum Tag : uint8_t {
  INTEGER = 0x02,
  OCTET_STRING = 0x04,
  NULL_ = 0x05,
  OBJECT_ID = 0x06,
  SEQUENCE = 0x30,
  IPADDRESS = 0x40,
  COUNTER32 = 0x41,
  GAUGE32 = 0x42,
  TIMETICKS = 0x43,
  COUNTER64 = 0x46,
  NO_SUCH_OBJECT = 0x80,
  NO_SUCH_INSTANCE = 0x81,
  END_OF_MIB_VIEW = 0x82,
  PDU_GET = 0xA0,
  PDU_GETNEXT = 0xA1,
  PDU_RESPONSE = 0xA2,
  PDU_SET = 0xA3,
  PDU_GETBULK = 0xA5,
};
enum ErrorStatus { NO_ERROR = 0, TOO_BIG = 1, NO_SUCH_NAME = 2, GEN_ERR = 5 };

void put_len(Bytes& out, size_t n) {
  if (n < 0x80) {
    out.push_back(uint8_t(n));
  } else if (n < 0x100) {
    out.push_back(0x81);
    out.push_back(uint8_t(n));
  } else if (n < 0x10000) {
    out.push_back(0x82);
    out.push_back(uint8_t(n >> 8));
    out.push_back(uint8_t(n));
  } else {
    out.push_back(0x83);
    out.push_back(uint8_t(n >> 16));
    out.push_back(uint8_t(n >> 8));
    out.push_back(uint8_t(n));
  }
}
void put_tlv(Bytes& out, uint8_t tag, std::span<const uint8_t> v) {
  out.push_back(tag);
  put_len(out, v.size());
  out.insert(out.end(), v.begin(), v.end());
}
void put_int(Bytes& out, uint8_t tag, int64_t v) {
  uint8_t b[9];
  int n = 0;
  // minimal two's complement
  for (int i = 7; i >= 0; --i) b[n++] = uint8_t(uint64_t(v) >> (i * 8));
  int s = 0;
  while (s < 7 && ((b[s] == 0x00 && !(b[s + 1] & 0x80)) || (b[s] == 0xFF && (b[s + 1] & 0x80))))
    ++s;
  put_tlv(out, tag, {b + s, size_t(8 - s)});
}
void put_uint(Bytes& out, uint8_t tag, uint64_t v) {
  uint8_t b[9];
  b[0] = 0;
  for (int i = 0; i < 8; ++i) b[i + 1] = uint8_t(v >> ((7 - i) * 8));
  int s = 0;
  while (s < 8 && b[s] == 0 && !(b[s + 1] & 0x80)) ++s;
  put_tlv(out, tag, {b + s, size_t(9 - s)});
}
void put_oid(Bytes& out, const Oid& oid) {
  uint8_t buf[256];
  size_t n = 0;
  auto sub = [&](uint32_t v) {
    uint8_t t[5];
    int k = 0;
    do {
      t[k++] = uint8_t(v & 0x7F);
      v >>= 7;
    } while (v);
    while (k > 0) {
      --k;
      if (n < sizeof buf) buf[n++] = uint8_t(t[k] | (k ? 0x80 : 0));
    }
  };
  if (oid.size() >= 2) {
    sub(oid[0] * 40 + oid[1]);
    for (size_t i = 2; i < oid.size(); ++i) sub(oid[i]);
  } else if (oid.size() == 1) {
    sub(oid[0] * 40);
  }
  put_tlv(out, OBJECT_ID, {buf, n});
}
// Wraps out[from..] in a TLV of tag (in place).
void wrap(Bytes& out, size_t from, uint8_t tag) {
  size_t n = out.size() - from;
  Bytes hdr;
  hdr.push_back(tag);
  put_len(hdr, n);
  out.insert(out.begin() + long(from), hdr.begin(), hdr.end());
}

struct Reader {
  const uint8_t* p;
  const uint8_t* end;
  // Reads one TLV; on success sets tag and the value's span.
  bool next(uint8_t& tag, std::span<const uint8_t>& val) {
    if (end - p < 2) return false;
    tag = *p++;
    size_t len = *p++;
    if (len & 0x80) {
      int k = len & 0x7F;
      if (k == 0 || k > 3 || end - p < k) return false;
      len = 0;
      while (k--) len = (len << 8) | *p++;
    }
    if (size_t(end - p) < len) return false;
    val = {p, len};
    p += len;
    return true;
  }
};
bool get_int(std::span<const uint8_t> v, int64_t& out) {
  if (v.empty() || v.size() > 8) return false;
  int64_t x = (v[0] & 0x80) ? -1 : 0;
  for (uint8_t b : v) x = int64_t(uint64_t(x) << 8) | b;
  out = x;
  return true;
}
bool get_uint(std::span<const uint8_t> v, uint64_t& out) {
  if (v.empty() || v.size() > 9) return false;
  uint64_t x = 0;
  for (uint8_t b : v) x = (x << 8) | b;
  out = x;
  return true;
}
bool get_oid(std::span<const uint8_t> v, Oid& out) {
  out.clear();
  if (v.empty() || v.size() > 256) return false;
  uint64_t x = 0;
  bool first = true;
  for (size_t i = 0; i < v.size(); ++i) {
    x = (x << 7) | (v[i] & 0x7F);
    if (x > 0xFFFFFFFFull) return false;
    if (!(v[i] & 0x80)) {
      if (first) {
        uint32_t a = x < 40 ? 0 : x < 80 ? 1 : 2;
        out.push_back(a);
        out.push_back(uint32_t(x - a * 40));
        first = false;
      } else {
        out.push_back(uint32_t(x));
      }
      x = 0;
    } else if (i + 1 == v.size()) {
      return false;
    }
  }
  return out.size() <= 128;
}

Oid parse_oid(std::string_view s) {
  Oid o;
  uint64_t x = 0;
  bool any = false;
  for (char c : s) {
    if (c == '.') {
      if (any) o.push_back(uint32_t(x));
      x = 0;
      any = false;
    } else {
      x = x * 10 + uint64_t(c - '0');
      any = true;
    }
  }
  if (any) o.push_back(uint32_t(x));
  return o;
}

// ---- the simulated MIB -------------------------------------------------------------------------
uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

enum class Obj : uint16_t {
  SysDescr,
  SysObjectID,
  SysUpTime,
  SysContact,
  SysName,
  SysLocation,
  SysServices,
  IfNumber,
  // ifTable columns (value = column number)
  IfIndex,
  IfDescr,
  IfType,
  IfMtu,
  IfSpeed,
  IfPhysAddress,
  IfAdminStatus,
  IfOperStatus,
  IfLastChange,
  IfInOctets,
  IfInUcastPkts,
  IfInNUcastPkts,
  IfInDiscards,
  IfInErrors,
  IfInUnknownProtos,
  IfOutOctets,
  IfOutUcastPkts,
  IfOutNUcastPkts,
  IfOutDiscards,
  IfOutErrors,
  IfOutQLen,
  IfSpecific,
  // ifXTable
  IfName,
  IfInMulticastPkts,
  IfInBroadcastPkts,
  IfOutMulticastPkts,
  IfOutBroadcastPkts,
  IfHCInOctets,
  IfHCInUcastPkts,
  IfHCInMulticastPkts,
  IfHCInBroadcastPkts,
  IfHCOutOctets,
  IfHCOutUcastPkts,
  IfHCOutMulticastPkts,
  IfHCOutBroadcastPkts,
  IfLinkUpDownTrapEnable,
  IfHighSpeed,
  IfPromiscuousMode,
  IfConnectorPresent,
  IfAlias,
  IfCounterDiscontinuityTime,
};
struct Entry {
  Oid oid;
  Obj obj;
  uint32_t row;  // ifIndex, 0 for scalars
  bool c64;      // Counter64: invisible to SNMPv1
};

class Mib {
 public:
  explicit Mib(int ifaces) {
    auto sys = [&](uint32_t n, Obj o) { add({1, 3, 6, 1, 2, 1, 1, n, 0}, o, 0); };
    sys(1, Obj::SysDescr);
    sys(2, Obj::SysObjectID);
    sys(3, Obj::SysUpTime);
    sys(4, Obj::SysContact);
    sys(5, Obj::SysName);
    sys(6, Obj::SysLocation);
    sys(7, Obj::SysServices);
    add({1, 3, 6, 1, 2, 1, 2, 1, 0}, Obj::IfNumber, 0);
    for (uint32_t col = 1; col <= 22; ++col)
      for (uint32_t i = 1; i <= uint32_t(ifaces); ++i)
        add({1, 3, 6, 1, 2, 1, 2, 2, 1, col, i}, Obj(uint16_t(Obj::IfIndex) + col - 1), i);
    for (uint32_t col = 1; col <= 19; ++col)
      for (uint32_t i = 1; i <= uint32_t(ifaces); ++i)
        add({1, 3, 6, 1, 2, 1, 31, 1, 1, 1, col, i}, Obj(uint16_t(Obj::IfName) + col - 1), i);
    std::sort(entries_.begin(), entries_.end(), [](auto& a, auto& b) { return a.oid < b.oid; });
    for (auto& e : entries_) {
      Oid p(e.oid.begin(), e.oid.end() - 1);
      if (objects_.empty() || objects_.back() != p) objects_.push_back(p);
    }
  }
  const std::vector<Entry>& entries() const { return entries_; }
  // Exact match, or null.
  const Entry* find(const Oid& o, bool v1) const {
    auto it = std::lower_bound(entries_.begin(), entries_.end(), o,
                               [](const Entry& e, const Oid& k) { return e.oid < k; });
    if (it == entries_.end() || it->oid != o || (v1 && it->c64)) return nullptr;
    return &*it;
  }
  // First entry after o, or null (end of MIB).
  const Entry* next(const Oid& o, bool v1) const {
    auto it = std::upper_bound(entries_.begin(), entries_.end(), o,
                               [](const Oid& k, const Entry& e) { return k < e.oid; });
    while (it != entries_.end() && v1 && it->c64) ++it;
    return it == entries_.end() ? nullptr : &*it;
  }
  // For an unknown OID: is it an object we have (wrong instance)?
  bool is_object(const Oid& o) const {
    if (o.empty()) return false;
    Oid p(o.begin(), o.end() - 1);
    return std::binary_search(objects_.begin(), objects_.end(), p);
  }

 private:
  void add(Oid oid, Obj obj, uint32_t row) {
    bool c64 = obj >= Obj::IfHCInOctets && obj <= Obj::IfHCOutBroadcastPkts;
    entries_.push_back({std::move(oid), obj, row, c64});
  }
  std::vector<Entry> entries_;
  std::vector<Oid> objects_;
};

// Values of device d at ms milliseconds since the agent started.
void put_value(Bytes& out, const Entry& e, uint32_t dev, uint64_t ms, int ifaces) {
  const uint32_t i = e.row;
  const uint64_t h = mix((uint64_t(dev) << 20) ^ i);
  const uint64_t boot_ms =
      3600000ull + (mix(dev) % (30ull * 86400000ull));  // up 1 h .. 31 d before start
  const uint64_t up_cs = (boot_ms + ms) / 10;
  const uint64_t rate_in = 50000 + h % 5000000;  // bytes/s
  const uint64_t rate_out = 20000 + (h >> 24) % 3000000;
  const uint64_t in_oct = (h >> 8) % 1000000000000ull + rate_in * ms / 1000;
  const uint64_t out_oct = (h >> 16) % 1000000000000ull + rate_out * ms / 1000;
  const uint64_t in_pk = in_oct / 700, out_pk = out_oct / 900;
  const uint64_t in_mc = in_pk / 200, out_mc = out_pk / 300, in_bc = in_pk / 500,
                 out_bc = out_pk / 700;
  const bool down = ifaces > 2 && int(i) == ifaces;  // the last port is down
  char buf[96];
  auto str = [&](std::string_view s) {
    put_tlv(out, OCTET_STRING, {reinterpret_cast<const uint8_t*>(s.data()), s.size()});
  };
  switch (e.obj) {
    case Obj::SysDescr:
      str("Outpost bench fleet agent, simulated switch");
      break;
    case Obj::SysObjectID:
      put_oid(out, {1, 3, 6, 1, 4, 1, 99999, 1, 1});
      break;
    case Obj::SysUpTime:
      put_uint(out, TIMETICKS, up_cs & 0xFFFFFFFFu);
      break;
    case Obj::SysContact:
      str("noc@example.invalid");
      break;
    case Obj::SysName:
      snprintf(buf, sizeof buf, "dev-%u", dev);
      str(buf);
      break;
    case Obj::SysLocation:
      snprintf(buf, sizeof buf, "rack %u", dev / 40);
      str(buf);
      break;
    case Obj::SysServices:
      put_int(out, INTEGER, 6);
      break;
    case Obj::IfNumber:
      put_int(out, INTEGER, ifaces);
      break;
    case Obj::IfIndex:
      put_int(out, INTEGER, i);
      break;
    case Obj::IfDescr:
      snprintf(buf, sizeof buf, "GigabitEthernet0/%u", i);
      str(buf);
      break;
    case Obj::IfType:
      put_int(out, INTEGER, 6);
      break;
    case Obj::IfMtu:
      put_int(out, INTEGER, 1500);
      break;
    case Obj::IfSpeed:
      put_uint(out, GAUGE32, 1000000000u);
      break;
    case Obj::IfPhysAddress: {
      uint8_t mac[6] = {0x02,         0x00,      uint8_t(dev >> 16), uint8_t(dev >> 8),
                        uint8_t(dev), uint8_t(i)};
      put_tlv(out, OCTET_STRING, mac);
      break;
    }
    case Obj::IfAdminStatus:
      put_int(out, INTEGER, 1);
      break;
    case Obj::IfOperStatus:
      put_int(out, INTEGER, down ? 2 : 1);
      break;
    case Obj::IfLastChange:
      put_uint(out, TIMETICKS, 0);
      break;
    case Obj::IfInOctets:
      put_uint(out, COUNTER32, in_oct & 0xFFFFFFFFu);
      break;
    case Obj::IfInUcastPkts:
      put_uint(out, COUNTER32, in_pk & 0xFFFFFFFFu);
      break;
    case Obj::IfInNUcastPkts:
      put_uint(out, COUNTER32, (in_mc + in_bc) & 0xFFFFFFFFu);
      break;
    case Obj::IfInDiscards:
      put_uint(out, COUNTER32, (h % 100 + ms / 60000) & 0xFFFFFFFFu);
      break;
    case Obj::IfInErrors:
      put_uint(out, COUNTER32, (h % 50 + ms / 30000) & 0xFFFFFFFFu);
      break;
    case Obj::IfInUnknownProtos:
      put_uint(out, COUNTER32, 0);
      break;
    case Obj::IfOutOctets:
      put_uint(out, COUNTER32, out_oct & 0xFFFFFFFFu);
      break;
    case Obj::IfOutUcastPkts:
      put_uint(out, COUNTER32, out_pk & 0xFFFFFFFFu);
      break;
    case Obj::IfOutNUcastPkts:
      put_uint(out, COUNTER32, (out_mc + out_bc) & 0xFFFFFFFFu);
      break;
    case Obj::IfOutDiscards:
      put_uint(out, COUNTER32, (h % 70 + ms / 90000) & 0xFFFFFFFFu);
      break;
    case Obj::IfOutErrors:
      put_uint(out, COUNTER32, (h % 30 + ms / 120000) & 0xFFFFFFFFu);
      break;
    case Obj::IfOutQLen:
      put_uint(out, GAUGE32, 0);
      break;
    case Obj::IfSpecific:
      put_oid(out, {0, 0});
      break;
    case Obj::IfName:
      snprintf(buf, sizeof buf, "Gi0/%u", i);
      str(buf);
      break;
    case Obj::IfInMulticastPkts:
      put_uint(out, COUNTER32, in_mc & 0xFFFFFFFFu);
      break;
    case Obj::IfInBroadcastPkts:
      put_uint(out, COUNTER32, in_bc & 0xFFFFFFFFu);
      break;
    case Obj::IfOutMulticastPkts:
      put_uint(out, COUNTER32, out_mc & 0xFFFFFFFFu);
      break;
    case Obj::IfOutBroadcastPkts:
      put_uint(out, COUNTER32, out_bc & 0xFFFFFFFFu);
      break;
    case Obj::IfHCInOctets:
      put_uint(out, COUNTER64, in_oct);
      break;
    case Obj::IfHCInUcastPkts:
      put_uint(out, COUNTER64, in_pk);
      break;
    case Obj::IfHCInMulticastPkts:
      put_uint(out, COUNTER64, in_mc);
      break;
    case Obj::IfHCInBroadcastPkts:
      put_uint(out, COUNTER64, in_bc);
      break;
    case Obj::IfHCOutOctets:
      put_uint(out, COUNTER64, out_oct);
      break;
    case Obj::IfHCOutUcastPkts:
      put_uint(out, COUNTER64, out_pk);
      break;
    case Obj::IfHCOutMulticastPkts:
      put_uint(out, COUNTER64, out_mc);
      break;
    case Obj::IfHCOutBroadcastPkts:
      put_uint(out, COUNTER64, out_bc);
      break;
    case Obj::IfLinkUpDownTrapEnable:
      put_int(out, INTEGER, 1);
      break;
    case Obj::IfHighSpeed:
      put_uint(out, GAUGE32, 1000);
      break;
    case Obj::IfPromiscuousMode:
      put_int(out, INTEGER, 2);
      break;
    case Obj::IfConnectorPresent:
      put_int(out, INTEGER, 1);
      break;
    case Obj::IfAlias:
      if (i % 3 == 0)
        str("");
      else {
        snprintf(buf, sizeof buf, "to dev-%u port %u", uint32_t((dev + i) % 100000), i);
        str(buf);
      }
      break;
    case Obj::IfCounterDiscontinuityTime:
      put_uint(out, TIMETICKS, 0);
      break;
  }
}

// ---- request handling --------------------------------------------------------------------------
struct Options {
  int devices = 1000;
  std::string base = "127.20.0.1";
  int port = 16100;
  bool port_range = false;
  int ifaces = 8;
  double slow_fraction = 0.0, dead_fraction = 0.0;
  int slow_min_ms = 200, slow_max_ms = 500;
  std::string community = "public";
  size_t max_size = 1400;
  int threads = 1;
  double stats = 0;
  std::string list;
};

struct Stats {
  std::atomic<uint64_t> received{0}, answered{0}, dropped{0}, varbinds{0}, truncated{0}, delayed{0},
      dead{0};
};

class Agent {
 public:
  Agent(const Options& o, const Mib& mib)
      : o_(o), mib_(mib), start_(std::chrono::steady_clock::now()) {}

  uint64_t now_ms() const {
    return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start_)
                        .count());
  }
  void set_time_offset(uint64_t ms) { offset_ms_ = ms; }  // self-check: time travel

  // Builds the answer to req for device dev into out; false = drop (no answer).
  bool handle(std::span<const uint8_t> req, uint32_t dev, Bytes& out, Stats* st = nullptr) {
    Reader r{req.data(), req.data() + req.size()};
    uint8_t tag;
    std::span<const uint8_t> msg, v, comm, pdu;
    if (!r.next(tag, msg) || tag != SEQUENCE) return false;
    Reader m{msg.data(), msg.data() + msg.size()};
    int64_t version;
    if (!m.next(tag, v) || tag != INTEGER || !get_int(v, version) || (version != 0 && version != 1))
      return false;
    if (!m.next(tag, comm) || tag != OCTET_STRING) return false;
    if (std::string_view(reinterpret_cast<const char*>(comm.data()), comm.size()) != o_.community)
      return false;
    uint8_t pdu_type;
    if (!m.next(pdu_type, pdu)) return false;
    if (pdu_type != PDU_GET && pdu_type != PDU_GETNEXT && pdu_type != PDU_GETBULK) return false;
    const bool v1 = version == 0;
    if (v1 && pdu_type == PDU_GETBULK) return false;
    Reader p{pdu.data(), pdu.data() + pdu.size()};
    std::span<const uint8_t> reqid, vbl;
    int64_t a, b;
    if (!p.next(tag, reqid) || tag != INTEGER || reqid.empty() || reqid.size() > 5) return false;
    if (!p.next(tag, v) || tag != INTEGER || !get_int(v, a)) return false;
    if (!p.next(tag, v) || tag != INTEGER || !get_int(v, b)) return false;
    if (!p.next(tag, vbl) || tag != SEQUENCE) return false;
    std::vector<Oid> oids;
    Reader vr{vbl.data(), vbl.data() + vbl.size()};
    while (vr.p < vr.end) {
      std::span<const uint8_t> vb, o, val;
      if (!vr.next(tag, vb) || tag != SEQUENCE) return false;
      Reader br{vb.data(), vb.data() + vb.size()};
      Oid oid;
      if (!br.next(tag, o) || tag != OBJECT_ID || !get_oid(o, oid)) return false;
      if (!br.next(tag, val)) return false;
      oids.push_back(std::move(oid));
    }
    if (oids.size() > 256) return false;
    const uint64_t ms = now_ms() + offset_ms_;
    const size_t budget = o_.max_size > 40 + comm.size() ? o_.max_size - 40 - comm.size() : 0;

    Bytes vbs;
    vbs.reserve(1500);
    int err = NO_ERROR, err_index = 0;
    size_t n_vb = 0;
    auto add_vb = [&](const Oid& oid, const Entry* e, uint8_t exception) {
      size_t from = vbs.size();
      put_oid(vbs, oid);
      if (e)
        put_value(vbs, *e, dev, ms, o_.ifaces);
      else if (exception) {
        vbs.push_back(exception);
        vbs.push_back(0);
      } else {
        vbs.push_back(NULL_);
        vbs.push_back(0);
      }
      wrap(vbs, from, SEQUENCE);
      ++n_vb;
      return vbs.size() - from;
    };
    if (pdu_type == PDU_GET || pdu_type == PDU_GETNEXT) {
      for (size_t k = 0; k < oids.size() && err == NO_ERROR; ++k) {
        const Entry* e = pdu_type == PDU_GET ? mib_.find(oids[k], v1) : mib_.next(oids[k], v1);
        if (e)
          add_vb(e->oid, e, 0);
        else if (v1) {
          err = NO_SUCH_NAME;
          err_index = int(k + 1);
        } else if (pdu_type == PDU_GETNEXT)
          add_vb(oids[k], nullptr, END_OF_MIB_VIEW);
        else
          add_vb(oids[k], nullptr, mib_.is_object(oids[k]) ? NO_SUCH_INSTANCE : NO_SUCH_OBJECT);
      }
      if (err == NO_ERROR && vbs.size() > budget) {
        err = TOO_BIG;
        err_index = 0;
        vbs.clear();
        n_vb = 0;
      }
      if (err != NO_ERROR && err != TOO_BIG) {  // v1 error: the request's varbinds, values as sent
        vbs.clear();
        n_vb = 0;
        for (auto& oid : oids) add_vb(oid, nullptr, 0);
      }
    } else {  // GETBULK
      const size_t nonrep = size_t(std::clamp<int64_t>(a, 0, int64_t(oids.size())));
      const size_t maxrep = size_t(std::clamp<int64_t>(b, 0, 10000));
      for (size_t k = 0; k < nonrep; ++k) {
        const Entry* e = mib_.next(oids[k], false);
        if (e)
          add_vb(e->oid, e, 0);
        else
          add_vb(oids[k], nullptr, END_OF_MIB_VIEW);
      }
      if (vbs.size() > budget) {
        err = TOO_BIG;
        vbs.clear();
        n_vb = 0;
      }
      std::vector<Oid> cur(oids.begin() + long(nonrep), oids.end());
      bool full = false;
      for (size_t rep = 0; err == NO_ERROR && rep < maxrep && !cur.empty() && !full; ++rep) {
        bool all_end = true;
        for (auto& c : cur) {
          const size_t mark = vbs.size(), mark_n = n_vb;
          const Entry* e = mib_.next(c, false);
          if (e) {
            add_vb(e->oid, e, 0);
            c = e->oid;
            all_end = false;
          } else
            add_vb(c, nullptr, END_OF_MIB_VIEW);
          if (vbs.size() > budget) {  // cut here, as agents do
            vbs.resize(mark);
            n_vb = mark_n;
            full = true;
            if (st) st->truncated++;
            break;
          }
        }
        if (all_end) break;
      }
    }
    // message
    out.clear();
    out.reserve(vbs.size() + 64);
    put_int(out, INTEGER, version);
    put_tlv(out, OCTET_STRING, comm);
    size_t pdu_from = out.size();
    put_tlv(out, INTEGER, reqid);
    put_int(out, INTEGER, err);
    put_int(out, INTEGER, err_index);
    size_t vbl_from = out.size();
    out.insert(out.end(), vbs.begin(), vbs.end());
    wrap(out, vbl_from, SEQUENCE);
    wrap(out, pdu_from, PDU_RESPONSE);
    wrap(out, 0, SEQUENCE);
    if (st) st->varbinds += n_vb;
    return true;
  }

 private:
  const Options& o_;
  const Mib& mib_;
  std::chrono::steady_clock::time_point start_;
  uint64_t offset_ms_ = 0;
};

// ---- kinds of devices --------------------------------------------------------------------------
enum class Kind { Ok, Slow, Dead };
Kind kind_of(uint32_t dev, const Options& o) {
  double u = double(mix(0x5eed0000ull + dev) % 1000000) / 1e6;
  if (u < o.dead_fraction) return Kind::Dead;
  if (u < o.dead_fraction + o.slow_fraction) return Kind::Slow;
  return Kind::Ok;
}
const char* kind_name(Kind k) { return k == Kind::Ok ? "ok" : k == Kind::Slow ? "slow" : "dead"; }

// ---- self-check --------------------------------------------------------------------------------
// A client request built with the same encoder.
Bytes make_request(int version, uint8_t type, int32_t reqid, int a, int b,
                   const std::vector<Oid>& oids, std::string_view community = "public") {
  Bytes out, vbl;
  for (auto& o : oids) {
    size_t from = vbl.size();
    put_oid(vbl, o);
    vbl.push_back(NULL_);
    vbl.push_back(0);
    wrap(vbl, from, SEQUENCE);
  }
  put_int(out, INTEGER, version);
  put_tlv(out, OCTET_STRING,
          {reinterpret_cast<const uint8_t*>(community.data()), community.size()});
  size_t pdu_from = out.size();
  put_int(out, INTEGER, reqid);
  put_int(out, INTEGER, a);
  put_int(out, INTEGER, b);
  size_t f = out.size();
  out.insert(out.end(), vbl.begin(), vbl.end());
  wrap(out, f, SEQUENCE);
  wrap(out, pdu_from, type);
  wrap(out, 0, SEQUENCE);
  return out;
}
struct Vb {
  Oid oid;
  uint8_t tag;
  std::span<const uint8_t> val;
};
struct Response {
  int64_t reqid = 0, err = -1, index = -1;
  std::vector<Vb> vbs;
};
std::optional<Response> parse_response(const Bytes& msg) {
  Reader r{msg.data(), msg.data() + msg.size()};
  uint8_t tag;
  std::span<const uint8_t> s, v, pdu, vbl;
  if (!r.next(tag, s) || tag != SEQUENCE || r.p != r.end) return std::nullopt;
  Reader m{s.data(), s.data() + s.size()};
  if (!m.next(tag, v) || tag != INTEGER || !m.next(tag, v) || tag != OCTET_STRING)
    return std::nullopt;
  if (!m.next(tag, pdu) || tag != PDU_RESPONSE || m.p != m.end) return std::nullopt;
  Reader p{pdu.data(), pdu.data() + pdu.size()};
  Response res;
  if (!p.next(tag, v) || !get_int(v, res.reqid) || !p.next(tag, v) || !get_int(v, res.err) ||
      !p.next(tag, v) || !get_int(v, res.index) || !p.next(tag, vbl) || tag != SEQUENCE)
    return std::nullopt;
  Reader vr{vbl.data(), vbl.data() + vbl.size()};
  while (vr.p < vr.end) {
    std::span<const uint8_t> vb, o;
    if (!vr.next(tag, vb) || tag != SEQUENCE) return std::nullopt;
    Reader br{vb.data(), vb.data() + vb.size()};
    Vb x;
    if (!br.next(tag, o) || tag != OBJECT_ID || !get_oid(o, x.oid) || !br.next(x.tag, x.val) ||
        br.p != br.end)
      return std::nullopt;
    res.vbs.push_back(std::move(x));
  }
  return res;
}

int self_check(int ifaces) {
  Options o;
  o.ifaces = ifaces;
  Mib mib(ifaces);
  Agent agent(o, mib);
  int fails = 0;
  auto check = [&](bool ok, const char* what) {
    if (!ok) {
      fprintf(stderr, "self-check FAILED: %s\n", what);
      ++fails;
    }
  };
  // integer encodings round trip
  for (int64_t x :
       {0ll, 1ll, 127ll, 128ll, 255ll, 256ll, -1ll, -128ll, -129ll, 2147483647ll, -2147483648ll}) {
    Bytes b;
    put_int(b, INTEGER, x);
    int64_t y;
    check(get_int({b.data() + 2, b.size() - 2}, y) && y == x, "INTEGER round trip");
  }
  for (uint64_t x : {0ull, 127ull, 128ull, 0xFFFFFFFFull, 0xFFFFFFFFFFFFFFFFull}) {
    Bytes b;
    put_uint(b, COUNTER64, x);
    uint64_t y;
    check(get_uint({b.data() + 2, b.size() - 2}, y) && y == x, "unsigned round trip");
  }
  {
    Oid x = parse_oid("1.3.6.1.4.1.4294967295.128.0.16383.16384");
    Bytes b;
    put_oid(b, x);
    Oid y;
    check(get_oid({b.data() + 2, b.size() - 2}, y) && y == x, "OID round trip");
  }
  Bytes out;
  auto ask = [&](int ver, uint8_t type, int a, int b, std::vector<Oid> oids, uint32_t dev = 7) {
    static int32_t id = 1000;
    Bytes req = make_request(ver, type, ++id, a, b, oids);
    std::optional<Response> r;
    if (agent.handle(req, dev, out)) r = parse_response(out);
    if (r) check(r->reqid == id, "request-id echoed");
    return r;
  };
  // GETNEXT walk of the whole tree (v2c): strictly increasing, every entry, endOfMibView at the end
  const size_t want = 7 + 1 + size_t(ifaces) * (22 + 19);
  size_t walked = 0;
  Oid cur{1, 3};
  bool ordered = true;
  for (;;) {
    auto r = ask(1, PDU_GETNEXT, 0, 0, {cur});
    if (!r || r->vbs.size() != 1) {
      check(false, "GETNEXT answer");
      break;
    }
    if (r->vbs[0].tag == END_OF_MIB_VIEW) break;
    if (!(cur < r->vbs[0].oid)) ordered = false;
    cur = r->vbs[0].oid;
    if (++walked > want + 10) break;
  }
  check(ordered, "GETNEXT strictly increasing");
  check(walked == want, "GETNEXT walk visits every object");
  // v1 walk skips Counter64 (ifHC*: 8 columns)
  size_t walked1 = 0;
  cur = {1, 3};
  for (;;) {
    auto r = ask(0, PDU_GETNEXT, 0, 0, {cur});
    if (!r) {
      check(false, "v1 GETNEXT answer");
      break;
    }
    if (r->err == NO_SUCH_NAME) break;
    check(r->vbs.size() == 1 && r->vbs[0].tag != COUNTER64, "v1 carries no Counter64");
    cur = r->vbs[0].oid;
    if (++walked1 > want) break;
  }
  check(walked1 == want - size_t(ifaces) * 8, "v1 walk skips the Counter64 columns");
  // GET: values, noSuchObject, noSuchInstance; v1 noSuchName with error-index
  auto g = ask(1, PDU_GET, 0, 0,
               {parse_oid("1.3.6.1.2.1.1.5.0"), parse_oid("1.3.6.1.2.1.1.99.0"),
                parse_oid("1.3.6.1.2.1.2.2.1.2.999")});
  check(g && g->vbs.size() == 3, "GET three varbinds");
  if (g && g->vbs.size() == 3) {
    check(g->vbs[0].tag == OCTET_STRING &&
              std::string_view(reinterpret_cast<const char*>(g->vbs[0].val.data()),
                               g->vbs[0].val.size()) == "dev-7",
          "sysName");
    check(g->vbs[1].tag == NO_SUCH_OBJECT, "noSuchObject");
    check(g->vbs[2].tag == NO_SUCH_INSTANCE, "noSuchInstance");
  }
  auto g1 = ask(0, PDU_GET, 0, 0,
                {parse_oid("1.3.6.1.2.1.1.5.0"), parse_oid("1.3.6.1.2.1.31.1.1.1.6.1")});
  check(g1 && g1->err == NO_SUCH_NAME && g1->index == 2, "v1 GET of a Counter64: noSuchName at 2");
  // sysUpTime and counters advance
  auto up = [&] {
    auto r = ask(1, PDU_GET, 0, 0,
                 {parse_oid("1.3.6.1.2.1.1.3.0"), parse_oid("1.3.6.1.2.1.31.1.1.1.6.1")});
    uint64_t t = 0, c = 0;
    if (r && r->vbs.size() == 2) {
      get_uint(r->vbs[0].val, t);
      get_uint(r->vbs[1].val, c);
    }
    return std::pair{t, c};
  };
  auto t0 = up();
  agent.set_time_offset(5000);
  auto t1 = up();
  check(t1.first == t0.first + 500 || t1.first == t0.first + 501,
        "sysUpTime advances 5 s = 500 ticks");
  check(t1.second > t0.second, "ifHCInOctets advances");
  // GETBULK: max-repetitions honoured, size bounded, rows in order, endOfMibView at the end
  auto bk = ask(1, PDU_GETBULK, 1, 3,
                {parse_oid("1.3.6.1.2.1.1.3"), parse_oid("1.3.6.1.2.1.2.2.1.2"),
                 parse_oid("1.3.6.1.2.1.2.2.1.8")});
  check(bk && bk->vbs.size() == 1 + 3 * 2, "GETBULK 1 non-repeater + 3 x 2");
  if (bk && bk->vbs.size() == 7) {
    check(bk->vbs[0].oid == parse_oid("1.3.6.1.2.1.1.3.0"), "non-repeater");
    check(bk->vbs[1].oid == parse_oid("1.3.6.1.2.1.2.2.1.2.1") &&
              bk->vbs[2].oid == parse_oid("1.3.6.1.2.1.2.2.1.8.1") &&
              bk->vbs[3].oid == parse_oid("1.3.6.1.2.1.2.2.1.2.2"),
          "repetitions interleaved");
  }
  auto big = ask(1, PDU_GETBULK, 0, 1000, {parse_oid("1.3")});
  const size_t big_size = out.size();
  check(big && out.size() <= 1400 && big->vbs.size() > 10 && big->vbs.size() < want,
        "GETBULK cut at 1400 bytes");
  auto end = ask(1, PDU_GETBULK, 0, 5, {parse_oid("1.3.6.1.2.1.31.1.1.1.19")});
  check(end && end->vbs.size() == size_t(std::min(5, ifaces + 1)) &&
            end->vbs.back().tag == (ifaces < 5 ? END_OF_MIB_VIEW : TIMETICKS),
        "GETBULK reaches endOfMibView");
  // wrong community and v1 GETBULK: no answer
  check(!agent.handle(
            make_request(1, PDU_GET, 1, 0, 0, {parse_oid("1.3.6.1.2.1.1.5.0")}, "private"), 1, out),
        "wrong community dropped");
  check(!agent.handle(make_request(0, PDU_GETBULK, 1, 0, 5, {parse_oid("1.3")}), 1, out),
        "v1 GETBULK dropped");
  Bytes junk = {0x30, 0x84, 1, 2, 3};
  check(!agent.handle(junk, 1, out), "malformed dropped");
  // too many OIDs in a GET: tooBig
  std::vector<Oid> many(200, parse_oid("1.3.6.1.2.1.1.1.0"));
  auto tb = ask(1, PDU_GET, 0, 0, many);
  check(tb && tb->err == TOO_BIG && tb->vbs.empty(), "GET too big: tooBig");
  if (fails == 0)
    printf(
        "self-check ok: %zu objects per device (%d interfaces), v2c walk %zu, v1 walk %zu, GETBULK "
        "of 1000 repetitions cut to %zu varbinds in %zu bytes\n",
        want, ifaces, walked, walked1, big ? big->vbs.size() : 0, big_size);
  return fails == 0 ? 0 : 1;
}

// ---- the fleet ---------------------------------------------------------------------------------
std::atomic<bool> g_stop{false}, g_dump{false};
Stats g_stats;

struct Delayed {
  uint64_t due;
  int fd;
  sockaddr_in to;
  Bytes msg;
  bool operator>(const Delayed& o) const { return due > o.due; }
};

void serve(int epfd, Agent& agent, const std::vector<int>& fds, const std::vector<Kind>& kinds,
           const Options& o) {
  constexpr int BATCH = 32;
  std::vector<std::array<uint8_t, 2048>> bufs(BATCH);
  mmsghdr msgs[BATCH];
  iovec iov[BATCH];
  sockaddr_in from[BATCH];
  std::vector<Bytes> outs(BATCH);
  mmsghdr smsgs[BATCH];
  iovec siov[BATCH];
  std::priority_queue<Delayed, std::vector<Delayed>, std::greater<>> delayed;
  epoll_event evs[256];
  while (!g_stop.load(std::memory_order_relaxed)) {
    int timeout = 200;
    if (!delayed.empty()) {
      uint64_t now = agent.now_ms();
      timeout = delayed.top().due > now ? int(std::min<uint64_t>(delayed.top().due - now, 200)) : 0;
    }
    int n = epoll_wait(epfd, evs, 256, timeout);
    if (n < 0 && errno != EINTR) {
      perror("epoll_wait");
      break;
    }
    for (int k = 0; k < n; ++k) {
      const uint32_t dev = evs[k].data.u32;
      const int fd = fds[dev];
      for (;;) {
        for (int j = 0; j < BATCH; ++j) {
          iov[j] = {bufs[j].data(), bufs[j].size()};
          msgs[j] = {};
          msgs[j].msg_hdr.msg_iov = &iov[j];
          msgs[j].msg_hdr.msg_iovlen = 1;
          msgs[j].msg_hdr.msg_name = &from[j];
          msgs[j].msg_hdr.msg_namelen = sizeof from[j];
        }
        int got = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, nullptr);
        if (got <= 0) break;
        g_stats.received += uint64_t(got);
        if (kinds[dev] == Kind::Dead) {
          g_stats.dead += uint64_t(got);
          continue;
        }
        int ns = 0;
        for (int j = 0; j < got; ++j) {
          if (!agent.handle({bufs[j].data(), msgs[j].msg_len}, dev, outs[j], &g_stats)) {
            g_stats.dropped++;
            continue;
          }
          g_stats.answered++;
          if (kinds[dev] == Kind::Slow) {
            uint64_t d =
                uint64_t(o.slow_min_ms) + mix(g_stats.received.load() ^ dev) %
                                              uint64_t(std::max(1, o.slow_max_ms - o.slow_min_ms));
            delayed.push({agent.now_ms() + d, fd, from[j], outs[j]});
            g_stats.delayed++;
            continue;
          }
          siov[ns] = {outs[j].data(), outs[j].size()};
          smsgs[ns] = {};
          smsgs[ns].msg_hdr.msg_iov = &siov[ns];
          smsgs[ns].msg_hdr.msg_iovlen = 1;
          smsgs[ns].msg_hdr.msg_name = &from[j];
          smsgs[ns].msg_hdr.msg_namelen = msgs[j].msg_hdr.msg_namelen;
          ++ns;
        }
        if (ns > 0) sendmmsg(fd, smsgs, unsigned(ns), MSG_DONTWAIT);
        if (got < BATCH) break;
      }
    }
    const uint64_t now = agent.now_ms();
    while (!delayed.empty() && delayed.top().due <= now) {
      const Delayed& d = delayed.top();
      sendto(d.fd, d.msg.data(), d.msg.size(), MSG_DONTWAIT,
             reinterpret_cast<const sockaddr*>(&d.to), sizeof d.to);
      delayed.pop();
    }
  }
}

void print_stats(const char* when) {
  fprintf(stderr,
          "fleet_agent %s: received=%llu answered=%llu varbinds=%llu truncated_bulk=%llu "
          "delayed=%llu dead_ignored=%llu dropped=%llu\n",
          when, (unsigned long long)g_stats.received.load(),
          (unsigned long long)g_stats.answered.load(), (unsigned long long)g_stats.varbinds.load(),
          (unsigned long long)g_stats.truncated.load(), (unsigned long long)g_stats.delayed.load(),
          (unsigned long long)g_stats.dead.load(), (unsigned long long)g_stats.dropped.load());
}

[[noreturn]] void usage() {
  fprintf(
      stderr,
      "usage: bench_snmp_fleet_agent [--devices N] [--base IPV4] [--port P] [--port-range] "
      "[--ifaces N]\n"
      "         [--slow-fraction F] [--slow-min-ms MS] [--slow-max-ms MS] [--dead-fraction F]\n"
      "         [--community C] [--max-size BYTES] [--threads N] [--stats SECONDS] [--list FILE]\n"
      "       bench_snmp_fleet_agent --self-check [--ifaces N]\n");
  exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--devices")
      o.devices = atoi(val());
    else if (a == "--base")
      o.base = val();
    else if (a == "--port")
      o.port = atoi(val());
    else if (a == "--port-range")
      o.port_range = true;
    else if (a == "--ifaces")
      o.ifaces = atoi(val());
    else if (a == "--slow-fraction")
      o.slow_fraction = atof(val());
    else if (a == "--slow-min-ms")
      o.slow_min_ms = atoi(val());
    else if (a == "--slow-max-ms")
      o.slow_max_ms = atoi(val());
    else if (a == "--dead-fraction")
      o.dead_fraction = atof(val());
    else if (a == "--community")
      o.community = val();
    else if (a == "--max-size")
      o.max_size = size_t(atol(val()));
    else if (a == "--threads")
      o.threads = std::max(1, atoi(val()));
    else if (a == "--stats")
      o.stats = atof(val());
    else if (a == "--list")
      o.list = val();
    else if (a == "--self-check")
      check = true;
    else
      usage();
  }
  if (o.ifaces < 1 || o.ifaces > 100000 || o.devices < 1 || o.max_size < 100) usage();
  if (check) return self_check(o.ifaces);

  in_addr base{};
  if (inet_pton(AF_INET, o.base.c_str(), &base) != 1) {
    fprintf(stderr, "bad --base %s\n", o.base.c_str());
    return 2;
  }
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rlim_t need = rlim_t(o.devices) + 64;
  if (rl.rlim_cur < need) {
    rl.rlim_cur = std::max(need, rl.rlim_cur);
    if (rl.rlim_max < rl.rlim_cur) rl.rlim_max = rl.rlim_cur;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      perror("setrlimit(RLIMIT_NOFILE)");
      return 1;
    }
  }

  Mib mib(o.ifaces);
  Agent agent(o, mib);
  std::vector<int> fds(size_t(o.devices), -1);
  std::vector<Kind> kinds(size_t(o.devices));
  FILE* list = o.list.empty() ? nullptr : fopen(o.list.c_str(), "w");
  if (!o.list.empty() && !list) {
    perror(o.list.c_str());
    return 1;
  }
  int counts[3] = {0, 0, 0};
  std::vector<int> epfds;
  for (int t = 0; t < o.threads; ++t) epfds.push_back(epoll_create1(0));
  for (int d = 0; d < o.devices; ++d) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    uint32_t addr = ntohl(base.s_addr) + (o.port_range ? 0u : uint32_t(d));
    int port = o.port + (o.port_range ? d : 0);
    if (port > 65535) {
      fprintf(stderr, "port %d out of range\n", port);
      return 2;
    }
    sa.sin_addr.s_addr = htonl(addr);
    sa.sin_port = htons(uint16_t(port));
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int bufsz = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof bufsz);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
      char ip[32];
      inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
      fprintf(stderr, "bind %s:%d: %s\n", ip, port, strerror(errno));
      return 1;
    }
    fds[size_t(d)] = fd;
    kinds[size_t(d)] = kind_of(uint32_t(d), o);
    counts[int(kinds[size_t(d)])]++;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = uint32_t(d);
    epoll_ctl(epfds[size_t(d % o.threads)], EPOLL_CTL_ADD, fd, &ev);
    if (list) {
      char ip[32];
      inet_ntop(AF_INET, &sa.sin_addr, ip, sizeof ip);
      fprintf(list, "%d %s %d %s\n", d, ip, port, kind_name(kinds[size_t(d)]));
    }
  }
  if (list) fclose(list);

  struct sigaction sa {};
  sa.sa_handler = [](int s) {
    if (s == SIGUSR1)
      g_dump = true;
    else
      g_stop = true;
  };
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);

  char b0[32], b1[32];
  in_addr last{htonl(ntohl(base.s_addr) + (o.port_range ? 0u : uint32_t(o.devices - 1)))};
  inet_ntop(AF_INET, &base, b0, sizeof b0);
  inet_ntop(AF_INET, &last, b1, sizeof b1);
  printf(
      "fleet_agent ready: %d devices %s:%d .. %s:%d, %d interfaces each, %zu objects each; ok %d, "
      "slow %d (%d-%d ms), dead %d; %d thread(s)\n",
      o.devices, b0, o.port, b1, o.port + (o.port_range ? o.devices - 1 : 0), o.ifaces,
      mib.entries().size(), counts[0], counts[1], o.slow_min_ms, o.slow_max_ms, counts[2],
      o.threads);
  fflush(stdout);

  std::vector<std::thread> threads;
  for (int t = 0; t < o.threads; ++t)
    threads.emplace_back([&, t] { serve(epfds[size_t(t)], agent, fds, kinds, o); });
  auto last_stats = std::chrono::steady_clock::now();
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (g_dump.exchange(false)) print_stats("stats");
    if (o.stats > 0 &&
        std::chrono::steady_clock::now() - last_stats > std::chrono::duration<double>(o.stats)) {
      print_stats("stats");
      last_stats = std::chrono::steady_clock::now();
    }
  }
  for (auto& t : threads) t.join();
  print_stats("exit");
  return 0;
}
