#include "driver.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

namespace outpost::wmi {

using outpost::lib::PollJob;

namespace {

constexpr int64_t kRestartPollNs = 1'000'000'000;
constexpr std::size_t kMaxItemsPerTask = 100'000;

std::string errno_text(int err) { return std::strerror(err); }

outpost_status status_of(dcom::Status s) {
  switch (s) {
    case dcom::Status::denied:
      return OUTPOST_E_AUTH;
    case dcom::Status::not_found:
      return OUTPOST_E_NOT_FOUND;
    case dcom::Status::invalid:
      return OUTPOST_E_CONFIG;
    case dcom::Status::busy:
      return OUTPOST_E_BUSY;
    default:
      return OUTPOST_E_UNAVAILABLE;
  }
}

outpost_status status_of(const dcerpc::Error& e) {
  switch (e.status) {
    case dcerpc::Status::auth_refused:
      return OUTPOST_E_AUTH;
    case dcerpc::Status::fault:
      return e.code == dcerpc::kRpcAccessDenied ? OUTPOST_E_AUTH : OUTPOST_E_UNAVAILABLE;
    default:
      return OUTPOST_E_UNAVAILABLE;
  }
}

// WMI object paths quote key values with double quotes; a quote or backslash inside is escaped.
std::string object_path(const Task& t) {
  std::string p = t.class_name;
  char sep = '.';
  for (const auto& [k, v] : t.selectors) {
    p += sep;
    p += k + "=\"";
    for (char c : v) {
      if (c == '"' || c == '\\') p += '\\';
      p += c;
    }
    p += '"';
    sep = ',';
  }
  return p;
}

std::string ns_key(std::string ns) {
  for (auto& c : ns) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (c == '\\') c = '/';
  }
  return ns;
}

const char* step_name(WmiJob::Step s) {
  switch (s) {
    case WmiJob::Step::activate:
      return "RemoteCreateInstance";
    case WmiJob::Step::login:
      return "NTLMLogin";
    case WmiJob::Step::query:
      return "ExecQuery";
    case WmiJob::Step::next:
      return "IEnumWbemClassObject::Next";
    case WmiJob::Step::release_enum:
    case WmiJob::Step::release_all:
      return "RemRelease";
    case WmiJob::Step::invoke:
      return "ExecMethod";
  }
  return "?";
}

}  // namespace

dcom::Uuid Driver::causality() {
  // A causality ID only has to be unique per call chain; random, not secret.
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  dcom::Uuid u;
  for (std::size_t i = 0; i < 16; i += 8) {
    const uint64_t r = rng() ^ ++cid_counter_;
    std::memcpy(u.bytes.data() + i, &r, 8);
  }
  u.bytes[6] = static_cast<uint8_t>((u.bytes[6] & 0x0F) | 0x40);
  u.bytes[8] = static_cast<uint8_t>((u.bytes[8] & 0x3F) | 0x80);
  return u;
}

bool Driver::begin(PollJob& job) {
  auto& j = static_cast<WmiJob&>(job);
  if (j.tasks.empty()) {
    rt_->finish(j, OUTPOST_OK, "nothing to do");
    return true;
  }
  j.conn_port = j.s.port;
  j.step = WmiJob::Step::activate;
  j.call = {dcom::iid_iremote_scm_activator(),
            {},
            dcom::kRemoteCreateInstance,
            dcom::remote_create_instance(causality(), dcom::clsid_wbem_level1_login(),
                                         dcom::iid_iwbem_level1_login())};
  return connect_to(j);
}

bool Driver::connect_to(WmiJob& j) {
  while (j.addr_index < j.addrs.size()) {
    const outpost::lib::Address& a = j.addrs[j.addr_index];
    int err = 0;
    const int fd = outpost::lib::start_connect(a, j.conn_port, &err);
    if (fd < 0) {
      if (err == EMFILE || err == ENFILE) return false;
      // Another address of the host only while looking for the resolver: the exporter is
      // reached on the address the resolver answered on.
      if (!j.at_exporter && ++j.addr_index < j.addrs.size()) continue;
      fail(j, OUTPOST_E_UNAVAILABLE,
           "connect to " + a.text() + " port " + std::to_string(j.conn_port) + ": " +
               errno_text(err));
      return true;
    }
    j.fd = fd;
    j.phase = WmiJob::Phase::connecting;
    rt_->watch(j, fd, EPOLLOUT);
    return true;
  }
  fail(j, OUTPOST_E_UNAVAILABLE, "no address to connect to");
  return true;
}

