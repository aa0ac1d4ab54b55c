#include <catch2/catch.hpp>

#include "config/config.hpp"

using namespace outpost::core;

namespace {
std::string first_error(const std::string& yaml) {
  auto r = parse_config_text(yaml, "t.yaml");
  REQUIRE_FALSE(r.errors.empty());
  return r.errors.front().str();
}
}  // namespace

TEST_CASE("a valid configuration parses with defaults applied") {
  auto r = parse_config_text(R"(
engine:
  id: e1
  scheduler: {default_interval: 30s, default_timeout: 5s}
plugins:
  icmp: {count: 2}
  fast: {plugin: tcp, max_concurrent: 10}
sinks:
  local: {plugin: sqlite, path: "${data_dir}/x.db"}
inventory:
  devices:
    - name: r1
      address: 127.0.0.1
      tags: {site: lab}
      monitors:
        - {plugin: icmp}
        - {plugin: fast, port: 22, interval: 10s, timeout: 2s, send: [a, b]}
    - address: 127.0.0.2
)",
                             "t.yaml");
  INFO((r.errors.empty() ? "" : r.errors[0].str()));
  REQUIRE(r.config);
  const Config& c = *r.config;
  CHECK(c.engine.id == "e1");
  REQUIRE(c.devices.size() == 2);
  CHECK(c.devices[1].name == "127.0.0.2");
  const auto& m0 = c.devices[0].monitors[0];
  CHECK(m0.interval_s == 30);
  CHECK(m0.timeout_s == 5);
  const auto& m1 = c.devices[0].monitors[1];
  CHECK(m1.instance == "fast");
  CHECK(m1.interval_s == 10);
  CHECK(m1.timeout_s == 2);
  REQUIRE(m1.params.size() == 3);
  CHECK(m1.params[0].key == "port");
  CHECK(m1.params[1].key == "send.0");
  CHECK(m1.params[2].value == "b");
  CHECK(m1.params[0].where.line == 17);
  REQUIRE(c.find_plugin("fast"));
  CHECK(c.find_plugin("fast")->plugin == "tcp");
  CHECK(expand_vars(c.sinks[0].settings[0].value, c.engine) == "outpost-data/x.db");
}

TEST_CASE("a monitor's timeout: its own, the configured default, or half its interval") {
  auto parse = [](const std::string& scheduler) {
    return parse_config_text("engine:\n  id: e1\n" + scheduler + R"(
plugins:
  fast: {plugin: tcp}
inventory:
  devices:
    - name: r1
      address: 127.0.0.1
      monitors:
        - {plugin: fast, port: 22, interval: 5m}
        - {plugin: fast, port: 23, interval: 1m}
        - {plugin: fast, port: 24, interval: 10s}
        - {plugin: fast, port: 25, interval: 5s}
        - {plugin: fast, port: 26, interval: 1m, timeout: 3s}
)",
                             "t.yaml");
  };
  auto timeouts = [](const ParseResult& r) {
    std::vector<double> t;
    for (const auto& m : r.config->devices.at(0).monitors) t.push_back(m.timeout_s);
    return t;
  };
  const auto plain = parse("");
  REQUIRE(plain.config);
  CHECK(timeouts(plain) == std::vector<double>{150, 30, 10, 5, 3});
  const auto fixed = parse("  scheduler: {default_timeout: 20s}\n");
  REQUIRE(fixed.config);
  CHECK(timeouts(fixed) == std::vector<double>{20, 20, 10, 5, 3});
}

