// WMI over DCOM on the shared poller runtime: per job one connection to the object resolver
// (activation), then one to the object exporter the activation names, NTLM-authenticated
// DCE/RPC at packet privacy (or integrity), and the job's tasks one call at a time. Everything
// here runs on the runtime's I/O thread and never blocks.
#pragma once

#include <outpost_lib/async_poller.hpp>

#include "job.hpp"

namespace outpost::wmi {

class Driver final : public outpost::lib::AsyncPoller::Protocol {
 public:
  explicit Driver(outpost::Host host) : host_(host) {}
  void attach(outpost::lib::AsyncPoller& rt) { rt_ = &rt; }
  void set_bookmarks(wql::Bookmarks* b) { bookmarks_ = b; }

  bool begin(outpost::lib::PollJob& job) override;
  void on_io(outpost::lib::PollJob& job, int fd, uint32_t events) override;
  void on_timer(outpost::lib::PollJob& job) override;
  void on_deadline(outpost::lib::PollJob& job) override;
  void on_end(outpost::lib::PollJob& job, outpost_status status, bool stopped) override;

 private:
  void start_call(WmiJob& j, const dcom::Uuid& iid, std::optional<dcom::Uuid> ipid, uint16_t opnum,
                  std::vector<uint8_t> stub);
  bool connect_to(WmiJob& j);
  void send_pending(WmiJob& j);
  void write_some(WmiJob& j);
  void read_some(WmiJob& j);
  void on_pdu(WmiJob& j, const std::vector<uint8_t>& pdu);
  void on_stub(WmiJob& j, const std::vector<uint8_t>& stub);
  void next_task(WmiJob& j);
  void run_task(WmiJob& j);
  void enum_done(WmiJob& j);
  void on_invoke(WmiJob& j, const std::vector<uint8_t>& stub);
  void task_done(WmiJob& j, outpost_status status, const std::string& why);
  void finish_items(WmiJob& j);
  void all_done(WmiJob& j);
  void close_conn(WmiJob& j);
  void fail(WmiJob& j, outpost_status status, std::string why);
  dcom::Uuid causality();

  outpost::Host host_;
  outpost::lib::AsyncPoller* rt_ = nullptr;
  wql::Bookmarks* bookmarks_ = nullptr;
  uint64_t cid_counter_ = 0;
};

}  // namespace outpost::wmi