void Driver::close_conn(WmiJob& j) {
  if (j.fd >= 0) rt_->unwatch(j, j.fd);  // closes it
  j.fd = -1;
  j.awaiting = false;
  j.assoc.reset();
  j.reader = dcerpc::Reader();
  j.out.clear();
  j.out_at = 0;
}

void Driver::on_io(PollJob& job, int fd, uint32_t events) {
  auto& j = static_cast<WmiJob&>(job);
  if (fd != j.fd) return;
  switch (j.phase) {
    case WmiJob::Phase::connecting: {
      const int err = outpost::lib::connect_result(fd, events);
      if (err != 0) {
        const outpost::lib::Address a = j.addrs[j.addr_index];
        rt_->unwatch(j, fd);
        j.fd = -1;
        if (!j.at_exporter && ++j.addr_index < j.addrs.size()) {
          if (!connect_to(j)) fail(j, OUTPOST_E_UNAVAILABLE, "out of file descriptors");
          return;
        }
        return fail(
            j, OUTPOST_E_UNAVAILABLE,
            std::string(j.at_exporter ? "connect to the WMI object exporter at "
                                      : "connect to the DCOM object resolver at ") +
                a.text() + " port " + std::to_string(j.conn_port) + ": " + errno_text(err) +
                (j.at_exporter ? " (a firewall between us and the dynamic RPC ports?)" : ""));
      }
      if (j.connected_ns == 0) j.connected_ns = rt_->now();
      try {
        std::optional<outpost::lib::ntlm::Credentials> creds;
        if (j.s.level != dcerpc::AuthLevel::none)
          creds = outpost::lib::ntlm::Credentials{j.s.account.user, j.s.account.domain,
                                                  j.s.account.password};
        j.assoc.emplace(j.s.level, std::move(creds));
        j.out = j.assoc->bind(dcom::syntax(j.call.iid));
      } catch (const dcerpc::Error& e) {
        return fail(j, OUTPOST_E_CONFIG, e.what());
      } catch (const outpost::lib::ntlm::Error& e) {
        return fail(j, OUTPOST_E_CONFIG, e.what());
      }
      j.out_at = 0;
      j.wait = WmiJob::Wait::bind;
      j.awaiting = true;
      j.phase = WmiJob::Phase::writing;
      rt_->watch(j, j.fd, EPOLLOUT);
      return write_some(j);
    }
    case WmiJob::Phase::writing:
      return write_some(j);
    case WmiJob::Phase::reading:
      return read_some(j);
  }
}

void Driver::start_call(WmiJob& j, const dcom::Uuid& iid, std::optional<dcom::Uuid> ipid,
                        uint16_t opnum, std::vector<uint8_t> stub) {
  j.call = {iid, ipid.value_or(dcom::Uuid{}), opnum, std::move(stub)};
  if (j.fd < 0 || !j.assoc || !j.assoc->bound()) {
    // The server closed an idle connection (or none is open yet): a new one, a new bind; the
    // DCOM objects live on in the exporter.
    close_conn(j);
    if (!connect_to(j)) fail(j, OUTPOST_E_UNAVAILABLE, "out of file descriptors");
    return;
  }
  try {
    if (!j.assoc->context_id(dcom::syntax(iid))) {
      j.out = j.assoc->alter_context(dcom::syntax(iid));
      j.wait = WmiJob::Wait::alter;
      j.awaiting = true;
    } else {
      send_pending(j);
      return;
    }
  } catch (const dcerpc::Error& e) {
    return fail(j, status_of(e), e.what());
  }
  j.out_at = 0;
  j.phase = WmiJob::Phase::writing;
  rt_->watch(j, j.fd, EPOLLOUT);
  write_some(j);
}

