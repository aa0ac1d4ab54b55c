#include "options.hpp"

#include <charconv>

namespace outpost::receiver {

namespace {

bool number(std::string_view s, long long max, long long& out) {
  if (s.empty()) return false;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out >= 0 && out <= max;
}

bool parse_fault(std::string_view entry, Fault& f, long long& times, std::string& error) {
  times = 1;
  if (const auto x = entry.rfind('x'); x != std::string_view::npos && x + 1 < entry.size() &&
                                       entry[x + 1] >= '0' && entry[x + 1] <= '9') {
    if (!number(entry.substr(x + 1), 1'000'000, times)) {
      error = "--fault: bad repeat count in '" + std::string(entry) + "'";
      return false;
    }
    entry = entry.substr(0, x);
  }
  long long v = 0;
  if (entry == "close") {
    f.kind = Fault::Kind::close;
  } else if (entry.starts_with("delay:")) {
    f.kind = Fault::Kind::delay;
    if (!number(entry.substr(6), 600'000, v)) {
      error = "--fault: bad delay in '" + std::string(entry) + "' (milliseconds)";
      return false;
    }
    f.delay_ms = static_cast<int>(v);
  } else {
    f.kind = Fault::Kind::status;
    const auto colon = entry.find(':');
    if (!number(entry.substr(0, colon), 599, v) || v < 200) {
      error =
          "--fault: '" + std::string(entry) + "' is not STATUS[:RETRY_AFTER], delay:MS or close";
      return false;
    }
    f.code = static_cast<int>(v);
    if (colon != std::string_view::npos) {
      if (!number(entry.substr(colon + 1), 86'400, v)) {
        error = "--fault: bad Retry-After seconds in '" + std::string(entry) + "'";
        return false;
      }
      f.retry_after = static_cast<int>(v);
    }
  }
  return true;
}

}  // namespace

std::string usage() {
  return R"(usage: outpost-receiver [options]

The reference endpoint of Outpost's uplink: accepts POSTed batches (docs/uplink-wire-format.md),
de-duplicates them by spool id and sequence ranges, and appends every item as a JSON line.

  --listen HOST:PORT    address to listen on (default 127.0.0.1:0; port 0 picks a free one).
                        The first line on stdout is "listening HOST:PORT" with the bound port.
  --cert FILE           server certificate chain (PEM); with --key, serve HTTPS. Without it,
                        plain HTTP.
  --key FILE            the certificate's private key (PEM)
  --client-ca FILE      require a client certificate signed by a CA in FILE (mutual TLS)
  --out FILE            append every accepted item as one JSON line ("type": metric, event or
                        flow; values exact: "value_bits" is the double's IEEE-754 bits in hex)
  --path PATH           the POST endpoint (default /v1/batches)
  --state FILE          keep the de-duplication high-water marks in FILE across restarts
  --max-body BYTES      largest body accepted (default 67108864); larger: 413
  --max-connections N   connections served at once (default 64); more are closed at once
  --fault SPEC          for tests: a comma list applied to successive POSTs, then normal
                        service. Entries: STATUS[:RETRY_AFTER_S][xN] (500x3, 429:2x1),
                        delay:MS[xN] (wait, then answer), close[xN] (drop the connection)
  --verbose             one line per request on stderr
  --help                this text

Answers to POST PATH (Content-Type: application/vnd.outpost.batch, a Content-Length body):
  200 accepted (JSON counts); 200 with X-Outpost-Duplicate: 1 when already accepted (nothing
  written); 409 unknown epoch (the sender resets its dictionary and sends again); 400 malformed
  (the reason in the JSON body); 411 no Content-Length or chunked; 413 too large; 415 other
  content types; 404 other paths. GET /v1/stats: JSON counters.
)";
}

bool parse_faults(std::string_view spec, std::vector<Fault>& out, std::string& error) {
  std::string cleaned;
  for (char c : spec)
    if (c != ' ') cleaned += c;
  std::string_view rest = cleaned;
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view entry = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (entry.empty()) continue;
    Fault f;
    long long times = 1;
    if (!parse_fault(entry, f, times, error)) return false;
    if (out.size() + static_cast<std::size_t>(times) > 1'000'000) {
      error = "--fault: more than 1000000 entries";
      return false;
    }
    out.insert(out.end(), static_cast<std::size_t>(times), f);
  }
  return true;
}

bool parse_options(int argc, char** argv, Options& o, std::string& error) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&](std::string& dst) {
      if (i + 1 >= argc) {
        error = std::string(a) + " needs a value";
        return false;
      }
      dst = argv[++i];
      return true;
    };
    std::string v;
    long long n = 0;
    if (a == "--help" || a == "-h") {
      o.help = true;
    } else if (a == "--verbose") {
      o.verbose = true;
    } else if (a == "--listen") {
      if (!value(v)) return false;
      const auto colon = v.rfind(':');
      if (colon == std::string::npos || !number(std::string_view(v).substr(colon + 1), 65535, n)) {
        error = "--listen: expected HOST:PORT, got '" + v + "'";
        return false;
      }
      o.host = v.substr(0, colon);
      if (o.host.size() > 2 && o.host.front() == '[' && o.host.back() == ']')
        o.host = o.host.substr(1, o.host.size() - 2);
      o.port = static_cast<uint16_t>(n);
    } else if (a == "--cert") {
      if (!value(o.cert)) return false;
    } else if (a == "--key") {
      if (!value(o.key)) return false;
    } else if (a == "--client-ca") {
      if (!value(o.client_ca)) return false;
    } else if (a == "--out") {
      if (!value(o.out)) return false;
    } else if (a == "--path") {
      if (!value(o.path)) return false;
      if (o.path.empty() || o.path[0] != '/') {
        error = "--path must start with /";
        return false;
      }
    } else if (a == "--state") {
      if (!value(o.state)) return false;
    } else if (a == "--max-body" || a == "--max-connections") {
      if (!value(v)) return false;
      if (!number(v, 1LL << 32, n) || n == 0) {
        error = std::string(a) + ": expected a positive number, got '" + v + "'";
        return false;
      }
      (a == "--max-body" ? o.max_body : o.max_connections) = static_cast<std::size_t>(n);
    } else if (a == "--fault") {
      if (!value(v) || !parse_faults(v, o.faults, error)) return false;
    } else {
      error = "unknown option '" + std::string(a) + "' (see --help)";
      return false;
    }
  }
  if (o.cert.empty() != o.key.empty()) {
    error = "--cert and --key go together";
    return false;
  }
  if (!o.client_ca.empty() && o.cert.empty()) {
    error = "--client-ca needs --cert and --key (mutual TLS)";
    return false;
  }
  return true;
}

}  // namespace outpost::receiver
