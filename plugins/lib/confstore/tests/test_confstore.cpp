// The configuration store written with libgit2 and read back with the git CLI as the reference:
// commits, authors, messages, file contents and patches as git itself sees them.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <outpost_lib/confstore.hpp>
#include <outpost_test/tool.hpp>
#include <string>
#include <thread>
#include <vector>

namespace cs = outpost::lib::confstore;
using outpost::test::run_tool;

namespace {

// A directory of its own under /tmp, removed at the end of the test.
struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/outpost-confstore.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

// git on the repository, without the user's or the system's configuration.
std::string git(const std::string& repo, const std::string& args) {
  return run_tool("GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null git -c color.ui=never -C '" +
                  repo + "' " + args);
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < s.size()) {
    const auto nl = s.find('\n', start);
    const auto end = nl == std::string::npos ? s.size() : nl;
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::chrono::system_clock::time_point at(long long seconds) {
  return std::chrono::system_clock::time_point(std::chrono::seconds(seconds));
}

cs::Store open_store(const std::string& path) {
  return cs::Store::open(path, "outpost-eng1", "eng1@outpost.example");
}

const std::string kV1 =
    "hostname core-rtr1\n"
    "interface Gi0/1\n"
    " description uplink\n"
    " ip address 192.0.2.1 255.255.255.0\n"
    "end\n";
const std::string kV2 =
    "hostname core-rtr1\n"
    "interface Gi0/1\n"
    " description uplink to core\n"
    " ip address 192.0.2.1 255.255.255.0\n"
    "interface Gi0/2\n"
    " shutdown\n"
    "end\n";
// No final line end, a tab, bytes beyond ASCII: kept exactly as given.
const std::string kV3 = "hostname core-rtr1\n\tbanner motd \xc3\xa9t\xc3\xa9\nend";

}  // namespace

TEST_CASE("puts are commits git reads: engine as author, device and trigger as message, the text") {
  TempDir dir;
  const std::string repo = dir.path + "/configs";
  auto store = open_store(repo);
  const auto c1 = store.put("core-rtr1", kV1, "scheduled", at(1'780'000'000));
  const auto c2 = store.put("core-rtr1", kV2, "syslog %SYS-5-CONFIG_I", at(1'780'000'060));
  const auto c3 = store.put("core-rtr1", kV3, "manual\nby netops", at(1'780'000'120));
  REQUIRE(c1);
  REQUIRE(c2);
  REQUIRE(c3);
  CHECK(c1->previous.empty());
  CHECK(c2->previous == c1->commit);
  CHECK(c3->previous == c2->commit);

  // Newest first, as git log lists main.
  const auto log = lines(git(repo, "log --format='%H|%an|%ae|%at|%cn|%ce|%s' main"));
  REQUIRE(log.size() == 3);
  CHECK(log[0] == c3->commit +
                      "|outpost-eng1|eng1@outpost.example|1780000120|outpost-eng1|"
                      "eng1@outpost.example|core-rtr1: manual by netops");
  CHECK(log[1] == c2->commit +
                      "|outpost-eng1|eng1@outpost.example|1780000060|outpost-eng1|"
                      "eng1@outpost.example|core-rtr1: syslog %SYS-5-CONFIG_I");
  CHECK(log[2] == c1->commit +
                      "|outpost-eng1|eng1@outpost.example|1780000000|outpost-eng1|"
                      "eng1@outpost.example|core-rtr1: scheduled");
  // HEAD is main, and the files are byte for byte what was put.
  CHECK(trim(git(repo, "symbolic-ref HEAD")) == "refs/heads/main");
  CHECK(git(repo, "show main:core-rtr1.cfg") == kV3);
  CHECK(git(repo, "show main~1:core-rtr1.cfg") == kV2);
  CHECK(git(repo, "show " + c1->commit + ":core-rtr1.cfg") == kV1);
  CHECK(trim(git(repo, "ls-tree --name-only main")) == "core-rtr1.cfg");
  CHECK(trim(git(repo, "rev-parse --is-bare-repository")) == "false");
  // The reflog, too, names the engine and says what moved main.
  const auto reflog = lines(git(repo, "reflog show --format='%gn <%ge>|%gs' main"));
  REQUIRE(reflog.size() == 3);
  CHECK(reflog[0] == "outpost-eng1 <eng1@outpost.example>|confstore: core-rtr1: manual by netops");
  CHECK(reflog[2] == "outpost-eng1 <eng1@outpost.example>|confstore: core-rtr1: scheduled");
}

TEST_CASE("an unchanged configuration is not committed again") {
  TempDir dir;
  auto store = open_store(dir.path);
  REQUIRE(store.put("sw1", kV1, "scheduled", at(1'780'000'000)));
  const std::string head = trim(git(dir.path, "rev-parse main"));
  CHECK_FALSE(store.put("sw1", kV1, "scheduled", at(1'780'003'600)));
  CHECK_FALSE(store.put("sw1", kV1, "syslog", at(1'780'007'200)));
  CHECK(trim(git(dir.path, "rev-parse main")) == head);
  CHECK(trim(git(dir.path, "rev-list --count main")) == "1");
  // The same text on another device is that device's first version, not "unchanged".
  REQUIRE(store.put("sw2", kV1, "scheduled", at(1'780'000'000)));
  CHECK(trim(git(dir.path, "rev-list --count main")) == "2");
  // An empty configuration is a version like any other.
  REQUIRE(store.put("sw1", "", "wiped", at(1'780'010'000)));
  CHECK(git(dir.path, "show main:sw1.cfg").empty());
  CHECK_FALSE(store.put("sw1", "", "wiped", at(1'780'010'001)));
}

TEST_CASE("a change's patch is git's patch of that file alone, with its line counts") {
  TempDir dir;
  auto store = open_store(dir.path);
  const auto first = store.put("edge1", kV1, "scheduled", at(1'780'000'000));
  REQUIRE(first);
  // The first version: the whole file added, as git shows that commit.
  CHECK(first->added == 5);
  CHECK(first->removed == 0);
  CHECK(first->diff == git(dir.path, "show --format= " + first->commit + " -- edge1.cfg"));
  // Another device changed in between: not part of edge1's patch.
  REQUIRE(store.put("edge2", "hostname edge2\n", "scheduled", at(1'780'000'010)));
  const auto change = store.put("edge1", kV2, "syslog", at(1'780'000'060));
  REQUIRE(change);
  CHECK(change->previous == first->commit);
  const std::string reference =
      git(dir.path, "diff " + first->commit + " " + change->commit + " -- edge1.cfg");
  CHECK(change->diff == reference);
  CHECK(change->diff.find("edge2") == std::string::npos);
  CHECK(change->diff.find("- description uplink\n") != std::string::npos);
  CHECK(change->diff.find("+ description uplink to core\n") != std::string::npos);
  const std::string numstat = trim(
      git(dir.path, "diff --numstat " + first->commit + " " + change->commit + " -- edge1.cfg"));
  CHECK(numstat ==
        std::to_string(change->added) + "\t" + std::to_string(change->removed) + "\tedge1.cfg");
  CHECK(change->added == 3);
  CHECK(change->removed == 1);
}

TEST_CASE("two devices interleaved: each one's history, newest first, limited") {
  TempDir dir;
  auto store = open_store(dir.path);
  std::vector<std::string> a, b;
  for (int i = 0; i < 5; ++i) {
    a.push_back(store
                    .put("a", "version " + std::to_string(i) + "\n", "t" + std::to_string(i),
                         at(1'780'000'000 + i * 10))
                    ->commit);
    b.push_back(store
                    .put("b", "other " + std::to_string(i) + "\n", "u" + std::to_string(i),
                         at(1'780'000'005 + i * 10))
                    ->commit);
  }
  CHECK(trim(git(dir.path, "rev-list --count main")) == "10");
  const auto ha = store.history("a");
  REQUIRE(ha.size() == 5);
  for (int i = 0; i < 5; ++i) {
    CHECK(ha[i].commit == a[4 - i]);
    CHECK(ha[i].message == "a: t" + std::to_string(4 - i));
    CHECK(ha[i].author == "outpost-eng1 <eng1@outpost.example>");
    CHECK(ha[i].time == at(1'780'000'000 + (4 - i) * 10));
  }
  // The same list git gives for the file.
  const auto git_a = lines(git(dir.path, "log --format=%H main -- a.cfg"));
  REQUIRE(git_a.size() == 5);
  for (int i = 0; i < 5; ++i) CHECK(git_a[i] == ha[i].commit);
  const auto hb = store.history("b", 2);
  REQUIRE(hb.size() == 2);
  CHECK(hb[0].commit == b[4]);
  CHECK(hb[1].commit == b[3]);
  CHECK(store.history("b", 100).size() == 5);
  CHECK(store.history("nobody").empty());
  CHECK(store.devices() == std::vector<std::string>{"a", "b"});
  // The previous version of a device is its own last commit, not main's last.
  const auto next = store.put("a", "version 5\n", "t5", at(1'780'001'000));
  REQUIRE(next);
  CHECK(next->previous == a[4]);
}

TEST_CASE("show: a version by full id, short prefix or revision; unknown and ambiguous ones") {
  TempDir dir;
  auto store = open_store(dir.path);
  const auto c1 = store.put("r1", kV1, "scheduled", at(1'780'000'000));
  const auto c2 = store.put("r1", kV2, "scheduled", at(1'780'000'060));
  const auto other = store.put("r2", "hostname r2\n", "scheduled", at(1'780'000'070));
  REQUIRE(c1);
  REQUIRE(c2);
  REQUIRE(other);
  CHECK(store.show("r1", c1->commit) == kV1);
  CHECK(store.show("r1", c1->commit.substr(0, 7)) == kV1);
  CHECK(store.show("r1", c2->commit.substr(0, 10)) == kV2);
  CHECK(store.show("r1", "main") == kV2);
  CHECK(store.show("r1", "main~2") == kV1);
  // r2 did not exist yet at c1.
  CHECK(store.show("r2", c1->commit) == std::nullopt);
  CHECK(store.show("r2", "main") == "hostname r2\n");
  try {
    store.show("r1", "0000000000000000000000000000000000000000");
    FAIL("an unknown version was shown");
  } catch (const cs::Error& e) {
    CHECK(e.status == cs::Status::not_found);
  }
  CHECK_THROWS_AS(store.show("r1", "deadbeef"), cs::Error);
  CHECK_THROWS_AS(store.show("r1", ""), cs::Error);
  // A tree is not a version.
  const std::string tree = trim(git(dir.path, "rev-parse main^{tree}"));
  try {
    store.show("r1", tree);
    FAIL("a tree was taken for a version");
  } catch (const cs::Error& e) {
    CHECK(e.status == cs::Status::invalid);
  }
}

TEST_CASE("diff between two versions is git's, from nothing as well") {
  TempDir dir;
  auto store = open_store(dir.path);
  const auto c1 = store.put("fw1", kV1, "scheduled", at(1'780'000'000));
  REQUIRE(store.put("fw2", "x\n", "scheduled", at(1'780'000'010)));
  const auto c2 = store.put("fw1", kV2, "scheduled", at(1'780'000'020));
  const auto c3 = store.put("fw1", kV3, "scheduled", at(1'780'000'030));
  REQUIRE(c1);
  REQUIRE(c2);
  REQUIRE(c3);
  CHECK(store.diff("fw1", c1->commit, c3->commit) ==
        git(dir.path, "diff " + c1->commit + " " + c3->commit + " -- fw1.cfg"));
  // Backwards, as a rollback would change it.
  CHECK(store.diff("fw1", c3->commit.substr(0, 8), c1->commit.substr(0, 8)) ==
        git(dir.path, "diff " + c3->commit + " " + c1->commit + " -- fw1.cfg"));
  CHECK(store.diff("fw1", c2->commit, c2->commit).empty());
  CHECK(store.diff("fw1", "", c1->commit) == c1->diff);
  CHECK(store.diff("fw1", c2->commit, "main") == c3->diff);
}

TEST_CASE("hostile device names are refused, nothing written") {
  TempDir dir;
  auto store = open_store(dir.path);
  const std::vector<std::string> hostile = {"",
                                            ".",
                                            "..",
                                            ".git",
                                            ".hidden",
                                            "../escape",
                                            "a/b",
                                            "/abs",
                                            "a..b",
                                            "a\\b",
                                            "with space",
                                            "tab\there",
                                            "new\nline",
                                            std::string("nul\0byte", 8),
                                            "del\x7f",
                                            "\xc3\xa9t\xc3\xa9",
                                            std::string(129, 'x')};
  for (const std::string& name : hostile) {
    CAPTURE(name);
    CHECK_FALSE(cs::valid_device_name(name));
    try {
      store.put(name, "x\n", "t", at(1'780'000'000));
      FAIL("a hostile name was stored");
    } catch (const cs::Error& e) {
      CHECK(e.status == cs::Status::invalid);
    }
    CHECK_THROWS_AS(store.history(name), cs::Error);
  }
  CHECK_THROWS_AS(git(dir.path, "rev-parse --verify -q main"), std::runtime_error);
  for (const char* name : {"core-rtr1", "10.0.0.1", "2001:db8::1", "sw_1.dc-2", "R1@lab", "a.b"})
    CHECK(cs::valid_device_name(name));
  CHECK(cs::valid_device_name(std::string(128, 'x')));
}

TEST_CASE("a repository path that cannot be created is Error(io)") {
  TempDir dir;
  // Beneath a regular file: no directory can be made there, whoever the user (root included).
  const std::string file = dir.path + "/plain";
  std::ofstream(file) << "not a directory\n";
  try {
    open_store(file + "/configs");
    FAIL("a store was opened beneath a file");
  } catch (const cs::Error& e) {
    CHECK(e.status == cs::Status::io);
    CHECK(std::string(e.what()).find(file) != std::string::npos);
  }
  CHECK_THROWS_AS(cs::Store::open(dir.path + "/r", "", "x@y"), cs::Error);
}

TEST_CASE("a store opened again sees the history and continues it") {
  TempDir dir;
  const std::string repo = dir.path + "/deep/er/configs";
  std::string first, second;
  {
    auto store = open_store(repo);
    first = store.put("r1", kV1, "scheduled", at(1'780'000'000))->commit;
    second = store.put("r2", kV2, "scheduled", at(1'780'000'010))->commit;
  }
  auto store = cs::Store::open(repo, "outpost-eng2", "eng2@outpost.example");
  CHECK(store.devices() == std::vector<std::string>{"r1", "r2"});
  REQUIRE(store.history("r1").size() == 1);
  CHECK(store.history("r1")[0].commit == first);
  CHECK_FALSE(store.put("r1", kV1, "scheduled", at(1'780'000'100)));
  // The previous version is found in the history on disk (nothing cached yet).
  const auto change = store.put("r1", kV2, "scheduled", at(1'780'000'200));
  REQUIRE(change);
  CHECK(change->previous == first);
  CHECK(trim(git(repo, "rev-parse main~1")) == second);
  CHECK(trim(git(repo, "log -1 --format='%an <%ae>' main")) ==
        "outpost-eng2 <eng2@outpost.example>");
}

TEST_CASE("puts from 4 threads for different devices all land, the repository checks clean") {
  TempDir dir;
  auto store = open_store(dir.path);
  constexpr int kThreads = 4, kPuts = 15;
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&store, t] {
      const std::string device = "dev" + std::to_string(t);
      for (int i = 0; i < kPuts; ++i) {
        std::string text;
        for (int l = 0; l <= i; ++l) text += device + " line " + std::to_string(l) + "\n";
        store.put(device, text, "round " + std::to_string(i), at(1'780'000'000 + i));
        store.history(device, 1);
      }
    });
  }
  for (auto& w : workers) w.join();
  CHECK(trim(git(dir.path, "rev-list --count main")) == std::to_string(kThreads * kPuts));
  for (int t = 0; t < kThreads; ++t) {
    const std::string device = "dev" + std::to_string(t);
    CAPTURE(device);
    CHECK(store.history(device).size() == kPuts);
    CHECK(lines(git(dir.path, "show main:" + device + ".cfg")).size() == kPuts);
    // Each of its commits is one more line than the one before: every put kept its parent.
    const auto h = store.history(device);
    for (std::size_t i = 0; i + 1 < h.size(); ++i) {
      const std::string d = store.diff(device, h[i + 1].commit, h[i].commit);
      CHECK(d.find("+" + device + " line " + std::to_string(kPuts - 1 - i) + "\n") !=
            std::string::npos);
    }
  }
  // fsck prints nothing and exits 0 for a sound repository.
  CHECK(git(dir.path, "fsck --strict --no-dangling 2>&1").empty());
}

TEST_CASE("after a restart each device's previous version is its own last commit") {
  TempDir dir;
  {
    auto store = open_store(dir.path);
    // Devices changed in a pattern so that their last changes lie at various depths.
    for (int round = 0; round < 4; ++round)
      for (int d = 0; d <= round; ++d)
        REQUIRE(store.put("n" + std::to_string(d), "round " + std::to_string(round) + "\n",
                          "scheduled", at(1'780'000'000 + round * 100 + d)));
  }
  auto store = open_store(dir.path);
  for (int d = 3; d >= 0; --d) {
    const std::string device = "n" + std::to_string(d);
    CAPTURE(device);
    // Asked of git before this put moves main.
    const std::string last = trim(git(dir.path, "log -1 --format=%H main -- " + device + ".cfg"));
    const auto change = store.put(device, "after restart\n", "scheduled", at(1'780'001'000 + d));
    REQUIRE(change);
    CHECK(change->previous == last);
    CHECK(change->diff == git(dir.path, "diff " + last + " main -- " + device + ".cfg"));
  }
}

TEST_CASE("a commit git made meanwhile is built on, not lost") {
  TempDir dir;
  auto store = open_store(dir.path);
  REQUIRE(store.put("r1", kV1, "scheduled", at(1'780'000'000)));
  // An operator commits r1 with plain git plumbing (no work tree needed).
  const std::string theirs = trim(run_tool(
      "cd '" + dir.path +
      "' && export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_INDEX_FILE=.git/op-index"
      " GIT_AUTHOR_NAME=op GIT_AUTHOR_EMAIL=op@x GIT_COMMITTER_NAME=op GIT_COMMITTER_EMAIL=op@x"
      " && blob=$(printf 'hostname by-hand\\n' | git hash-object -w --stdin)"
      " && git read-tree main && git update-index --cacheinfo 100644,$blob,r1.cfg"
      " && c=$(echo 'r1: edited by hand' | git commit-tree $(git write-tree) -p main)"
      " && git update-ref refs/heads/main $c && echo $c"));
  CHECK(store.show("r1", "main") == "hostname by-hand\n");
  CHECK(store.history("r1").front().commit == theirs);
  // The same text again is unchanged against git's commit; another one follows it.
  CHECK_FALSE(store.put("r1", "hostname by-hand\n", "scheduled", at(1'780'000'100)));
  const auto change = store.put("r1", kV2, "scheduled", at(1'780'000'200));
  REQUIRE(change);
  CHECK(change->previous == theirs);
  CHECK(trim(git(dir.path, "rev-parse main~1")) == theirs);
  CHECK(git(dir.path, "fsck --strict --no-dangling 2>&1").empty());
}

TEST_CASE("main locked by another writer: the put fails as io and main stays where it was") {
  TempDir dir;
  auto store = open_store(dir.path);
  REQUIRE(store.put("r1", kV1, "scheduled", at(1'780'000'000)));
  const std::string head = trim(git(dir.path, "rev-parse main"));
  const std::string lock = dir.path + "/.git/refs/heads/main.lock";
  std::ofstream(lock) << head << "\n";
  try {
    store.put("r1", kV2, "scheduled", at(1'780'000'100));
    FAIL("a put moved main past a held lock");
  } catch (const cs::Error& e) {
    CHECK(e.status == cs::Status::io);
  }
  CHECK(trim(git(dir.path, "rev-parse main")) == head);
  CHECK(store.show("r1", "main") == kV1);
  std::filesystem::remove(lock);
  const auto change = store.put("r1", kV2, "scheduled", at(1'780'000'200));
  REQUIRE(change);
  CHECK(change->previous == head);
}

TEST_CASE("an engine name git cannot sign with is refused at open") {
  TempDir dir;
  for (const auto& [name, email] : std::vector<std::pair<std::string, std::string>>{
           {"eng<1>", "e@x"}, {"eng1", "e<@x"}, {"", "e@x"}, {"eng1", ""}}) {
    CAPTURE(name, email);
    try {
      cs::Store::open(dir.path + "/r", name, email);
      FAIL("opened");
    } catch (const cs::Error& e) {
      CHECK(e.status == cs::Status::invalid);
    }
  }
}

TEST_CASE("two stores (two engines) written from their own threads at once") {
  TempDir dir;
  auto a = open_store(dir.path + "/a");
  auto b = cs::Store::open(dir.path + "/b", "outpost-eng2", "eng2@outpost.example");
  auto run = [](cs::Store& s) {
    for (int i = 0; i < 20; ++i)
      s.put("d" + std::to_string(i % 3), std::to_string(i) + "\n", "t", at(1'780'000'000 + i));
  };
  std::thread ta(run, std::ref(a)), tb(run, std::ref(b));
  ta.join();
  tb.join();
  for (const char* r : {"/a", "/b"}) {
    CHECK(trim(git(dir.path + r, "rev-list --count main")) == "20");
    CHECK(git(dir.path + r, "fsck --strict --no-dangling 2>&1").empty());
  }
  CHECK(trim(git(dir.path + "/b", "log -1 --format=%an main")) == "outpost-eng2");
}

TEST_CASE("a repository another user owns is refused as io, saying why") {
  if (::geteuid() != 0) {
    WARN("not root: cannot hand a repository to another user; skipped");
    return;
  }
  TempDir dir;
  { REQUIRE(open_store(dir.path + "/r").put("r1", kV1, "t", at(1'780'000'000))); }
  run_tool("chown -R nobody '" + dir.path + "/r'");
  try {
    open_store(dir.path + "/r");
    FAIL("opened a repository of another user");
  } catch (const cs::Error& e) {
    CHECK(e.status == cs::Status::io);
    CHECK(std::string(e.what()).find("owned by another user") != std::string::npos);
  }
  run_tool("chown -R root '" + dir.path + "/r'");
  CHECK(open_store(dir.path + "/r").devices() == std::vector<std::string>{"r1"});
}

TEST_CASE("a prefix two objects share is refused as invalid, a longer one works") {
  TempDir dir;
  auto store = open_store(dir.path);
  // Ids are fixed by content and time, so the same puts always give the same collision: add
  // versions until two objects share their first four digits.
  std::map<std::string, std::string> seen;  // 4-digit prefix -> an id
  std::string prefix;
  std::vector<std::string> commits;
  for (int i = 0; prefix.empty() && i < 2000; ++i) {
    const auto c =
        store.put("r1", "version " + std::to_string(i) + "\n", "t", at(1'780'000'000 + i));
    REQUIRE(c);
    commits.push_back(c->commit);
    for (const auto& id : lines(git(dir.path, "rev-list --objects -1 " + c->commit))) {
      const std::string full = id.substr(0, 40);
      const auto [it, fresh] = seen.emplace(full.substr(0, 4), full);
      if (!fresh && it->second != full) prefix = full.substr(0, 4);
    }
  }
  REQUIRE_FALSE(prefix.empty());
  CAPTURE(prefix);
  try {
    store.show("r1", prefix);
    FAIL("an ambiguous prefix was resolved");
  } catch (const cs::Error& e) {
    CHECK(e.status == cs::Status::invalid);
  }
  // Every commit is still found by a prefix long enough to be unique, as git abbreviates it.
  const std::string& last = commits.back();
  const std::string shortest = trim(git(dir.path, "rev-parse --short=4 " + last));
  CHECK(store.show("r1", shortest) == "version " + std::to_string(commits.size() - 1) + "\n");
}

TEST_CASE("names with characters git globs or quotes: patches still git's, for that file alone") {
  TempDir dir;
  auto store = open_store(dir.path);
  // "r[1]" as a glob would match "r1"; the store takes every name literally.
  const std::vector<std::string> names = {
      "r1",  "r[1]",  "r?",  "r*",       "a\"b",          "x'y$z",
      "p#q", "m&n;o", "u|v", "w~x^y{z}", "c,d=e+f(g)<h>!"};
  for (const auto& name : names) REQUIRE(store.put(name, name + " v1\n", "t", at(1'780'000'000)));
  for (const auto& name : names) {
    CAPTURE(name);
    const auto change = store.put(name, name + " v2\n", "t", at(1'780'000'100));
    REQUIRE(change);
    // The name is passed to git as a literal pathspec, quoted for the shell.
    std::string quoted;
    for (char c : name) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    const std::string reference =
        git(dir.path, "--literal-pathspecs diff " + change->previous + " " + change->commit +
                          " -- '" + quoted + ".cfg'");
    CHECK(change->diff == reference);
    CHECK(change->added == 1);
    CHECK(change->removed == 1);
    CHECK(store.show(name, "main") == name + " v2\n");
    CHECK(store.history(name).size() == 2);
  }
  CHECK(store.devices().size() == names.size());
}