void Driver::send_pending(WmiJob& j) {
  // The call's fragments, after whatever is still queued (AUTH3 rides in front of the first).
  std::vector<uint8_t> out(j.out.begin() + static_cast<std::ptrdiff_t>(j.out_at), j.out.end());
  try {
    const bool objectless = j.call.ipid == dcom::Uuid{};
    const auto ctx = j.assoc->context_id(dcom::syntax(j.call.iid));
    for (auto& f : j.assoc->request(j.call.opnum, j.call.stub,
                                    objectless ? std::nullopt : std::optional(j.call.ipid), ctx))
      out.insert(out.end(), f.begin(), f.end());
  } catch (const dcerpc::Error& e) {
    return fail(j, status_of(e), e.what());
  }
  j.out = std::move(out);
  j.out_at = 0;
  j.wait = WmiJob::Wait::call;
  j.awaiting = true;
  ++j.calls;
  j.phase = WmiJob::Phase::writing;
  rt_->watch(j, j.fd, EPOLLOUT);
  write_some(j);
}

void Driver::write_some(WmiJob& j) {
  while (j.out_at < j.out.size()) {
    const ssize_t n = ::send(j.fd, j.out.data() + j.out_at, j.out.size() - j.out_at, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      return fail(j, OUTPOST_E_UNAVAILABLE, "send: " + errno_text(errno));
    }
    j.out_at += static_cast<std::size_t>(n);
  }
  j.out.clear();
  j.out_at = 0;
  j.phase = WmiJob::Phase::reading;
  rt_->watch(j, j.fd, EPOLLIN);
}

void Driver::read_some(WmiJob& j) {
  uint8_t buf[16384];
  for (;;) {
    const ssize_t n = ::recv(j.fd, buf, sizeof buf, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      return fail(j, OUTPOST_E_UNAVAILABLE, "recv: " + errno_text(errno));
    }
    if (n == 0) {
      if (!j.awaiting) {  // an idle connection closed (e.g. while a restart waits): reopen later
        close_conn(j);
        return;
      }
      if (j.wait == WmiJob::Wait::call && j.assoc) {
        const dcerpc::Error e = j.assoc->closed();
        return fail(j, status_of(e), std::string(step_name(j.step)) + ": " + e.what());
      }
      return fail(j, OUTPOST_E_UNAVAILABLE, "the server closed the connection during the bind");
    }
    try {
      j.reader.feed({buf, static_cast<std::size_t>(n)});
      while (auto pdu = j.reader.next()) {
        const int before = j.calls;
        const int fd = j.fd;
        on_pdu(j, *pdu);
        // The PDU may have finished the job, closed the connection or started the next call.
        if (j.ended || j.fd != fd || j.calls != before || j.phase != WmiJob::Phase::reading) return;
      }
    } catch (const dcerpc::Error& e) {
      return fail(j, status_of(e), e.what());
    }
  }
}

void Driver::on_pdu(WmiJob& j, const std::vector<uint8_t>& pdu) {
  switch (j.wait) {
    case WmiJob::Wait::bind:
      j.out = j.assoc->on_bind_ack(pdu);  // AUTH3, sent in front of the call
      j.out_at = 0;
      return send_pending(j);
    case WmiJob::Wait::alter:
      j.assoc->on_alter_context_resp(pdu);
      j.out.clear();
      j.out_at = 0;
      return send_pending(j);
    case WmiJob::Wait::call: {
      std::optional<std::vector<uint8_t>> stub;
      try {
        stub = j.assoc->on_response(pdu);
      } catch (const dcerpc::Error& e) {
        // A fault answers this call alone; the association goes on unless the error broke it.
        if (e.status == dcerpc::Status::fault && j.assoc->bound() &&
            j.step != WmiJob::Step::activate && j.step != WmiJob::Step::release_all) {
          j.awaiting = false;
          const std::string why = std::string(step_name(j.step)) + ": " + e.what();
          if (j.step == WmiJob::Step::next || j.step == WmiJob::Step::release_enum) {
            j.enumerator.reset();
            j.items.clear();
          }
          return task_done(j, status_of(e), why);
        }
        throw;
      }
      if (!stub) return;  // more fragments to come
      j.awaiting = false;
      return on_stub(j, *stub);
    }
  }
}

