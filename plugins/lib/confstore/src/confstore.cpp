// The configuration store on libgit2: every write goes straight to the object database (blob,
// tree from main's tree plus one entry, commit) and then moves refs/heads/main with a
// compare-and-swap, so no work tree or index is ever read or written.
#include <git2.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <outpost_lib/confstore.hpp>
#include <utility>
#include <vector>

namespace outpost::lib::confstore {

namespace {

constexpr const char* kBranch = "refs/heads/main";
constexpr std::string_view kSuffix = ".cfg";

// Owners of libgit2 objects, freed with the matching function.
template <typename T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const { Free(p); }
};
using Repo = std::unique_ptr<git_repository, Freer<git_repository, git_repository_free>>;
using Commit = std::unique_ptr<git_commit, Freer<git_commit, git_commit_free>>;
using Tree = std::unique_ptr<git_tree, Freer<git_tree, git_tree_free>>;
using Blob = std::unique_ptr<git_blob, Freer<git_blob, git_blob_free>>;
using Object = std::unique_ptr<git_object, Freer<git_object, git_object_free>>;
using Builder = std::unique_ptr<git_treebuilder, Freer<git_treebuilder, git_treebuilder_free>>;
using Signature = std::unique_ptr<git_signature, Freer<git_signature, git_signature_free>>;
using Ref = std::unique_ptr<git_reference, Freer<git_reference, git_reference_free>>;
using Diff = std::unique_ptr<git_diff, Freer<git_diff, git_diff_free>>;
using Stats = std::unique_ptr<git_diff_stats, Freer<git_diff_stats, git_diff_stats_free>>;

// libgit2's last message for this thread, for Error's text.
std::string git_message() {
  const git_error* e = git_error_last();
  return e != nullptr && e->message != nullptr ? e->message : "no detail";
}

[[noreturn]] void fail(Status s, const std::string& what) {
  throw Error(s, "confstore: " + what + ": " + git_message());
}

// A libgit2 return code that is an error, as the Status a caller can act on.
Status status_of(int rc) {
  switch (rc) {
    case GIT_ENOTFOUND:
      return Status::not_found;
    case GIT_EAMBIGUOUS:
    case GIT_EINVALIDSPEC:
    case GIT_EINVALID:
      return Status::invalid;
    default:
      return Status::io;
  }
}

void check(int rc, const std::string& what) {
  if (rc < 0) fail(status_of(rc), what);
}

std::string hex(const git_oid& id) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, &id);
  return buf;
}

std::string file_name(std::string_view device) {
  if (!valid_device_name(device))
    throw Error(Status::invalid, "confstore: device name refused: \"" + std::string(device) +
                                     "\" (printable ASCII without space, '/', '\\', a leading "
                                     "'.' or \"..\", at most 128 bytes)");
  return std::string(device) + std::string(kSuffix);
}

// The blob id of `name` in `tree` (a null tree has none); nullopt when there is no such blob.
std::optional<git_oid> entry_id(const git_tree* tree, const std::string& name) {
  if (tree == nullptr) return std::nullopt;
  const git_tree_entry* e = git_tree_entry_byname(tree, name.c_str());
  if (e == nullptr || git_tree_entry_type(e) != GIT_OBJECT_BLOB) return std::nullopt;
  return *git_tree_entry_id(e);
}

bool same(const std::optional<git_oid>& a, const std::optional<git_oid>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a.has_value() || git_oid_equal(&*a, &*b) != 0;
}

}  // namespace

std::string_view status_name(Status s) {
  switch (s) {
    case Status::not_found:
      return "not_found";
    case Status::invalid:
      return "invalid";
    case Status::io:
      return "io";
  }
  return "unknown";
}

bool valid_device_name(std::string_view device) {
  if (device.empty() || device.size() > 128 || device.front() == '.') return false;
  if (device.find("..") != std::string_view::npos) return false;
  return std::all_of(device.begin(), device.end(),
                     [](char c) { return c > ' ' && c < 0x7f && c != '/' && c != '\\'; });
}