TEST_CASE("errors carry file, line, column and key path") {
  CHECK(first_error("engine:\n  idd: x\n") ==
        "t.yaml:2:3: engine.idd: unknown key (expected one of: data_dir, id, "
        "log_level, pipeline, plugin_dirs, scheduler, self_metrics_interval, "
        "summary_interval)");
  CHECK(first_error("engine: {summary_interval: soon}\n")
            .find("t.yaml:1:28: engine.summary_interval: not a valid duration") == 0);
  CHECK(first_error("uplinks: {}\n").find("t.yaml:1:1: uplinks: unknown key") == 0);
  CHECK(first_error(
            "inventory:\n  devices:\n    - name: a\n      monitors:\n        - {interval: 5s}\n")
            .find("t.yaml:5:11: inventory.devices[0].monitors[0]: missing key 'plugin'") == 0);
  CHECK(first_error("sinks:\n  x: {path: y}\n").find("t.yaml:2:3: sinks.x: missing key 'plugin'") ==
        0);
  CHECK(first_error("engine: [1, 2\n").find("t.yaml:") == 0);  // a YAML syntax error
  CHECK(first_error("inventory:\n  devices:\n    - {name: a}\n    - {name: a}\n")
            .find("duplicate device name 'a'") != std::string::npos);
  CHECK(first_error("engine:\n  scheduler: {jitter: 2}\n")
            .find("t.yaml:2:23: engine.scheduler.jitter: expected a number between 0 and 1") == 0);
  CHECK(first_error("inventory:\n  devices:\n    - {name: a, monitors: [{plugin: p, interval: 1s, "
                    "timeout: 5s}]}\n")
            .find("timeout is longer than the interval") != std::string::npos);
}

TEST_CASE("a missing file is an error, not a crash") {
  auto r = parse_config_file("/nonexistent/outpost.yaml");
  REQUIRE_FALSE(r.config);
  CHECK(r.errors[0].str() == "/nonexistent/outpost.yaml: cannot open the file");
}

TEST_CASE("plugin settings are checked against the plugin's field table") {
  const outpost_field fields[] = {
      {{"port", 4}, OUTPOST_FIELD_INT, OUTPOST_FIELD_REQUIRED, {"", 0}, {"", 0}},
      {{"timeout", 7}, OUTPOST_FIELD_DURATION, 0, {"", 0}, {"", 0}},
      {{"tls", 3}, OUTPOST_FIELD_BOOL, 0, {"", 0}, {"", 0}},
      {{"hosts", 5}, OUTPOST_FIELD_LIST, 0, {"", 0}, {"", 0}},
  };
  auto check = [&](const Settings& s) {
    std::vector<ConfigError> errors;
    validate_settings(s, fields, 4, "m", Location{"f", 1, 1}, errors);
    return errors;
  };
  Location l{"f", 3, 5};  // value and key at the same place here
  CHECK(check({{"port", "22", l, l},
               {"timeout", "2s", l, l},
               {"tls", "yes", l, l},
               {"hosts.0", "a", l, l}})
            .empty());
  auto e = check({{"port", "http", l, l}});
  REQUIRE(e.size() == 1);
  CHECK(e[0].str() == "f:3:5: m.port: expected an integer, got 'http'");
  e = check({{"port", "1", l, l}, {"colour", "red", l, l}});
  REQUIRE(e.size() == 1);
  CHECK(e[0].str().find("m.colour: unknown key (expected one of: port, timeout, tls, hosts)") !=
        std::string::npos);
  e = check({});
  REQUIRE(e.size() == 1);
  CHECK(e[0].str() == "f:1:1: m: missing required key 'port'");
  e = check({{"port", "1", l, l},
             {"timeout", "forever", l, l},
             {"tls", "maybe", l, l},
             {"port.0", "1", l, l}});
  CHECK(e.size() == 3);
  e = check({{"port", "1", l, l}, {"hosts", "a", l, l}});
  REQUIRE(e.size() == 1);
  CHECK(e[0].message == "expected a list");
  // A list of maps (users, rules): members pass as key.N.member.
  CHECK(check({{"port", "1", l, l},
               {"hosts.0.name", "a", l, l},
               {"hosts.0.port", "2", l, l},
               {"hosts.1.name", "b", l, l}})
            .empty());
  e = check({{"port", "1", l, l},
             {"tls.0.x", "a", l, l},
             {"nope.0.x", "a", l, l},
             {"hosts.x.y", "a", l, l}});
  REQUIRE(e.size() == 3);
  CHECK(e[0].message == "expected a boolean, got a list");
  CHECK(e[1].message.find("unknown key") == 0);
  CHECK(e[2].message.find("unknown key") == 0);
}

TEST_CASE("the embedded default configuration parses") {
  auto r = parse_config_text(embedded_default_config(), "<embedded default>");
  REQUIRE(r.config);
  CHECK(r.config->devices.size() >= 5);
  CHECK(r.config->sinks.size() == 1);
}