void Driver::on_stub(WmiJob& j, const std::vector<uint8_t>& stub) {
  using Step = WmiJob::Step;
  const Step step = j.step;
  try {
    switch (step) {
      case Step::activate: {
        j.activation = dcom::decode_remote_create_instance(stub);
        std::optional<uint16_t> port;
        for (const auto& b : j.activation.bindings)
          if (b.tower_id == dcom::kTowerTcp && b.port()) {
            port = b.port();
            break;
          }
        if (!port)
          return fail(j, OUTPOST_E_UNAVAILABLE,
                      "the activation named no TCP endpoint of the WMI object exporter");
        // The exporter is reached on the address the resolver answered on (the names in the
        // string bindings may not resolve from here, or point elsewhere behind NAT).
        close_conn(j);
        j.at_exporter = true;
        j.conn_port = *port;
        return run_task(j);
      }
      case Step::login: {
        dcom::ObjRef svc = dcom::decode_interface_result(stub, "NTLMLogin");
        if (svc.kind != dcom::ObjRef::Kind::standard || svc.oxid != j.activation.oxid)
          return task_done(j, OUTPOST_E_UNAVAILABLE,
                           "NTLMLogin: IWbemServices lives in another object exporter");
        j.services[ns_key(j.tasks[j.task_at].wmi_namespace)] = std::move(svc);
        return run_task(j);
      }
      case Step::query: {
        dcom::ObjRef en = dcom::decode_interface_result(stub, "ExecQuery");
        if (en.kind != dcom::ObjRef::Kind::standard || en.oxid != j.activation.oxid)
          return task_done(j, OUTPOST_E_UNAVAILABLE,
                           "ExecQuery: the enumerator lives in another object exporter");
        j.enumerator = std::move(en);
        j.step = Step::next;
        return start_call(j, dcom::iid_ienum_wbem_class_object(), j.enumerator->ipid,
                          dcom::kEnumNext,
                          dcom::enum_next(causality(), j.s.next_timeout_ms, j.s.batch));
      }
      case Step::next: {
        dcom::NextResult r;
        try {
          r = dcom::decode_enum_next(stub, j.s.batch);
          for (const auto& o : r.objects) {
            if (o.kind != dcom::ObjRef::Kind::custom ||
                !(o.clsid == dcom::clsid_wbem_class_object()))
              throw dcom::Error(dcom::Status::protocol, 0,
                                "Next: an object that is not a marshalled IWbemClassObject");
            for (auto& inst : outpost::lib::wmio::decode(o.object_data, j.classes))
              j.items.push_back(std::move(inst));
          }
          if (j.items.size() > kMaxItemsPerTask)
            throw dcom::Error(dcom::Status::invalid, 0,
                              "more than " + std::to_string(kMaxItemsPerTask) + " instances");
        } catch (const dcom::Error& e) {
          j.enum_failure = status_of(e.status);
          j.enum_failure_why = e.what();
        } catch (const outpost::lib::wmio::Error& e) {
          j.enum_failure = OUTPOST_E_UNAVAILABLE;
          j.enum_failure_why = std::string("an object that does not decode: ") + e.what();
        }
        const bool more =
            j.enum_failure == OUTPOST_OK && (r.hresult == dcom::kWbemSTimedOut ||
                                             (r.hresult == 0 && r.objects.size() == j.s.batch));
        if (more)
          return start_call(j, dcom::iid_ienum_wbem_class_object(), j.enumerator->ipid,
                            dcom::kEnumNext,
                            dcom::enum_next(causality(), j.s.next_timeout_ms, j.s.batch));
        // The enumerator is released at once: WMI keeps it (and its results) until then.
        j.step = Step::release_enum;
        const dcom::Release rel{j.enumerator->ipid,
                                std::max<uint32_t>(j.enumerator->public_refs, 1)};
        return start_call(j, dcom::iid_irem_unknown(), j.activation.remunknown_ipid,
                          dcom::kRemRelease, dcom::rem_release(causality(), {&rel, 1}));
      }
      case Step::release_enum:
        try {
          dcom::decode_rem_release(stub);
        } catch (const dcom::Error& e) {
          host_.log(OUTPOST_LOG_DEBUG, "wmi: " + j.s.device + ": " + e.what());
        }
        j.enumerator.reset();
        return enum_done(j);
      case Step::invoke:
        return on_invoke(j, stub);
      case Step::release_all:
        try {
          dcom::decode_rem_release(stub);
        } catch (const dcom::Error& e) {
          host_.log(OUTPOST_LOG_DEBUG, "wmi: " + j.s.device + ": " + e.what());
        }
        j.services.clear();
        return all_done(j);
    }
  } catch (const dcom::Error& e) {
    const std::string why = std::string(step_name(step)) + ": " + e.what();
    if (step == Step::activate) return fail(j, status_of(e.status), why);
    if (step == Step::release_all) return all_done(j);
    if (e.status == dcom::Status::protocol)  // the exporter speaks something else: stop here
      return fail(j, OUTPOST_E_UNAVAILABLE, why);
    return task_done(j, status_of(e.status), e.what());
  } catch (const outpost::lib::wmio::Error& e) {
    return task_done(j, OUTPOST_E_UNAVAILABLE,
                     std::string("an object that does not decode: ") + e.what());
  }
}

