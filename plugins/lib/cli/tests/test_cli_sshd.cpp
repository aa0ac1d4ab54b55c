// The CLI session layer against a real OpenSSH sshd and FRRouting's vtysh (cli_sshd.sh starts
// them and passes where they are in CLI_* variables).
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <outpost_lib/cli.hpp>
#include <outpost_test/tool.hpp>
#include <string>

namespace cli = outpost::lib::cli;
using namespace std::chrono_literals;

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) FAIL(std::string(name) + " is not set: run through cli_sshd.sh");
  return v;
}

cli::Options shell_opts() {
  cli::Options o;
  o.host = "127.0.0.1";
  o.port = static_cast<uint16_t>(std::stoi(env("CLI_PORT")));
  o.user = env("CLI_SHELL_USER");
  o.password = env("CLI_SHELL_PASS");
  o.connect_timeout = 10s;
  o.command_timeout = 10s;
  return o;
}

cli::HostKeyPolicy known() { return {env("CLI_KNOWN_HOSTS"), false}; }

cli::Status status_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const cli::Error& e) {
    INFO(e.what());
    return e.status;
  }
  FAIL("no error");
  return cli::Status::protocol;
}

std::string hostname() {
  char buf[256] = {};
  ::gethostname(buf, sizeof buf - 1);
  return buf;
}

}  // namespace

TEST_CASE("a shell over SSH: password login, commands, outputs without echo or prompt") {
  auto s = cli::Session::open(shell_opts(), known(), *cli::find_driver("linux"));
  CHECK(s->host_key() == cli::HostKey::known);
  CHECK(s->host_key_fingerprint() == env("CLI_HOSTKEY_FP"));
  CHECK(s->run("echo hello") == "hello\n");
  CHECK(s->run("uname -n") == hostname() + "\n");
  CHECK(s->run("printf 'a\\nb\\nc\\n'") == "a\nb\nc\n");
  // Output that only looks like a prompt line does not end the command.
  CHECK(s->run("printf 'x#\\ny\\n'") == "x#\ny\n");
  CHECK_FALSE(s->failed(s->run("true")));
  CHECK(s->failed(s->run("/no/such/tool")));
}

TEST_CASE("a key login") {
  cli::Options o = shell_opts();
  o.password.clear();
  o.key_file = env("CLI_SHELL_KEY");
  auto s = cli::Session::open(o, known(), *cli::find_driver("linux"));
  CHECK(s->run("id -un") == env("CLI_SHELL_USER") + "\n");
}

TEST_CASE("refusals each with their class") {
  const cli::Driver& linux = *cli::find_driver("linux");
  cli::Options bad = shell_opts();
  bad.password = "wrong";
  CHECK(status_of([&] { cli::Session::open(bad, known(), linux); }) == cli::Status::auth);

  cli::Options closed_port = shell_opts();
  closed_port.port = 1;
  CHECK(status_of([&] { cli::Session::open(closed_port, known(), linux); }) ==
        cli::Status::unreachable);

  cli::Options nologin = shell_opts();
  nologin.user = env("CLI_NOLOGIN_USER");
  nologin.password = env("CLI_NOLOGIN_PASS");
  CHECK(status_of([&] { cli::Session::open(nologin, known(), linux); }) == cli::Status::closed);
}

TEST_CASE("host keys: unknown refused, trusted on first use only when allowed, a change refused") {
  const cli::Driver& linux = *cli::find_driver("linux");
  const std::string dir = env("CLI_TMP");
  const std::string empty = dir + "/empty_known_hosts";
  std::ofstream(empty).close();
  CHECK(status_of([&] {
          cli::Session::open(shell_opts(), {empty, false}, linux);
        }) == cli::Status::host_key_unknown);

  const std::string tofu = dir + "/tofu_known_hosts";
  std::ofstream(tofu).close();
  {
    auto s = cli::Session::open(shell_opts(), {tofu, true}, linux);
    CHECK(s->host_key() == cli::HostKey::added);
  }
  {
    auto s = cli::Session::open(shell_opts(), {tofu, false}, linux);  // now it is known
    CHECK(s->host_key() == cli::HostKey::known);
  }

  // The store holds another key for this host and port: someone else answers.
  const std::string other = dir + "/other_known_hosts";
  const std::string key = dir + "/fake_hostkey";
  const std::string fake = outpost::test::run_tool("rm -f " + key + " " + key +
                                                   ".pub && ssh-keygen -q -t ed25519 -N '' -f " +
                                                   key + " >/dev/null && cat " + key + ".pub");
  std::ofstream(other) << "[127.0.0.1]:" << env("CLI_PORT") << " " << fake;
  CHECK(status_of([&] {
          cli::Session::open(shell_opts(), {other, true}, linux);
        }) == cli::Status::host_key_changed);
}

