// The image store; see image_store.hpp.
#include "images/image_store.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include <nlohmann/json.hpp>

extern char** environ;

namespace airlock::images {
namespace fs = std::filesystem;

namespace {

// A manifest is a few hundred bytes; anything far larger is not one of ours.
constexpr std::uintmax_t kMaxManifestBytes = 64 * 1024;
// Lines of build output kept to explain a failed build.
constexpr std::size_t kTailLines = 20;

std::string errno_text(int err) { return std::strerror(err); }

// Closes a file descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

struct RunResult {
  int exit_code = -1;  // 128+N for a signal death
  std::string output;  // stdout, when captured
};

// Runs argv to completion. on_line gets each line of stdout+stderr when set; otherwise
// stdout is captured into output (capture_stdout) or inherited, and stderr is inherited.
Result<RunResult> run(const std::vector<std::string>& argv,
                      const std::function<void(std::string_view)>& on_line,
                      bool capture_stdout) {
  const bool piped = static_cast<bool>(on_line) || capture_stdout;
  std::array<int, 2> pipe_fds{-1, -1};
  if (piped && ::pipe2(pipe_fds.data(), O_CLOEXEC) != 0)
    return Error{"pipe: " + errno_text(errno)};
  Fd read_end(pipe_fds[0]);
  Fd write_end(pipe_fds[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (piped) {
    posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
    if (on_line) posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDERR_FILENO);
  }
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  write_end.reset();
  if (rc != 0) return Error{"cannot run " + argv[0] + ": " + errno_text(rc)};

  RunResult result;
  if (piped) {
    std::string pending;
    std::array<char, 4096> buf{};
    for (;;) {
      const ssize_t n = ::read(read_end.get(), buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      if (!on_line) {
        result.output.append(buf.data(), static_cast<std::size_t>(n));
        continue;
      }
      pending.append(buf.data(), static_cast<std::size_t>(n));
      std::size_t start = 0;
      for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
        on_line(std::string_view(pending).substr(start, nl - start));
      pending.erase(0, start);
    }
    if (on_line && !pending.empty()) on_line(pending);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return Error{"waitpid: " + errno_text(errno)};
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

bool is_lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string known_recipes_text() {
  std::string out;
  for (const auto& r : known_recipes()) out += (out.empty() ? "" : ", ") + r;
  return out;
}

bool is_known_recipe(const std::string& name) {
  const auto& known = known_recipes();
  return std::find(known.begin(), known.end(), name) != known.end();
}

// Fills the script and init paths from the runtime lookup when the caller left them out.
Result<BuildOptions> resolve(const BuildOptions& in) {
  BuildOptions out = in;
  if (out.build_script.empty()) {
    auto found = find_runtime_file("build-image");
    if (!found) return Error{"build-image script not found (set AIRLOCK_LIBEXEC)"};
    out.build_script = *found;
  }
  if (out.init.empty()) {
    auto found = find_runtime_file("airlock-init");
    if (!found) return Error{"airlock-init not found (build guest-init, or set AIRLOCK_LIBEXEC)"};
    out.init = *found;
  }
  return out;
}

// What the recipe hash depends on, cheaply: size and mtime of the build script and the
// init binary, and the mtime of apt's package lists (apt-get update changes it, and with
// it possibly the kernel version). Computing the real hash runs apt-cache, which takes
// seconds where apt keeps no binary cache, so ensure() reuses the last hash while this
// fingerprint is unchanged.
std::string recipe_inputs_stamp(const BuildOptions& o) {
  std::string stamp;
  for (const fs::path& p : {o.build_script, o.init, o.apt_lists}) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) return {};
    stamp += p.string() + ' ' + std::to_string(st.st_size) + ' ' +
             std::to_string(st.st_mtim.tv_sec) + '.' + std::to_string(st.st_mtim.tv_nsec) +
             '\n';
  }
  return stamp;
}

std::string read_small_file(const fs::path& p) {
  std::error_code ec;
  const auto size = fs::file_size(p, ec);
  if (ec || size > kMaxManifestBytes) return {};
  std::ifstream in(p, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes text to p through a temporary file and a rename; failures are ignored (the
// cache is an optimisation).
void write_file_atomically(const fs::path& p, const std::string& text) {
  const fs::path tmp = p.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) return;
  }
  std::error_code ec;
  fs::rename(tmp, p, ec);
}

}  // namespace

const std::vector<std::string>& known_recipes() {
  static const std::vector<std::string> recipes{"default"};
  return recipes;
}

bool is_valid_image_name(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  auto ok_first = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!ok_first(name.front())) return false;
  return std::all_of(name.begin(), name.end(), [&](char c) {
    return ok_first(c) || c == '.' || c == '_' || c == '-';
  });
}

Result<ImageInfo> parse_manifest(std::string_view text, const fs::path& dir) {
  const auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Error{"not valid JSON"};
  if (!j.is_object()) return Error{"not a JSON object"};

  auto string_field = [&](const char* key) -> Result<std::string> {
    const auto it = j.find(key);
    if (it == j.end()) return Error{std::string("missing field \"") + key + "\""};
    if (!it->is_string()) return Error{std::string("field \"") + key + "\" is not a string"};
    return it->get<std::string>();
  };
  auto integer_field = [&](const char* key) -> Result<std::int64_t> {
    const auto it = j.find(key);
    if (it == j.end()) return Error{std::string("missing field \"") + key + "\""};
    if (!it->is_number_integer() || (it->is_number_unsigned() && it->get<std::uint64_t>() >
                                         static_cast<std::uint64_t>(INT64_MAX)))
      return Error{std::string("field \"") + key + "\" is not an integer"};
    return it->get<std::int64_t>();
  };

  ImageInfo info;
  auto name = string_field("name");
  if (!name) return Error{name.error()};
  if (!is_valid_image_name(*name)) return Error{"field \"name\" is not a valid image name"};
  auto hash = string_field("recipe_hash");
  if (!hash) return Error{hash.error()};
  if (hash->size() != 64 || !is_lower_hex(*hash))
    return Error{"field \"recipe_hash\" is not a sha256 hex digest"};
  auto kernel_version = string_field("kernel_version");
  if (!kernel_version) return Error{kernel_version.error()};
  auto created = integer_field("created");
  if (!created) return Error{created.error()};
  auto size = integer_field("size_bytes");
  if (!size) return Error{size.error()};
  if (*size < 0) return Error{"field \"size_bytes\" is negative"};

  info.name = std::move(*name);
  info.recipe_hash = std::move(*hash);
  info.kernel_version = std::move(*kernel_version);
  info.created = *created;
  info.size_bytes = static_cast<std::uint64_t>(*size);
  info.dir = dir;
  info.kernel = dir / "vmlinuz";
  info.initramfs = dir / "initramfs.cpio.gz";
  info.rootfs = dir / "rootfs.img";
  return info;
}

std::optional<fs::path> find_runtime_file(std::string_view name) {
  std::vector<fs::path> candidates;
  if (const char* libexec = std::getenv("AIRLOCK_LIBEXEC"); libexec && *libexec)
    candidates.push_back(fs::path(libexec) / name);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path d = exe.parent_path();
    for (const char* rel : {"../share/airlock", "share/airlock", ".", "guest-init",
                            "../libexec/airlock"})
      candidates.push_back(d / rel / name);
  }
  for (const auto& c : candidates) {
    if (fs::is_regular_file(c, ec)) return c.lexically_normal();
  }
  return std::nullopt;
}

ImageStore::ImageStore(fs::path home) : home_(std::move(home)), images_dir_(home_ / "images") {}

Result<ImageInfo> ImageStore::load(const std::string& name) const {
  if (!is_valid_image_name(name)) return Error{"invalid image name '" + name + "'"};
  const fs::path dir = images_dir_ / name;
  const fs::path manifest = dir / "manifest.json";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Error{"image '" + name + "' is not built"};
  const auto size = fs::file_size(manifest, ec);
  if (ec) return Error{manifest.string() + ": " + ec.message()};
  if (size > kMaxManifestBytes) return Error{manifest.string() + ": too large"};
  std::ifstream in(manifest, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) return Error{manifest.string() + ": cannot read"};
  auto info = parse_manifest(text.str(), dir);
  if (!info) return Error{manifest.string() + ": " + info.error()};
  if (info->name != name)
    return Error{manifest.string() + ": names image '" + info->name + "', expected '" + name +
                 "'"};
  for (const auto& file : {info->kernel, info->initramfs, info->rootfs}) {
    if (!fs::is_regular_file(file, ec))
      return Error{"image '" + name + "' is incomplete: " + file.filename().string() +
                   " is missing"};
  }
  if (fs::is_regular_file(dir / "vmlinux", ec)) info->vmlinux = dir / "vmlinux";
  return info;
}

std::vector<ImageInfo> ImageStore::list() const {
  std::vector<ImageInfo> out;
  std::error_code ec;
  for (fs::directory_iterator it(images_dir_, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    // Build staging directories start with a dot, so they fail the name check here.
    if (!is_valid_image_name(name)) continue;
    if (auto info = load(name)) out.push_back(std::move(*info));
  }
  std::sort(out.begin(), out.end(),
            [](const ImageInfo& a, const ImageInfo& b) { return a.name < b.name; });
  return out;
}

std::optional<ImageInfo> ImageStore::find(const std::string& name) const {
  auto info = load(name);
  if (!info) return std::nullopt;
  return std::move(*info);
}

Result<std::string> ImageStore::recipe_hash(const std::string& name,
                                            const BuildOptions& options) const {
  if (!is_known_recipe(name))
    return Error{"unknown image '" + name + "' (known recipes: " + known_recipes_text() + ")"};
  auto opts = resolve(options);
  if (!opts) return Error{opts.error()};
  auto ran = run({opts->build_script.string(), "--print-recipe-hash", "--init",
                  opts->init.string()},
                 nullptr, /*capture_stdout=*/true);
  if (!ran) return Error{ran.error()};
  std::string hash = ran->output;
  while (!hash.empty() && (hash.back() == '\n' || hash.back() == '\r')) hash.pop_back();
  if (ran->exit_code != 0)
    return Error{"build-image --print-recipe-hash failed (exit " +
                 std::to_string(ran->exit_code) + ")"};
  if (hash.size() != 64 || !is_lower_hex(hash))
    return Error{"build-image --print-recipe-hash printed no sha256 digest"};
  return hash;
}

Result<ImageInfo> ImageStore::ensure(const std::string& name, const BuildOptions& options) {
  if (!is_valid_image_name(name)) return Error{"invalid image name '" + name + "'"};
  if (!is_known_recipe(name))
    return Error{"unknown image '" + name + "' (known recipes: " + known_recipes_text() + ")"};
  auto opts = resolve(options);
  if (!opts) {
    // Without the build tools the recipe can't be checked; an existing image still runs.
    if (auto current = load(name)) return current;
    return Error{opts.error()};
  }

  std::error_code ec;
  fs::create_directories(images_dir_, ec);
  if (ec) return Error{images_dir_.string() + ": " + ec.message()};
  // Two airlock processes asking for the same image wait for one build, not race two.
  const fs::path lock_path = images_dir_ / ("." + name + ".lock");
  Fd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (lock.get() < 0) return Error{lock_path.string() + ": " + errno_text(errno)};
  while (::flock(lock.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return Error{lock_path.string() + ": flock: " + errno_text(errno)};
  }

  const fs::path cache_path = images_dir_ / ("." + name + ".recipe");
  const std::string stamp = recipe_inputs_stamp(*opts);
  Result<std::string> wanted = Error{""};
  if (const std::string cached = read_small_file(cache_path);
      !stamp.empty() && !opts->force && cached.size() == stamp.size() + 65 &&
      cached.compare(0, stamp.size(), stamp) == 0 && cached.back() == '\n') {
    const std::string hash = cached.substr(stamp.size(), 64);
    if (is_lower_hex(hash)) wanted = hash;
  }
  if (!wanted) {
    wanted = recipe_hash(name, *opts);
    if (wanted && !stamp.empty()) write_file_atomically(cache_path, stamp + *wanted + "\n");
  }
  if (!wanted) {
    auto current = load(name);
    if (!current) return Error{wanted.error()};
    if (opts->progress)
      opts->progress("warning: using image '" + name + "' unchecked: " + wanted.error());
    return current;
  }
  // Why a build is needed, said up front and in the error should the build fail. A
  // broken image (a file gone from the store, a manifest torn) is an error that says
  // what is wrong and how to rebuild it: no VM boots from it, and no multi-minute build
  // starts behind the user's back.
  std::string why = "rebuild asked for";
  if (!opts->force) {
    auto current = load(name);
    if (current && current->recipe_hash == *wanted) return current;
    std::error_code exists_ec;
    const bool broken = !current && fs::exists(images_dir_ / name, exists_ec);
    if (broken && !opts->repair) return Error{current.error() + " (`airlock image build` rebuilds it)"};
    why = current ? "built from another recipe" : broken ? "broken (" + current.error() + ")" : "not built yet";
  }
  if (opts->progress) opts->progress("image '" + name + "' " + why + ": building it");

  const fs::path work = opts->work_dir.empty() ? home_ / "tmp" : opts->work_dir;
  fs::create_directories(work, ec);
  if (ec) return Error{work.string() + ": " + ec.message()};

  std::vector<std::string> tail;
  std::function<void(std::string_view)> on_line;
  if (opts->progress) {
    on_line = [&](std::string_view line) {
      opts->progress(line);
      tail.emplace_back(line);
      if (tail.size() > kTailLines) tail.erase(tail.begin());
    };
  }
  auto ran = run({opts->build_script.string(), "--name", name, "--out",
                  (images_dir_ / name).string(), "--init", opts->init.string(), "--work",
                  work.string()},
                 on_line, /*capture_stdout=*/false);
  if (!ran) return Error{ran.error()};
  if (ran->exit_code != 0) {
    std::string msg = "building image '" + name + "' (" + why + ") failed (exit " +
                      std::to_string(ran->exit_code) + ")";
    for (const auto& line : tail) {
      if (line.find("error") != std::string::npos) msg += "\n  " + line;
    }
    return Error{msg};
  }
  auto built = load(name);
  if (!built) return Error{"build finished but the image is unusable: " + built.error()};
  if (built->recipe_hash != *wanted)
    return Error{"build finished but the image's recipe hash differs from the recipe's"};
  return built;
}

Result<bool> ImageStore::remove(const std::string& name) {
  if (!is_valid_image_name(name)) return Error{"invalid image name '" + name + "'"};
  const fs::path dir = images_dir_ / name;
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(dir, ec))) return false;
  fs::remove_all(dir, ec);
  if (ec) return Error{dir.string() + ": " + ec.message()};
  return true;
}

}  // namespace airlock::images