void Driver::run_task(WmiJob& j) {
  using Step = WmiJob::Step;
  const Task& t = j.tasks[j.task_at];
  const std::string key = ns_key(t.wmi_namespace);
  auto svc = j.services.find(key);
  if (svc == j.services.end()) {
    j.step = Step::login;
    std::string ns = t.wmi_namespace;
    for (auto& c : ns)
      if (c == '\\') c = '/';
    return start_call(j, dcom::iid_iwbem_level1_login(), j.activation.object.ipid, dcom::kNtlmLogin,
                      dcom::ntlm_login(causality(), "//./" + ns));
  }
  std::string wql;
  if (t.kind == Task::Kind::invoke && !j.waiting_state) {
    j.step = Step::invoke;
    return start_call(j, dcom::iid_iwbem_services(), svc->second.ipid, dcom::kExecMethod,
                      dcom::exec_method(causality(), object_path(t),
                                        wql::service_method(t, j.restart_phase == 1)));
  }
  if (t.kind == Task::Kind::invoke)
    wql = wql::service_state_wql(t);
  else if (j.probing)
    wql = wql::eventlog_probe_wql(t.log, t.window_end.value_or(0));
  else
    wql = t.wql;
  j.step = Step::query;
  start_call(j, dcom::iid_iwbem_services(), svc->second.ipid, dcom::kExecQuery,
             dcom::exec_query(causality(), wql));
}

void Driver::enum_done(WmiJob& j) {
  Task& t = j.tasks[j.task_at];
  if (j.enum_failure != OUTPOST_OK) {
    const outpost_status st = j.enum_failure;
    const std::string why = j.enum_failure_why;
    return task_done(j, st, why);
  }
  if (t.kind == Task::Kind::invoke) {  // restart: waiting for the service to stop
    const std::string* found = j.items.empty() ? nullptr : j.items.front().value("State");
    if (found == nullptr)
      return task_done(j, OUTPOST_E_NOT_FOUND, "no service " + t.selectors.at(0).second);
    j.service_state = *found;
    j.items.clear();
    if (j.service_state != "Stopped") {
      rt_->set_timer(j, rt_->now() + kRestartPollNs);  // look again in a moment
      return;
    }
    j.waiting_state = false;
    j.restart_phase = 1;
    return run_task(j);
  }
  if (t.kind == Task::Kind::eventlog) {
    if (j.probing) {  // the window's last record exists: the window is complete
      if (!j.items.empty() && bookmarks_ != nullptr && t.window_end)
        bookmarks_->set(j.s.device, t.bookmark_key, *t.window_end);
      return task_done(j, OUTPOST_OK, {});
    }
    std::string why;
    if (!wql::take_eventlog(host_, bookmarks_, t, std::move(j.items), j.base, j.s.device,
                            j.s.max_events, why))
      return task_done(j, OUTPOST_E_BUSY, why);
    j.items.clear();
    if (!t.window_end) return task_done(j, OUTPOST_OK, {});
    j.probing = true;
    return run_task(j);
  }
  finish_items(j);
  task_done(j, OUTPOST_OK, {});
}