TEST_CASE("a command that hangs times out; output beyond the limit is refused") {
  const cli::Driver& linux = *cli::find_driver("linux");
  {
    auto s = cli::Session::open(shell_opts(), known(), linux);
    CHECK(status_of([&] { s->run("sleep 5", 500ms); }) == cli::Status::timeout);
  }
  cli::Options small = shell_opts();
  small.max_output = 64 * 1024;
  auto s = cli::Session::open(small, known(), linux);
  CHECK(status_of([&] { s->run("seq 1 100000"); }) == cli::Status::too_large);
}

TEST_CASE("FRRouting's vtysh: back up, push, see it with vtysh itself, take it back") {
  const cli::Driver& d = *cli::find_driver("vtysh");
  cli::Options o = shell_opts();
  o.user = env("CLI_FRR_USER");
  o.password = env("CLI_FRR_PASS");
  auto s = cli::Session::open(o, known(), d);
  CHECK(std::regex_search(s->last_prompt(), std::regex("#\\s*$")));

  const std::string raw = s->run(d.show_config);
  CHECK(raw.find("Building configuration") != std::string::npos);
  const std::string before = cli::normalize_config(d, raw);
  CHECK(before.find("Building configuration") == std::string::npos);
  CHECK(before.find("hostname ") != std::string::npos);
  CHECK(before.find("ip route 10.9.9.0/24 Null0") == std::string::npos);

  for (const auto& c : d.config_enter) CHECK_FALSE(s->failed(s->run(c)));
  CHECK(s->last_prompt().find("(config)#") != std::string::npos);
  CHECK_FALSE(s->failed(s->run("ip route 10.9.9.0/24 Null0")));
  for (const auto& c : d.config_exit) s->run(c);
  CHECK(s->failed(s->run("show no-such-thing")));

  // vtysh itself, not through us, sees the route.
  const std::string vtysh = env("CLI_FRR_VTYSH");
  CHECK(outpost::test::run_tool(vtysh + " -c 'show running-config'")
            .find("ip route 10.9.9.0/24 Null0") != std::string::npos);
  CHECK(cli::normalize_config(d, s->run(d.show_config)).find("ip route 10.9.9.0/24 Null0") !=
        std::string::npos);

  for (const auto& c : d.config_enter) s->run(c);
  s->run("no ip route 10.9.9.0/24 Null0");
  for (const auto& c : d.config_exit) s->run(c);
  CHECK(cli::normalize_config(d, s->run(d.show_config)) == before);
  CHECK(outpost::test::run_tool(vtysh + " -c 'show running-config'")
            .find("ip route 10.9.9.0/24 Null0") == std::string::npos);
}

TEST_CASE("one command on an exec channel: stdout, stderr and the exit status apart") {
  const auto r = cli::exec(shell_opts(), known(), "echo out; echo err >&2; exit 3");
  CHECK(r.out == "out\n");
  CHECK(r.err == "err\n");
  CHECK(r.exit_status == 3);
  cli::Options slow = shell_opts();
  slow.command_timeout = 500ms;
  CHECK(status_of([&] { cli::exec(slow, known(), "sleep 5"); }) == cli::Status::timeout);
}

TEST_CASE("Telnet: a real telnetd's login answered, commands run, a wrong password refused") {
  cli::Options o = shell_opts();
  o.transport = cli::Transport::telnet;
  o.port = static_cast<uint16_t>(std::stoi(env("CLI_TELNET_PORT")));
  const cli::Driver& linux = *cli::find_driver("linux");
  {
    auto s = cli::Session::open(o, {}, linux);
    CHECK(s->run("echo hello") == "hello\n");
    CHECK(s->run("id -un") == env("CLI_SHELL_USER") + "\n");
  }
  o.password = "wrong";
  CHECK(status_of([&] { cli::Session::open(o, {}, linux); }) == cli::Status::auth);
}