struct Store::Impl {
  // One libgit2 initialisation per Store: libgit2 counts them and frees its globals at the last
  // shutdown, so Stores (and other libgit2 users in the process) come and go independently.
  Impl() {
    git_libgit2_init();
    // Loose objects, the ref and their directories fsync'd before a write returns: what put()
    // committed survives a crash right after. A process-wide option, set on every open so no
    // other user of libgit2 turning it off earlier matters.
    git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);
  }
  ~Impl() {
    repo.reset();
    git_libgit2_shutdown();
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  std::mutex mu;  // libgit2's repository object is not safe to share between threads
  Repo repo;
  std::string path, name, email;
  // The commit that last changed each file, valid while main is at cache_tip: put() needs the
  // previous version's commit and finds it here instead of walking the history every time.
  std::map<std::string, git_oid> last_change;
  std::optional<git_oid> cache_tip;

  // main's commit; nullopt before the first put().
  std::optional<git_oid> tip() {
    git_oid id;
    const int rc = git_reference_name_to_id(&id, repo.get(), kBranch);
    if (rc == GIT_ENOTFOUND) return std::nullopt;
    check(rc, "reading refs/heads/main");
    return id;
  }

  Commit commit(const git_oid& id) {
    git_commit* c = nullptr;
    check(git_commit_lookup(&c, repo.get(), &id), "reading commit " + hex(id));
    return Commit(c);
  }

  Tree tree_of(const git_commit* c) {
    git_tree* t = nullptr;
    check(git_commit_tree(&t, c), "reading the tree of " + hex(*git_commit_id(c)));
    return Tree(t);
  }

  // A version as a caller names it (id, prefix, revision) to its commit.
  Commit resolve(std::string_view version) {
    if (version.empty()) throw Error(Status::invalid, "confstore: empty version");
    git_object* obj = nullptr;
    const std::string spec(version);
    check(git_revparse_single(&obj, repo.get(), spec.c_str()), "no version \"" + spec + "\"");
    Object owned(obj);
    git_object* peeled = nullptr;
    check(git_object_peel(&peeled, owned.get(), GIT_OBJECT_COMMIT),
          "\"" + spec + "\" is not a commit");
    return Commit(reinterpret_cast<git_commit*>(peeled));
  }

  // Walks main by first parents from `from`, calling `found` with each commit whose tree holds
  // another blob for `file` than its parent's (added, changed or removed); stops when `found`
  // returns false or the root is passed.
  template <typename F>
  void walk_changes(const git_oid& from, const std::string& file, F&& found) {
    Commit c = commit(from);
    Tree t = tree_of(c.get());
    for (;;) {
      Commit parent;
      Tree parent_tree;
      if (git_commit_parentcount(c.get()) > 0) {
        git_commit* p = nullptr;
        check(git_commit_parent(&p, c.get(), 0), "reading a parent");
        parent.reset(p);
        parent_tree = tree_of(parent.get());
      }
      if (!same(entry_id(t.get(), file), entry_id(parent_tree.get(), file)) && !found(c.get()))
        return;
      if (!parent) return;
      c = std::move(parent);
      t = std::move(parent_tree);
    }
  }

  // The commit holding the file's version at main's `tip_id`; nullopt when the file is not there.
  // A miss walks the history once for every file main holds that is not known yet, so after a
  // restart the first put() of each device does not walk again.
  std::optional<git_oid> last_change_of(const git_oid& tip_id, const std::string& file,
                                        const git_tree* tip_tree) {
    if (!entry_id(tip_tree, file)) return std::nullopt;
    if (!cache_tip || git_oid_equal(&*cache_tip, &tip_id) == 0) {
      last_change.clear();
      cache_tip = tip_id;
    }
    if (auto it = last_change.find(file); it != last_change.end()) return it->second;
    std::vector<std::string> pending;
    for (std::size_t i = 0, n = git_tree_entrycount(tip_tree); i < n; ++i) {
      const git_tree_entry* e = git_tree_entry_byindex(tip_tree, i);
      if (git_tree_entry_type(e) == GIT_OBJECT_BLOB &&
          !last_change.contains(git_tree_entry_name(e)))
        pending.emplace_back(git_tree_entry_name(e));
    }
    Commit c = commit(tip_id);
    Tree t = tree_of(c.get());
    // Each file is settled at the newest commit whose blob for it differs from its first
    // parent's; at the root commit every file left is settled.
    while (!pending.empty()) {
      Commit parent;
      Tree parent_tree;
      if (git_commit_parentcount(c.get()) > 0) {
        git_commit* p = nullptr;
        check(git_commit_parent(&p, c.get(), 0), "reading a parent");
        parent.reset(p);
        parent_tree = tree_of(parent.get());
      }
      if (!parent_tree ||
          git_oid_equal(git_tree_id(t.get()), git_tree_id(parent_tree.get())) == 0) {
        std::erase_if(pending, [&](const std::string& pending_file) {
          if (same(entry_id(t.get(), pending_file), entry_id(parent_tree.get(), pending_file)))
            return false;
          last_change[pending_file] = *git_commit_id(c.get());
          return true;
        });
      }
      if (!parent) break;
      c = std::move(parent);
      t = std::move(parent_tree);
    }
    if (auto it = last_change.find(file); it != last_change.end()) return it->second;
    return std::nullopt;
  }

  // git's patch of `file` alone between two trees (null: empty), and its line counts.
  std::string patch(const git_tree* from, const git_tree* to, const std::string& file,
                    std::size_t* added, std::size_t* removed) {
    git_diff_options opts;
    git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
    // The name is taken literally, not as a glob: "r[1]" names that file only.
    opts.flags |= GIT_DIFF_DISABLE_PATHSPEC_MATCH;
    char* paths[] = {const_cast<char*>(file.c_str())};
    opts.pathspec.strings = paths;
    opts.pathspec.count = 1;
    git_diff* d = nullptr;
    check(git_diff_tree_to_tree(&d, repo.get(), const_cast<git_tree*>(from),
                                const_cast<git_tree*>(to), &opts),
          "diffing " + file);
    Diff owned(d);
    git_buf buf = GIT_BUF_INIT;
    check(git_diff_to_buf(&buf, owned.get(), GIT_DIFF_FORMAT_PATCH), "formatting the diff");
    std::string text(buf.ptr != nullptr ? buf.ptr : "", buf.size);
    git_buf_dispose(&buf);
    if (added != nullptr || removed != nullptr) {
      git_diff_stats* s = nullptr;
      check(git_diff_get_stats(&s, owned.get()), "counting the diff's lines");
      Stats stats(s);
      if (added != nullptr) *added = git_diff_stats_insertions(stats.get());
      if (removed != nullptr) *removed = git_diff_stats_deletions(stats.get());
    }
    return text;
  }
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;
Store::~Store() = default;

const std::string& Store::path() const { return impl_->path; }

Store Store::open(const std::string& path, std::string engine_name, std::string engine_email) {
  if (path.empty()) throw Error(Status::invalid, "confstore: empty repository path");
  if (engine_name.empty() || engine_email.empty())
    throw Error(Status::invalid, "confstore: the engine's name and email are required");
  auto impl = std::make_unique<Impl>();
  // Stores on several threads (and other libgit2 users) need libgit2 built thread-safe.
  if ((git_libgit2_features() & GIT_FEATURE_THREADS) == 0)
    throw Error(Status::io, "confstore: libgit2 was built without thread support");
  {
    // Refused now (angle brackets, line breaks) rather than at the first put().
    git_signature* sig = nullptr;
    if (git_signature_new(&sig, engine_name.c_str(), engine_email.c_str(), 0, 0) < 0)
      fail(Status::invalid, "the engine's name or email cannot sign a commit");
    git_signature_free(sig);
  }
  impl->path = path;
  impl->name = std::move(engine_name);
  impl->email = std::move(engine_email);
  git_repository* r = nullptr;
  // Only this very directory: a path inside another repository must not open that one.
  int rc = git_repository_open_ext(&r, path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr);
  // libgit2 1.5 refuses a repository another user owns (as git does without safe.directory)
  // with GIT_ENOTFOUND; creating one there would fail with a misleading message.
  std::error_code ec;
  if (rc == GIT_ENOTFOUND &&
      (std::filesystem::exists(path + "/.git", ec) || std::filesystem::exists(path + "/HEAD", ec)))
    fail(Status::io, "a repository is at " + path +
                         " but cannot be opened (owned by another user? git's safe.directory)");
  if (rc == GIT_ENOTFOUND) {
    git_repository_init_options init;
    git_repository_init_options_init(&init, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
    init.flags = GIT_REPOSITORY_INIT_MKPATH | GIT_REPOSITORY_INIT_NO_REINIT;
    init.initial_head = "main";
    rc = git_repository_init_ext(&r, path.c_str(), &init);
    if (rc < 0) fail(Status::io, "cannot create the repository at " + path);
  } else if (rc < 0) {
    fail(Status::io, "cannot open the repository at " + path);
  }
  impl->repo.reset(r);
  // The reflog names the engine too, not whatever user.name the process's git config holds.
  check(git_repository_set_ident(r, impl->name.c_str(), impl->email.c_str()),
        "setting the engine's identity");
  return Store(std::move(impl));
}

std::optional<Change> Store::put(std::string_view device, std::string_view text,
                                 std::string_view trigger,
                                 std::chrono::system_clock::time_point time) {
  const std::string file = file_name(device);
  Impl& s = *impl_;
  const std::lock_guard lock(s.mu);
  git_repository* repo = s.repo.get();

  const std::optional<git_oid> tip = s.tip();
  Commit parent;
  Tree parent_tree;
  if (tip) {
    parent = s.commit(*tip);
    parent_tree = s.tree_of(parent.get());
  }
  // Hashed first: an unchanged configuration writes nothing at all.
  git_oid blob;
  check(git_odb_hash(&blob, text.data(), text.size(), GIT_OBJECT_BLOB), "hashing " + file);
  const std::optional<git_oid> old_blob = entry_id(parent_tree.get(), file);
  if (old_blob && git_oid_equal(&*old_blob, &blob) != 0) return std::nullopt;

  Change change;
  if (tip) {
    if (auto prev = s.last_change_of(*tip, file, parent_tree.get())) change.previous = hex(*prev);
  }

  check(git_blob_create_from_buffer(&blob, repo, text.data(), text.size()), "writing " + file);
  git_treebuilder* b = nullptr;
  check(git_treebuilder_new(&b, repo, parent_tree.get()), "building the tree");
  Builder builder(b);
  check(git_treebuilder_insert(nullptr, builder.get(), file.c_str(), &blob, GIT_FILEMODE_BLOB),
        "adding " + file + " to the tree");
  git_oid tree_id;
  check(git_treebuilder_write(&tree_id, builder.get()), "writing the tree");
  git_tree* t = nullptr;
  check(git_tree_lookup(&t, repo, &tree_id), "reading the new tree");
  Tree tree(t);

  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(time.time_since_epoch());
  git_signature* sig = nullptr;
  check(git_signature_new(&sig, s.name.c_str(), s.email.c_str(),
                          static_cast<git_time_t>(seconds.count()), 0),
        "the engine's signature");
  Signature signature(sig);

  std::string subject(trigger);
  std::replace_if(
      subject.begin(), subject.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  const std::string message = std::string(device) + ": " + subject + "\n";

  const git_commit* parents[] = {parent.get()};
  git_oid id;
  check(git_commit_create(&id, repo, nullptr, signature.get(), signature.get(), nullptr,
                          message.c_str(), tree.get(), tip ? 1 : 0, tip ? parents : nullptr),
        "writing the commit");
  // main moves only from the tip the commit was built on: a second writer (another process on
  // the same repository) is reported, never overwritten.
  git_reference* ref = nullptr;
  const std::string log = "confstore: " + message.substr(0, message.size() - 1);
  const int rc =
      tip ? git_reference_create_matching(&ref, repo, kBranch, &id, 1, &*tip, log.c_str())
          : git_reference_create(&ref, repo, kBranch, &id, 0, log.c_str());
  if (rc == GIT_EMODIFIED || rc == GIT_EEXISTS || rc == GIT_ELOCKED)
    fail(Status::io, "refs/heads/main moved under another writer; " + file + " not stored");
  check(rc, "updating refs/heads/main");
  Ref owned_ref(ref);

  change.commit = hex(id);
  change.diff = s.patch(parent_tree.get(), tree.get(), file, &change.added, &change.removed);
  if (!s.cache_tip || !tip || git_oid_equal(&*s.cache_tip, &*tip) == 0) s.last_change.clear();
  s.cache_tip = id;
  s.last_change[file] = id;
  return change;
}

std::vector<Version> Store::history(std::string_view device, std::size_t max) {
  const std::string file = file_name(device);
  Impl& s = *impl_;
  const std::lock_guard lock(s.mu);
  std::vector<Version> out;
  const std::optional<git_oid> tip = s.tip();
  if (!tip) return out;
  s.walk_changes(*tip, file, [&](const git_commit* c) {
    Version v;
    v.commit = hex(*git_commit_id(c));
    const git_signature* a = git_commit_author(c);
    v.time = std::chrono::system_clock::time_point(std::chrono::seconds(a->when.time));
    v.author = std::string(a->name) + " <" + a->email + ">";
    v.message = git_commit_message(c);
    while (!v.message.empty() && v.message.back() == '\n') v.message.pop_back();
    out.push_back(std::move(v));
    return max == 0 || out.size() < max;
  });
  return out;
}

std::optional<std::string> Store::show(std::string_view device, std::string_view version) {
  const std::string file = file_name(device);
  Impl& s = *impl_;
  const std::lock_guard lock(s.mu);
  const Commit c = s.resolve(version);
  const Tree t = s.tree_of(c.get());
  const std::optional<git_oid> id = entry_id(t.get(), file);
  if (!id) return std::nullopt;
  git_blob* b = nullptr;
  check(git_blob_lookup(&b, s.repo.get(), &*id), "reading " + file);
  const Blob blob(b);
  return std::string(static_cast<const char*>(git_blob_rawcontent(blob.get())),
                     static_cast<std::size_t>(git_blob_rawsize(blob.get())));
}

std::string Store::diff(std::string_view device, std::string_view from, std::string_view to) {
  const std::string file = file_name(device);
  Impl& s = *impl_;
  const std::lock_guard lock(s.mu);
  Tree from_tree;
  if (!from.empty()) from_tree = s.tree_of(s.resolve(from).get());
  const Tree to_tree = s.tree_of(s.resolve(to).get());
  return s.patch(from_tree.get(), to_tree.get(), file, nullptr, nullptr);
}

std::vector<std::string> Store::devices() {
  Impl& s = *impl_;
  const std::lock_guard lock(s.mu);
  std::vector<std::string> out;
  const std::optional<git_oid> tip = s.tip();
  if (!tip) return out;
  const Tree t = s.tree_of(s.commit(*tip).get());
  for (std::size_t i = 0, n = git_tree_entrycount(t.get()); i < n; ++i) {
    const git_tree_entry* e = git_tree_entry_byindex(t.get(), i);
    const std::string_view name = git_tree_entry_name(e);
    if (git_tree_entry_type(e) != GIT_OBJECT_BLOB || name.size() <= kSuffix.size() ||
        !name.ends_with(kSuffix))
      continue;
    out.emplace_back(name.substr(0, name.size() - kSuffix.size()));
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace outpost::lib::confstore