void Driver::on_invoke(WmiJob& j, const std::vector<uint8_t>& stub) {
  const Task& t = j.tasks[j.task_at];
  int64_t code = -1;
  if (auto out = dcom::decode_exec_method(stub); out && !out->object_data.empty()) {
    outpost::lib::wmio::ClassCache cache;  // __PARAMETERS: a class of its own per method
    for (const auto& inst : outpost::lib::wmio::decode(out->object_data, cache))
      if (const std::string* rv = inst.value("ReturnValue"); rv != nullptr)
        code = std::strtoll(rv->c_str(), nullptr, 10);
  }
  const std::string method = wql::service_method(t, j.restart_phase == 1);
  outpost::Event ev = wql::service_control_event(t, method, code, j.base, j.s.device,
                                                 j.s.account.user, host_.now_ns());
  const std::string what = ev.message;
  rt_->emit(std::move(ev));
  const wql::ServiceStep next =
      wql::service_step(t, t.method == "restart" && j.restart_phase == 0, code);
  if (next.wait_stopped) {
    j.waiting_state = true;
    return run_task(j);
  }
  task_done(j, next.status, next.status == OUTPOST_OK ? std::string() : what);
}

void Driver::on_timer(PollJob& job) {
  auto& j = static_cast<WmiJob&>(job);
  run_task(j);  // restart: look at the service's state again
}

void Driver::finish_items(WmiJob& j) {
  const Task& t = j.tasks[j.task_at];
  const int64_t now = host_.now_ns();
  if (t.query != nullptr)
    for (auto& m : wql::to_metrics(*t.query, j.items, j.base, now)) rt_->emit(std::move(m));
  if (j.s.query_events)
    for (auto& ev : wql::instance_events(j.items, j.base, j.s.device, now))
      rt_->emit(std::move(ev));
  j.items.clear();
}

void Driver::task_done(WmiJob& j, outpost_status status, const std::string& why) {
  j.outcome.done(j.tasks[j.task_at], status, why);
  j.items.clear();
  j.enumerator.reset();
  j.restart_phase = 0;
  j.service_state.clear();
  j.waiting_state = false;
  j.probing = false;
  j.enum_failure = OUTPOST_OK;
  j.enum_failure_why.clear();
  if (++j.task_at < j.tasks.size()) return run_task(j);
  // The objects this poll made are released, not left to the exporter's ping timeout.
  std::vector<dcom::Release> refs;
  for (const auto& [ns, svc] : j.services)
    refs.push_back({svc.ipid, std::max<uint32_t>(svc.public_refs, 1)});
  if (j.activation.object.kind == dcom::ObjRef::Kind::standard && j.activation.oxid != 0)
    refs.push_back(
        {j.activation.object.ipid, std::max<uint32_t>(j.activation.object.public_refs, 1)});
  if (refs.empty() || j.fd < 0) return all_done(j);
  j.step = WmiJob::Step::release_all;
  start_call(j, dcom::iid_irem_unknown(), j.activation.remunknown_ipid, dcom::kRemRelease,
             dcom::rem_release(causality(), refs));
}

void Driver::all_done(WmiJob& j) {
  auto [status, detail] = j.outcome.result(j.tasks.size());
  rt_->finish(j, status, std::move(detail));
}

void Driver::fail(WmiJob& j, outpost_status status, std::string why) {
  rt_->finish(j, status, std::move(why));
}

void Driver::on_deadline(PollJob& job) {
  auto& j = static_cast<WmiJob&>(job);
  if (j.task_at < j.tasks.size() && !j.service_state.empty())
    return fail(j, OUTPOST_E_TIMEOUT,
                "timed out waiting for service " + j.tasks[j.task_at].selectors.at(0).second +
                    " to stop (its state: " + j.service_state + ")");
  const char* where = j.phase == WmiJob::Phase::connecting ? "connecting"
                      : j.phase == WmiJob::Phase::writing  ? "sending"
                                                           : "waiting for an answer";
  fail(j, OUTPOST_E_TIMEOUT,
       std::string("timed out ") + where + " (" + step_name(j.step) + ", " +
           (j.at_exporter ? "object exporter" : "object resolver") + " port " +
           std::to_string(j.conn_port) + ", after " + std::to_string(j.calls) + " calls, " +
           std::to_string(j.task_at) + " of " + std::to_string(j.tasks.size()) + " tasks done)");
}

void Driver::on_end(PollJob& job, outpost_status, bool) {
  auto& j = static_cast<WmiJob&>(job);
  j.ended = true;
  rt_->emit(outpost::Metric{"wmi_query_failures", j.base, static_cast<double>(j.outcome.failed()),
                            host_.now_ns(), OUTPOST_METRIC_GAUGE});
}

}  // namespace outpost::wmi
