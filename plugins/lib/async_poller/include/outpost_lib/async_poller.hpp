// The runtime every asynchronous poller plugin is built on (tcp today; snmp, icmp, ssh, http,
// dns... next). A plugin supplies only its protocol's state machine (a Protocol); the runtime
// does the rest, once, for all of them:
//   - intake: poll() hands it jobs, one per target, from the host's hook thread;
//   - names: targets given by host name are resolved through c-ares (the configured DNS servers,
//     else the system's), one lookup per name however many targets share it, answers cached
//     within their TTL; IP literals never wait;
//   - admission: at most max_concurrent jobs run at once, the rest wait their turn;
//   - timers: one heap of deadlines and protocol timers, stale entries skipped;
//   - batching: metrics and completions of one loop turn leave in one emit;
//   - the promise: every job is completed exactly once, before its deadline, also at stop().
// A job that never got a slot before its deadline is completed OUTPOST_E_OVERLOADED: the engine
// counts it as skipped, not as a failed device.
//
// Everything a Protocol hook does runs on the runtime's one I/O thread; the hooks must not
// block. snmp (net-snmp sessions, a borrowed socket each) and tcp are built on it. See this
// library's README for a whole plugin in 60 lines.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <outpost/sdk.hpp>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace outpost::lib {

struct Address {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family() const { return ss.ss_family; }
  void set_port(uint16_t port);
  std::string text() const;  // "192.0.2.1" or "2001:db8::1"
  // An IP literal ("192.0.2.1", "2001:db8::1", "fe80::1%eth0"), without any I/O; nullopt for
  // anything else.
  static std::optional<Address> parse(const std::string& literal);
  // What a job's `host` is for an inventory address: an IPv6 literal loses its brackets
  // ("[2001:db8::1]" -> "2001:db8::1"); anything else is itself.
  static std::string host_of(std::string_view address);
};

// One target's work. A plugin derives its own job type and keeps its protocol state in it.
class PollJob {
 public:
  virtual ~PollJob() = default;
  enum class Stage { resolving, waiting, running };

  // Set by the plugin before submit().
  uint64_t poll_id = 0, target_id = 0;
  std::string host;  // name or IP literal to reach (brackets already stripped)

  // Set by the runtime.
  std::vector<Address> addrs;  // the host's addresses, once resolved
  Stage stage = Stage::resolving;
  int64_t deadline_ns = 0;  // the poll's deadline less a margin: the runtime completes by then
  int64_t queued_ns = 0;    // when it started waiting for a slot
  int64_t started_ns = 0;   // when it got one (Protocol::begin)

 private:
  friend class AsyncPoller;
  uint64_t seq_ = 0;
  int64_t timer_at_ = INT64_MAX;
  int64_t protocol_timer_ = INT64_MAX;
  struct Watched {
    int fd;
    bool owned;
  };
  std::vector<Watched> fds_;
};

struct AsyncPollerOptions {
  std::string name;  // the plugin's, for details ("tcp plugin stopped")
  std::size_t max_concurrent = 256;
  std::vector<std::string> dns_servers;  // "ip", "ip:port", "[ip6]:port"; empty: the system's
  int dns_timeout_ms = 2000;
  int dns_tries = 2;
  int64_t dns_min_ttl_ns = 1'000'000'000;       // answers are kept at least this long
  int64_t dns_max_ttl_ns = 3600'000'000'000;    // and at most this long
  int64_t dns_negative_ttl_ns = 5'000'000'000;  // a failed lookup is remembered this long
  std::size_t dns_cache_size = 100'000;
  int family = AF_UNSPEC;  // AF_INET or AF_INET6: only addresses of that family are used
  // Which addresses a lookup asks for, as getaddrinfo's socktype (SOCK_STREAM, SOCK_DGRAM).
  int socktype = SOCK_STREAM;
};

// The runtime's settings every poller shares, to list in a plugin's config_fields().
// A non-blocking TCP connection to `a` at `port`, under way (EINPROGRESS) or made: the socket,
// or -1 with the errno in *err (EMFILE or ENFILE: out of descriptors; else this address failed).
int start_connect(const Address& a, uint16_t port, int* err);
// Once a connecting socket is writable (or hung up): 0 when it is connected, else the errno.
int connect_result(int fd, uint32_t events);

std::vector<outpost_field> async_poller_fields(const char* default_max_concurrent);
// Reads them (throws outpost::Error(OUTPOST_E_CONFIG) on a bad value).
AsyncPollerOptions async_poller_options(const outpost::Config& cfg, std::string name,
                                        int64_t default_max_concurrent);

