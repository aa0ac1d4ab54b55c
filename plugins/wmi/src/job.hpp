// One target's poll over WMI/DCOM: the settings make_job() read, the tasks (plugins/lib/wql)
// and, while it runs, the connection, its DCE/RPC association and the DCOM objects in use.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <outpost/sdk.hpp>
#include <outpost_lib/async_poller.hpp>
#include <outpost_lib/dcerpc.hpp>
#include <outpost_lib/dcom.hpp>
#include <outpost_lib/wmio.hpp>
#include <outpost_lib/wql.hpp>
#include <outpost_lib/wql_plan.hpp>
#include <string>
#include <vector>

namespace outpost::wmi {

namespace wql = outpost::lib::wql;
namespace dcerpc = outpost::lib::dcerpc;
namespace dcom = outpost::lib::dcom;
using Task = wql::Task;

struct Settings {
  std::string device, address;
  uint16_t port = 135;  // the object resolver (activation); the exporter's port comes from it
  wql::Account account;
  dcerpc::AuthLevel level = dcerpc::AuthLevel::privacy;
  int32_t next_timeout_ms = 30000;  // IEnumWbemClassObject::Next's lTimeout
  uint32_t batch = 100;             // objects asked for per Next
  std::size_t max_events = 1000;
  bool query_events = false;  // ad hoc query: every instance becomes an event
};

struct WmiJob final : outpost::lib::PollJob {
  Settings s;
  outpost::Labels base;
  std::shared_ptr<const wql::ProfileSet> profiles;  // keeps Task::query alive
  std::vector<Task> tasks;

  // ---- while it runs ----
  enum class Phase { connecting, writing, reading } phase = Phase::connecting;
  int fd = -1;
  std::size_t addr_index = 0;
  uint16_t conn_port = 0;    // the port of the connection in use
  bool at_exporter = false;  // connected to the object exporter (else the resolver)
  std::vector<uint8_t> out;  // bytes still to send from out_at
  std::size_t out_at = 0;
  dcerpc::Reader reader;
  std::optional<dcerpc::Association> assoc;

  // What the PDU awaited answers.
  enum class Wait { bind, alter, call } wait = Wait::bind;
  bool awaiting = false;  // a PDU was sent whose answer has not come yet
  // The call in flight, or waiting for its interface's presentation context.
  struct Call {
    dcom::Uuid iid, ipid;
    uint16_t opnum = 0;
    std::vector<uint8_t> stub;
  } call;
  enum class Step {
    activate,      // RemoteCreateInstance of WbemLevel1Login
    login,         // NTLMLogin to the task's namespace
    query,         // ExecQuery
    next,          // IEnumWbemClassObject::Next
    release_enum,  // RemRelease of the enumerator
    invoke,        // ExecMethod
    release_all,   // RemRelease of the login and services objects, at the end
  } step = Step::activate;

  dcom::Activation activation;                   // the login object and its exporter
  std::map<std::string, dcom::ObjRef> services;  // per namespace (lower case)
  std::optional<dcom::ObjRef> enumerator;
  outpost::lib::wmio::ClassCache classes;  // per connection: the classes seen
  std::vector<wql::Instance> items;

  std::size_t task_at = 0;
  int restart_phase = 0;       // restart: 0 stop, 1 start
  std::string service_state;   // restart: the state last seen while waiting for the stop
  bool waiting_state = false;  // restart: the query is the service's state
  bool probing = false;        // eventlog: asking whether the window's last record exists
  // An enumeration that failed still releases its enumerator first; the failure waits here.
  outpost_status enum_failure = OUTPOST_OK;
  std::string enum_failure_why;

  // ---- outcome ----
  int calls = 0;
  wql::Outcome outcome;
  int64_t connected_ns = 0;
  bool ended = false;  // finish() was called: nothing more to do with this job
};

}  // namespace outpost::wmi
