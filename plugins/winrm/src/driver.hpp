// The WinRM protocol on the shared poller runtime: per job one TCP (or TLS) connection, the
// NTLM handshake over HTTP, WinRM's message encryption, and the job's tasks one request at a
// time. Everything here runs on the runtime's I/O thread and never blocks.
#pragma once

#include <openssl/ssl.h>

#include <map>
#include <mutex>
#include <outpost_lib/async_poller.hpp>

#include "job.hpp"

namespace outpost::winrm {

class Driver final : public outpost::lib::AsyncPoller::Protocol {
 public:
  explicit Driver(outpost::Host host) : host_(host) {}
  ~Driver() override;
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;
  void attach(outpost::lib::AsyncPoller& rt) { rt_ = &rt; }
  void set_bookmarks(wql::Bookmarks* b) { bookmarks_ = b; }
  // The TLS context of a CA file ("" = the system's store); built once, on the caller's thread.
  SSL_CTX* tls_context(const std::string& ca_file);

  bool begin(outpost::lib::PollJob& job) override;
  void on_io(outpost::lib::PollJob& job, int fd, uint32_t events) override;
  void on_timer(outpost::lib::PollJob& job) override;
  void on_deadline(outpost::lib::PollJob& job) override;
  void on_end(outpost::lib::PollJob& job, outpost_status status, bool stopped) override;

 private:
  bool connect_next(WinrmJob& j);
  void start_tls(WinrmJob& j);
  void drive_tls(WinrmJob& j);
  void send_request(WinrmJob& j);
  void write_some(WinrmJob& j);
  void read_some(WinrmJob& j);
  void on_response(WinrmJob& j);
  void handle_soap(WinrmJob& j, const wsman::Response& r);
  void next_step(WinrmJob& j);
  void task_done(WinrmJob& j, outpost_status status, const std::string& why);
  void finish_task_items(WinrmJob& j);
  bool finish_eventlog(WinrmJob& j);  // false: it failed the task
  void abort_shell(WinrmJob& j, outpost_status status, const std::string& why);
  void all_done(WinrmJob& j);
  void fail(WinrmJob& j, outpost_status status, std::string why);
  void close_conn(WinrmJob& j);
  std::string build_envelope(WinrmJob& j);
  void watch_for(WinrmJob& j, bool want_write);

  outpost::Host host_;
  outpost::lib::AsyncPoller* rt_ = nullptr;
  wql::Bookmarks* bookmarks_ = nullptr;
  std::mutex tls_mu_;
  std::map<std::string, SSL_CTX*> tls_;
};

}  // namespace outpost::winrm