class AsyncPoller {
 public:
  class Protocol {
   public:
    virtual ~Protocol() = default;
    // A slot is free and the job's addresses are known: open sockets, watch() them, set
    // timers, or finish() at once. Return false only when descriptors ran out (EMFILE...): the
    // job waits for another to end, with nothing left open.
    virtual bool begin(PollJob& job) = 0;
    // A watched descriptor of the job is ready (EPOLLIN/EPOLLOUT/EPOLLERR/EPOLLHUP bits).
    virtual void on_io(PollJob& job, int fd, uint32_t events) = 0;
    // The timer set with set_timer() came due, before the deadline.
    virtual void on_timer(PollJob& job) { (void)job; }
    // The deadline came while the job was running: finish() it with the protocol's words (the
    // runtime finishes it with a plain timeout if this does not).
    virtual void on_deadline(PollJob& job) = 0;
    // The job leaves with `status`, however it ended: finished by the protocol, by the runtime
    // (a name that does not resolve, a deadline, no slot: OUTPOST_E_OVERLOADED), or cut short by
    // stop() (`stopped`). Emit the target's metrics here, so every outcome has them; close what
    // begin() opened and is still open (descriptors the runtime owns are closed after this;
    // the ones watched with FdOwner::protocol are no longer watched, and are the hook's to close).
    virtual void on_end(PollJob& job, outpost_status status, bool stopped) {
      (void)job, (void)status, (void)stopped;
    }

    // For a protocol whose descriptors serve every job at once (icmp: one raw socket per
    // address family), and whose sends are paced across jobs:
    // The I/O thread began: watch_shared() the instance's descriptors here.
    virtual void on_start() {}
    // A descriptor given to watch_shared() is ready.
    virtual void on_shared_io(int fd, uint32_t events) { (void)fd, (void)events; }
    // Once per loop turn, after new jobs began: send what is due. Returns when it wants to be
    // called again (host monotonic), INT64_MAX when only I/O or a job's timer can bring work.
    virtual int64_t on_turn(int64_t now_ns) {
      (void)now_ns;
      return INT64_MAX;
    }
  };

  AsyncPoller(outpost::Host host, Protocol& protocol, AsyncPollerOptions options);
  ~AsyncPoller();
  AsyncPoller(const AsyncPoller&) = delete;
  AsyncPoller& operator=(const AsyncPoller&) = delete;

  void start();  // throws outpost::Error
  // Completes every job still open or queued (OUTPOST_E_UNAVAILABLE, "<name> plugin stopped"),
  // emits what was collected, and joins the I/O thread. Idempotent.
  void stop();

  // From poll(): takes the jobs; deadline_ns is the request's. Each is completed exactly once.
  void submit(std::vector<std::unique_ptr<PollJob>> jobs, int64_t deadline_ns);
  // From poll(): a job per target made by `make` (poll_id and target_id set here); a target
  // whose job cannot be made (outpost::Error: a bad parameter) is completed with that error.
  void submit(const outpost::PollRequest& req,
              const std::function<std::unique_ptr<PollJob>(const outpost::Target&)>& make);

  // ---- for Protocol hooks, on the I/O thread only ----
  // Who closes a watched descriptor: the runtime (when the job ends, or at unwatch()), or the
  // protocol, for a socket a library it drives owns (net-snmp's session socket): the runtime
  // then only stops watching it, before on_end, where the protocol closes it its own way.
  enum class FdOwner : uint8_t { runtime, protocol };
  // Watches fd for the job (EPOLLIN, EPOLLOUT...); again with other events to change them.
  void watch(PollJob& job, int fd, uint32_t events, FdOwner owner = FdOwner::runtime);
  void unwatch(PollJob& job, int fd);  // stops watching; closes fd if the runtime owns it
  // A descriptor of the instance, not of a job (on_shared_io); the protocol closes it after
  // stop() returned. From on_start() or any other hook.
  void watch_shared(int fd, uint32_t events);
  // Calls on_timer at `at_ns` (host monotonic), unless the deadline comes first. INT64_MAX: none.
  void set_timer(PollJob& job, int64_t at_ns);
  // The job's outcome; metrics already emitted for it leave with the completion.
  void finish(PollJob& job, outpost_status status, std::string detail);
  void emit(outpost::Metric metric);
  void emit(outpost::Event event);
  int64_t now() const { return host_.monotonic_ns(); }
  // Whether the slots were all taken at some time since `t` (for a waiting job's detail).
  bool saturated_since(int64_t t) const { return saturated_ns_ >= t; }
  std::size_t running() const { return running_; }

  struct Stats {
    uint64_t submitted = 0, completed = 0, dns_queries = 0, dns_cache_hits = 0;
  };
  Stats stats() const;

 private:
  struct Impl;
  void loop();
  void take_incoming();
  void resolved(const std::string& host, const std::vector<Address>& addrs,
                const std::string& error, int ttl_s);
  void resolved_one(PollJob& job, std::vector<Address> addrs, const std::string& error);
  void admit();
  void fire_timers();
  void arm(PollJob& job);
  int wait_ms();
  void flush();
  void stop_all();
  void contain(PollJob& job, const char* hook, const std::exception& e);

  outpost::Host host_;
  Protocol& protocol_;
  AsyncPollerOptions opt_;
  std::unique_ptr<Impl> impl_;
  std::thread thread_;
  std::size_t running_ = 0;
  int64_t saturated_ns_ = INT64_MIN;
  bool stopping_ = false;  // the I/O thread's: stop() is completing what is left
};

}  // namespace outpost::lib
