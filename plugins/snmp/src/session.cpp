#include "session.hpp"

#include <sys/epoll.h>

#include <algorithm>
#include <cstring>

#include "varbind.hpp"

namespace outpost::snmp {
namespace {

using netsnmp::errno_text;
using netsnmp::lib_mutex;
using Lock = std::lock_guard<std::recursive_mutex>;
using Phase = SnmpJob::Phase;
using Ev = SnmpJob::Event;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1'000'000'000;

SnmpJob& as_snmp(outpost::lib::PollJob& j) { return static_cast<SnmpJob&>(j); }

// "udp:192.0.2.1:161" / "udp6:[fe80::1%eth0]:161" (the literal as written, scope kept); empty
// if `host` is not an IP literal.
std::string numeric_peer(const std::string& host, uint16_t port) {
  const auto a = outpost::lib::Address::parse(host);
  if (!a) return {};
  return (a->family() == AF_INET ? "udp:" + host : "udp6:[" + host + "]") + ":" +
         std::to_string(port);
}

bool is_security_error(int e) {
  switch (e) {
    case SNMPERR_BAD_SEC_LEVEL:
    case SNMPERR_UNKNOWN_USER_NAME:
    case SNMPERR_UNSUPPORTED_SEC_LEVEL:
    case SNMPERR_AUTHENTICATION_FAILURE:
    case SNMPERR_USM_GENERICERROR:
    case SNMPERR_USM_UNKNOWNSECURITYNAME:
    case SNMPERR_USM_UNSUPPORTEDSECURITYLEVEL:
    case SNMPERR_USM_ENCRYPTIONERROR:
    case SNMPERR_USM_AUTHENTICATIONFAILURE:
    case SNMPERR_DECRYPTION_ERR:
    case SNMPERR_KT_NOT_AVAILABLE:
      return true;
    default:
      return false;
  }
}

void set_engine(netsnmp_session* sp, const std::string& id) {
  auto dup = [&](u_char*& p, size_t& len) {
    SNMP_FREE(p);
    p = static_cast<u_char*>(std::malloc(id.size()));
    if (p != nullptr) std::memcpy(p, id.data(), id.size());
    len = p != nullptr ? id.size() : 0;
  };
  dup(sp->securityEngineID, sp->securityEngineIDLen);
  dup(sp->contextEngineID, sp->contextEngineIDLen);
}

}  // namespace

SessionDriver::SessionDriver(outpost::Host host, Settings settings)
    : host_(host), settings_(std::move(settings)) {
  netsnmp_large_fd_set_init(&fdset_, 1024);
}

SessionDriver::~SessionDriver() { netsnmp_large_fd_set_cleanup(&fdset_); }

// ---- the runtime's hooks: each holds net-snmp's lock ------------------------------------------

bool SessionDriver::begin(outpost::lib::PollJob& job) {
  SnmpJob& j = as_snmp(job);
  Lock lib(lib_mutex());
  j.state = &devices_[j.key];
  j.state->seen_mono_ns = rt_->now();
  j.peer = numeric_peer(j.host, j.port);
  if (j.peer.empty()) j.peer = numeric_peer(j.addrs.front().text(), j.port);
  return open(j);
}

void SessionDriver::on_io(outpost::lib::PollJob& job, int fd, uint32_t) {
  SnmpJob& j = as_snmp(job);
  Lock lib(lib_mutex());
  if (j.ended || j.sess == nullptr || fd != j.fd) return;
  netsnmp_large_fd_setfd(j.fd, &fdset_);
  snmp_sess_read2(j.sess, &fdset_);
  netsnmp_large_fd_clr(j.fd, &fdset_);
  handle(j);
  arm(j);
}

void SessionDriver::on_timer(outpost::lib::PollJob& job) {
  SnmpJob& j = as_snmp(job);
  Lock lib(lib_mutex());
  if (j.ended) return;
  if (j.phase == Phase::kClaiming) return claim(j);
  if (j.sess == nullptr) return;
  snmp_sess_timeout(j.sess);  // calls back with TIMED_OUT for an expired request
  handle(j);
  arm(j);
}

void SessionDriver::on_deadline(outpost::lib::PollJob& job) {
  SnmpJob& j = as_snmp(job);
  Lock lib(lib_mutex());
  if (j.ended) return;
  switch (j.phase) {
    case Phase::kOpening:
      return done(j, OUTPOST_E_TIMEOUT, "deadline reached opening a session to " + j.peer);
    case Phase::kDiscovering:
      return done(j, OUTPOST_E_TIMEOUT, "no answer to SNMPv3 engine discovery from " + j.peer);
    case Phase::kClaiming:
      return done(j, OUTPOST_E_TIMEOUT,
                  "waited for another poll of the same SNMPv3 engine and user to finish");
    case Phase::kDiagnosing:
      return done(j, OUTPOST_E_TIMEOUT, j.timeout_detail);
    case Phase::kPolling:
      return done(j, OUTPOST_E_TIMEOUT,
                  "deadline reached " + (j.reader != nullptr ? j.reader->activity() : "") +
                      " after " + std::to_string(j.reader != nullptr ? j.reader->responses() : 0) +
                      " responses");
  }
}

// Every outcome ends here, the runtime's as well as ours: the session closes, and the device's
// metrics leave. A poll cut short by stop(), one that never got a slot (overloaded) and a
// broken configuration say nothing about the device, so they report nothing of it.
void SessionDriver::on_end(outpost::lib::PollJob& job, outpost_status status, bool stopped) {
  SnmpJob& j = as_snmp(job);
  Lock lib(lib_mutex());
  j.ended = true;
  const int64_t now = rt_->now();
  if (j.sess != nullptr) {
    j.closing = true;
    snmp_sess_close(j.sess);  // also closes the socket (the runtime stopped watching it)
    j.sess = nullptr;
    j.fd = -1;
  }
  if (j.request != nullptr) snmp_free_pdu(j.request);
  j.request = nullptr;
  release_claim(j);
  if (!stopped && status != OUTPOST_E_OVERLOADED && status != OUTPOST_E_CONFIG) {
    const Polled who{j.device, j.address, j.base};
    const int64_t elapsed =
        j.stage == outpost::lib::PollJob::Stage::running ? now - j.started_ns : 0;
    Report out;
    if (!j.gets.empty() || !j.walks.empty())
      report(j.probe.get(), who, status, elapsed, out);
    else
      report(j.collector.get(), who, status, elapsed, now, devices_[j.key], out);
    for (auto& m : out.metrics) rt_->emit(std::move(m));
    for (auto& e : out.events) rt_->emit(std::move(e));
  }
  // Devices not polled for a day (removed from the inventory, renamed) are forgotten.
  if (now - pruned_ns_ >= 60 * kSecond) {
    pruned_ns_ = now;
    std::erase_if(devices_,
                  [&](const auto& d) { return now - d.second.seen_mono_ns > 86400 * kSecond; });
  }
}

// ---- sessions -----------------------------------------------------------------------------------

// Opens the device's session and sends its first request. False only when descriptors ran out
// while others are open: the runtime retries later.
bool SessionDriver::open(SnmpJob& j) {
  netsnmp_session s;
  snmp_sess_init(&s);
  std::string peer = j.peer;
  s.peername = peer.data();
  s.retries = 0;  // retries are ours: each on a fresh request-id, with a longer wait
  s.timeout = j.request_timeout_ns / 1000;
  // Never net-snmp's blocking engine ID probe: discovery is one of our asynchronous requests.
  s.flags |= SNMP_FLAGS_DONT_PROBE;
  std::string user = j.v3.user, context = j.v3.context;
  if (j.version == 3) {
    s.version = SNMP_VERSION_3;
    s.securityModel = SNMP_SEC_MODEL_USM;
    s.securityName = user.data();
    s.securityNameLen = user.size();
    s.securityLevel = j.v3.level;
    if (!context.empty()) {
      s.contextName = context.data();
      s.contextNameLen = context.size();
    }
    if (j.v3.level != SNMP_SEC_LEVEL_NOAUTH) {
      s.securityAuthProto = const_cast<oid*>(j.v3.auth_proto);
      s.securityAuthProtoLen = j.v3.auth_proto_len;
      s.securityAuthKeyLen = std::min(j.v3.auth_key.size(), sizeof s.securityAuthKey);
      std::memcpy(s.securityAuthKey, j.v3.auth_key.data(), s.securityAuthKeyLen);
    }
    if (j.v3.level == SNMP_SEC_LEVEL_AUTHPRIV) {
      s.securityPrivProto = const_cast<oid*>(j.v3.priv_proto);
      s.securityPrivProtoLen = j.v3.priv_proto_len;
      s.securityPrivKeyLen = std::min(j.v3.priv_key.size(), sizeof s.securityPrivKey);
      std::memcpy(s.securityPrivKey, j.v3.priv_key.data(), s.securityPrivKeyLen);
    }
  } else {
    s.version = j.version == 1 ? SNMP_VERSION_1 : SNMP_VERSION_2c;
    s.community = reinterpret_cast<u_char*>(j.community.data());
    s.community_len = j.community.size();
  }
  errno = 0;
  void* sess = snmp_sess_open(&s);
  const int err = errno;
  if (sess == nullptr) {
    if ((err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) && rt_->running() > 1)
      return false;
    done(j, OUTPOST_E_UNAVAILABLE,
         "cannot open an SNMP session to " + j.peer + ": " +
             (err != 0 ? errno_text(err) : std::string(snmp_api_errstring(s.s_snmp_errno))));
    return true;
  }
  j.sess = sess;
  netsnmp_session* sp = snmp_sess_session(sess);
  sp->flags |= SNMP_FLAGS_DONT_PROBE;  // opening cleared it
  netsnmp_transport* tr = snmp_sess_transport(sess);
  j.fd = tr != nullptr ? tr->sock : -1;
  if (j.fd >= 0) {
    try {
      rt_->watch(j, j.fd, EPOLLIN, outpost::lib::AsyncPoller::FdOwner::protocol);
    } catch (const outpost::Error& e) {
      done(j, OUTPOST_E_INTERNAL, e.what());
      return true;
    }
  }
  if (j.version == 3) {
    discover(j);
    return true;
  }
  start_polling(j);
  return true;
}

// SNMPv3 engine ID discovery (RFC 3414 4): an unauthenticated empty GET answered by a
// usmStatsUnknownEngineIDs report that carries the agent's engine ID. Done on every poll, as
// net-snmp's tools do: with a remembered engine ID, an agent that came back with a new one
// (reinstalled, or no persistent storage) answers with a report net-snmp cannot parse (it
// names our user under an engine ID we have no user for), which would look like a dead agent.
void SessionDriver::discover(SnmpJob& j) {
  j.phase = Phase::kDiscovering;
  netsnmp_pdu* pdu = snmp_pdu_create(SNMP_MSG_GET);
  pdu->version = SNMP_VERSION_3;
  pdu->securityName = strdup("");
  pdu->securityNameLen = 0;
  pdu->securityLevel = SNMP_SEC_LEVEL_NOAUTH;
  pdu->securityModel = SNMP_SEC_MODEL_USM;
  send(j, pdu);
}

// Makes this device's user the USM list's entry for (engine, user), or parks the poll (it
// looks again in 20 ms) while another poll holds that entry with other keys.
void SessionDriver::claim(SnmpJob& j) {
  netsnmp_session* sp = snmp_sess_session(j.sess);
  std::string key(reinterpret_cast<const char*>(sp->securityEngineID), sp->securityEngineIDLen);
  key += '\0';
  key += j.v3.user;
  auto& claims = netsnmp::usm_claims();
  auto it = claims.find(key);
  if (it != claims.end() && it->second.holders > 0 && it->second.fingerprint != j.v3.fingerprint) {
    j.phase = Phase::kClaiming;
    rt_->set_timer(j, rt_->now() + 20 * kMs);
    return;
  }
  if (it == claims.end() || it->second.fingerprint != j.v3.fingerprint) {
    if (usmUser* u =
            usm_get_user(sp->securityEngineID, sp->securityEngineIDLen, j.v3.user.data())) {
      usm_remove_user(u);
      usm_free_user(u);
    }
    claims[key].fingerprint = j.v3.fingerprint;
  }
  ++claims[key].holders;
  j.claim = std::move(key);
  sp->flags &= ~SNMP_FLAGS_USER_CREATED;
  if (usm_create_user_from_session(sp) != SNMPERR_SUCCESS)
    return done(j, OUTPOST_E_CONFIG, "cannot set up SNMPv3 user '" + j.v3.user + "'");
  start_polling(j);
}

void SessionDriver::release_claim(SnmpJob& j) {
  if (j.claim.empty()) return;
  auto& claims = netsnmp::usm_claims();
  if (auto it = claims.find(j.claim); it != claims.end() && it->second.holders > 0)
    --it->second.holders;
  j.claim.clear();
}

void SessionDriver::start_polling(SnmpJob& j) {
  j.phase = Phase::kPolling;
  if (!j.gets.empty() || !j.walks.empty()) {
    j.probe = std::make_unique<Probe>(j.copts, j.gets, j.walks);
    j.reader = j.probe.get();
  } else {
    std::shared_ptr<const Plan> guess;
    if (j.profiles && !j.state->plan.empty()) guess = j.profiles->plan(j.state->plan);
    j.collector = std::make_unique<Collector>(j.copts, j.profiles, j.profile,
                                              settings_.default_profile, guess);
    j.reader = j.collector.get();
  }
  send_next(j);
}

void SessionDriver::send_next(SnmpJob& j) {
  std::optional<Request> req = j.reader->next();
  if (!req) {
    if (!j.reader->failure().empty()) return done(j, OUTPOST_E_CONFIG, j.reader->failure());
    return done(j, OUTPOST_OK, {});
  }
  const int type = req->type == PduType::kGet       ? SNMP_MSG_GET
                   : req->type == PduType::kGetNext ? SNMP_MSG_GETNEXT
                                                    : SNMP_MSG_GETBULK;
  netsnmp_pdu* pdu = snmp_pdu_create(type);
  if (type == SNMP_MSG_GETBULK) {
    pdu->non_repeaters = 0;
    pdu->max_repetitions = req->repetitions;
  }
  std::vector<oid> name;
  for (const auto& o : req->oids) {
    name.assign(o.begin(), o.end());
    snmp_add_null_var(pdu, name.data(), name.size());
  }
  send(j, pdu);
}

// A new question (the job keeps it, for retries) and its first attempt.
void SessionDriver::send(SnmpJob& j, netsnmp_pdu* pdu) {
  if (j.request != nullptr) snmp_free_pdu(j.request);
  j.request = pdu;
  j.attempt = 0;
  send_attempt(j);
}

// One attempt: a copy of the question under a fresh request-id, waiting as long as the
// device's measured response times say (at least request_timeout, at most
// max_request_timeout, never past the deadline).
void SessionDriver::send_attempt(SnmpJob& j) {
  netsnmp_session* sp = snmp_sess_session(j.sess);
  const int64_t now = rt_->now();
  const int64_t wait =
      std::clamp(j.state->rtt.timeout(j.request_timeout_ns, settings_.max_request_timeout_ns),
                 10 * kMs, std::max(j.deadline_ns - now, 10 * kMs));
  sp->timeout = wait / 1000;
  sp->retries = 0;
  netsnmp_pdu* pdu = snmp_clone_pdu(j.request);
  if (pdu == nullptr) return done(j, OUTPOST_E_INTERNAL, "out of memory building a request");
  pdu->reqid = snmp_get_next_reqid();
  pdu->msgid = snmp_get_next_msgid();
  const long reqid = pdu->reqid;
  j.reqid = 0;  // a failure reported synchronously is handled from the return value
  j.event = Ev::kNone;
  if (snmp_sess_async_send(j.sess, pdu, &SessionDriver::on_pdu, &j) == 0) {
    const int se = sp->s_snmp_errno, sys = sp->s_errno;
    snmp_free_pdu(pdu);
    if (is_security_error(se))
      return done(j, OUTPOST_E_AUTH, std::string("SNMPv3: ") + snmp_api_errstring(se));
    return done(j, OUTPOST_E_UNAVAILABLE,
                "send to " + j.peer + " failed: " +
                    (sys != 0 ? errno_text(sys) : std::string(snmp_api_errstring(se))));
  }
  j.reqid = reqid;
  j.sent_ns = now;
  arm(j);
}

// The runtime's timer for the job: when net-snmp's outstanding request expires.
void SessionDriver::arm(SnmpJob& j) {
  if (j.ended || j.sess == nullptr || j.phase == Phase::kClaiming) return;
  int64_t at = INT64_MAX;
  if (j.reqid != 0) {
    int numfds = 0, block = 1;
    timeval tv{};
    snmp_sess_select_info2_flags(j.sess, &numfds, &fdset_, &tv, &block, NETSNMP_SELECT_NOALARMS);
    if (j.fd >= 0) netsnmp_large_fd_clr(j.fd, &fdset_);
    // net-snmp compares expiry with "<": a millisecond late is never early.
    if (block == 0) at = rt_->now() + tv.tv_sec * kSecond + tv.tv_usec * 1000 + kMs;
  }
  rt_->set_timer(j, at);
}

// net-snmp's callback: runs inside snmp_sess_read2/timeout/close. It only records what
// happened; handle() acts on it once net-snmp is done with the packet.
// A session has one request outstanding at a time, so anything for it is about that request;
// reqid is not compared because an SNMPv3 report about a message the agent could not
// authenticate carries no usable request-id (net-snmp matched it by msgID).
int SessionDriver::on_pdu(int op, netsnmp_session*, int, netsnmp_pdu* pdu, void* magic) {
  auto* j = static_cast<SnmpJob*>(magic);
  if (j == nullptr || j->closing || j->reqid == 0) return 1;
  try {
    switch (op) {
      case NETSNMP_CALLBACK_OP_RECEIVED_MESSAGE:
        if (pdu != nullptr && pdu->command == SNMP_MSG_REPORT) {
          const int type = snmpv3_get_report_type(pdu);
          // notInTimeWindow: net-snmp has learnt the agent's time and resends by itself.
          if (type == SNMPERR_NOT_IN_TIME_WINDOW) return 1;
          j->event = Ev::kReport;
          j->report = type;
          if (pdu->securityEngineID != nullptr && pdu->securityEngineIDLen > 0)
            j->report_engine.assign(reinterpret_cast<const char*>(pdu->securityEngineID),
                                    pdu->securityEngineIDLen);
        } else if (pdu != nullptr) {
          j->event = Ev::kResponse;
          j->response = netsnmp::decode(pdu);
        }
        break;
      case NETSNMP_CALLBACK_OP_TIMED_OUT:
        j->event = Ev::kTimeout;
        break;
      case NETSNMP_CALLBACK_OP_SEC_ERROR:
        j->event = Ev::kSecError;
        j->report = pdu != nullptr ? snmpv3_get_report_type(pdu) : 0;
        break;
      case NETSNMP_CALLBACK_OP_SEND_FAILED:
        j->event = Ev::kSendFailed;
        break;
      default:
        return 1;
    }
  } catch (...) {
    j->event = Ev::kSendFailed;  // out of memory decoding: report rather than unwind into C
  }
  j->reqid = 0;  // one outcome per request: later calls for it are ignored
  return 1;
}

// Acts on what the callback recorded.
void SessionDriver::handle(SnmpJob& j) {
  const Ev ev = std::exchange(j.event, Ev::kNone);
  if (ev == Ev::kResponse || ev == Ev::kReport) j.state->rtt.sample(rt_->now() - j.sent_ns);
  switch (ev) {
    case Ev::kNone:
      return;
    case Ev::kResponse:
      if (j.phase == Phase::kDiscovering) {
        // An agent that answers the empty probe with a response still tells its engine ID.
        if (snmp_sess_session(j.sess)->securityEngineIDLen == 0)
          return done(j, OUTPOST_E_UNAVAILABLE, "SNMPv3 engine discovery got no engine ID");
        return claim(j);
      }
      if (j.phase == Phase::kDiagnosing)
        return done(j, OUTPOST_E_AUTH,
                    "wrong SNMPv3 privacy password or protocol for user '" + j.v3.user +
                        "': the agent accepts its authentication but ignores encrypted requests");
      j.authenticated = true;
      j.reader->on_response(j.response);
      j.response = {};
      return send_next(j);
    case Ev::kReport:
    case Ev::kSecError:
      return on_report(j, ev);
    case Ev::kTimeout:
      return on_timeout(j);
    case Ev::kSendFailed: {
      const netsnmp_session* sp = snmp_sess_session(j.sess);
      return done(j, OUTPOST_E_UNAVAILABLE,
                  "send to " + j.peer + " failed: " +
                      (sp->s_errno != 0 ? errno_text(sp->s_errno)
                                        : std::string(snmp_api_errstring(sp->s_snmp_errno))));
    }
  }
}

void SessionDriver::on_report(SnmpJob& j, Ev ev) {
  const int type = j.report;
  const std::string& user = j.v3.user;
  if (j.phase == Phase::kDiscovering) {
    netsnmp_session* sp = snmp_sess_session(j.sess);
    if (sp->securityEngineIDLen == 0 && !j.report_engine.empty()) set_engine(sp, j.report_engine);
    if (sp->securityEngineIDLen == 0)
      return done(j, OUTPOST_E_UNAVAILABLE, "SNMPv3 engine discovery got no engine ID");
    return claim(j);
  }
  if (j.phase == Phase::kDiagnosing) {
    if (type == SNMPERR_AUTHENTICATION_FAILURE)
      return done(j, OUTPOST_E_AUTH,
                  "wrong SNMPv3 authentication password or protocol for user '" + user +
                      "' (usmStatsWrongDigests)");
    return done(j, OUTPOST_E_AUTH,
                "wrong SNMPv3 privacy password or protocol for user '" + user +
                    "': the agent accepts its authentication but ignores encrypted requests");
  }
  switch (type) {
    case SNMPERR_UNKNOWN_USER_NAME:
      return done(j, OUTPOST_E_AUTH,
                  "SNMPv3 user '" + user + "' unknown to the agent (usmStatsUnknownUserNames)");
    case SNMPERR_AUTHENTICATION_FAILURE:
      return done(j, OUTPOST_E_AUTH,
                  "wrong SNMPv3 authentication password or protocol for user '" + user +
                      "' (usmStatsWrongDigests)");
    case SNMPERR_UNSUPPORTED_SEC_LEVEL:
      return done(j, OUTPOST_E_AUTH,
                  "security level not allowed for SNMPv3 user '" + user +
                      "' (usmStatsUnsupportedSecLevels)");
    case SNMPERR_DECRYPTION_ERR:
      return done(j, OUTPOST_E_AUTH,
                  "the agent cannot decrypt our requests: wrong SNMPv3 privacy password or "
                  "protocol for user '" +
                      user + "' (usmStatsDecryptionErrors)");
    case SNMPERR_NOT_IN_TIME_WINDOW:
      return done(
          j, OUTPOST_E_UNAVAILABLE,
          "SNMPv3 messages stay outside the agent's time window (usmStatsNotInTimeWindows)");
    case SNMPERR_UNKNOWN_ENG_ID:
      return done(
          j, OUTPOST_E_UNAVAILABLE,
          "the agent's SNMPv3 engine ID changed during the poll (usmStatsUnknownEngineIDs)");
    default:
      if (ev == Ev::kSecError || type != 0)
        return done(
            j, OUTPOST_E_AUTH,
            std::string("SNMPv3 security error: ") +
                snmp_api_errstring(type != 0 ? type : snmp_sess_session(j.sess)->s_snmp_errno));
      return done(j, OUTPOST_E_UNAVAILABLE, "unexpected report from the agent");
  }
}

// An attempt went unanswered: the device's wait doubles (RFC 6298 5.5), and the question goes
// again while retries and time are left.
void SessionDriver::on_timeout(SnmpJob& j) {
  j.state->rtt.backoff();
  if (j.attempt < j.retries && j.deadline_ns - rt_->now() > 10 * kMs) {
    ++j.attempt;
    return send_attempt(j);
  }
  const int n = j.attempt + 1;
  const std::string attempts = std::to_string(n) + " attempt" + (n == 1 ? "" : "s");
  if (j.phase == Phase::kDiscovering)
    return done(j, OUTPOST_E_TIMEOUT,
                "no answer to SNMPv3 engine discovery from " + j.peer + " after " + attempts);
  if (j.phase == Phase::kDiagnosing) return done(j, OUTPOST_E_TIMEOUT, j.timeout_detail);
  std::string detail =
      "no response from " + j.peer + " after " + attempts + " " + j.reader->activity();
  if (j.version != 3 && j.reader->responses() == 0) detail += " (agent down, or a wrong community)";
  // An SNMPv3 agent silently drops requests it cannot decrypt; asking the same user without
  // privacy tells a wrong privacy password from a dead agent.
  if (j.version == 3 && j.v3.level == SNMP_SEC_LEVEL_AUTHPRIV && !j.authenticated &&
      j.deadline_ns - rt_->now() > 20 * kMs) {
    j.phase = Phase::kDiagnosing;
    j.timeout_detail = std::move(detail);
    netsnmp_pdu* pdu = snmp_pdu_create(SNMP_MSG_GET);
    pdu->securityLevel = SNMP_SEC_LEVEL_AUTHNOPRIV;
    std::vector<oid> name(kSysUpTime.begin(), kSysUpTime.end());
    snmp_add_null_var(pdu, name.data(), name.size());
    return send(j, pdu);
  }
  done(j, OUTPOST_E_TIMEOUT, detail);
}

// Our outcome for the job: what was read settles the status, then the runtime completes it
// (and calls on_end).
void SessionDriver::done(SnmpJob& j, outpost_status status, std::string detail) {
  if (j.ended) return;
  if (status == OUTPOST_E_TIMEOUT && j.reader != nullptr && j.phase == Phase::kPolling)
    j.reader->on_timeout();
  if (status != OUTPOST_E_CONFIG)
    status =
        j.probe ? settle(j.probe.get(), status, detail) : settle(j.collector.get(), status, detail);
  rt_->finish(j, status, std::move(detail));
}

}  // namespace outpost::snmp
