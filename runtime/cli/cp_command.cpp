// `airlock cp SRC DST`: files and folders between the host and a VM (ID:/path), either
// way.
//
// A regular file goes through file.write / file.read (the named file is followed if it
// is a link, as cp does). A folder goes through file.upload / file.download: modes,
// times and symlinks are kept and no link is followed below the named folder on either
// side (runtime/vm/tree_transfer.hpp, guest-init/tree_transfer.hpp). As with cp -r, a
// destination that is an existing folder receives the source under its own name;
// otherwise the destination is created.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>

#include "runtime/cli/guarded.hpp"
#include "runtime/cli/vm_commands.hpp"
#include "runtime/vm/client.hpp"
#include "runtime/vm/command_helpers.hpp"
#include "runtime/vm/sandboxes.hpp"

namespace airlock::cli {

namespace fs = std::filesystem;
using runtime::ApiClient;

namespace {

struct CpArgs {
  std::string src, dst;
};

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t w = ::write(fd, data.data(), data.size());
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) throw CommandError(std::string("write: ") + std::strerror(errno));
    data.remove_prefix(static_cast<std::size_t>(w));
  }
}

ApiClient connect(const std::string& wanted, std::string& id) {
  const fs::path home = runtime::airlock_home();
  id = runtime::resolve_sandbox_id(home, wanted);
  runtime::SandboxInfo info = runtime::inspect_sandbox(home, id);
  if (!info.alive) throw CommandError("VM " + id + " is not running (airlock start " + id + ")");
  Result<ApiClient> client = ApiClient::connect(info.paths.api_sock);
  if (!client) throw CommandError("VM " + id + " is not reachable: " + client.error());
  return std::move(*client);
}

std::string base_name(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return fs::path(path).filename().string();
}

// A guest path without trailing "/" or "/." (the guest resolves plain names only).
std::string plain_guest_path(std::string path) {
  for (;;) {
    if (path.size() > 1 && path.back() == '/') {
      path.pop_back();
    } else if (path.size() > 2 && path.ends_with("/.")) {
      path.resize(path.size() - 2);
    } else {
      return path.empty() ? "/" : path;
    }
  }
}

// "src/." (cp -r's "the contents of src"): copied into the destination itself.
bool names_contents(const std::string& path) { return path == "." || path.ends_with("/.") || path.ends_with("/./"); }

// The guest's view of path without following a final link: "dir", "file", "symlink",
// "" when absent.
std::string guest_type(ApiClient& client, const std::string& path, bool follow) {
  Result<nlohmann::json> st = client.call({{"op", "file.stat"}, {"path", path}, {"nofollow", !follow}});
  if (!st) return "";
  auto type = st->find("type");
  return type != st->end() && type->is_string() ? type->get<std::string>() : "";
}

void print_counts(const protocol::TreeCounts& c) {
  if (c.skipped != 0) {
    std::cerr << "airlock: skipped " << c.skipped << " entries (devices, fifos, sockets, unreadable)\n";
  }
}

int upload(const runtime::CopyEndpoint& src, const runtime::CopyEndpoint& dst) {
  struct stat st {};
  if (::stat(src.path.c_str(), &st) != 0) throw CommandError(src.path + ": " + std::strerror(errno));
  std::string id;
  ApiClient client = connect(*dst.vm, id);
  std::string target = plain_guest_path(dst.path);
  // Links are not followed on the guest side: a destination that is one is refused there.
  const bool into = !names_contents(src.path) && guest_type(client, target, false) == "dir";
  if (into) target = (target == "/" ? "" : target) + "/" + base_name(src.path);
  if (S_ISDIR(st.st_mode)) {
    Result<protocol::TreeCounts> sent = client.upload_tree(src.path, target);
    if (!sent) throw CommandError(id + ":" + target + ": " + sent.error());
    print_counts(*sent);
    return 0;
  }
  if (!S_ISREG(st.st_mode)) throw CommandError(src.path + ": only files and folders can be copied");
  const int fd = ::open(src.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw CommandError(src.path + ": " + std::strerror(errno));
  Result<std::uint64_t> sent = client.put_file(target, fd, static_cast<std::uint64_t>(st.st_size), st.st_mode & 0777);
  ::close(fd);
  if (!sent) throw CommandError(id + ":" + target + ": " + sent.error());
  return 0;
}

int download(const runtime::CopyEndpoint& src_in, const runtime::CopyEndpoint& dst) {
  runtime::CopyEndpoint src = src_in;
  const bool contents = names_contents(src.path);
  src.path = plain_guest_path(src.path);
  std::string id;
  ApiClient client = connect(*src.vm, id);
  fs::path target = dst.path;
  std::error_code ec;
  if (!contents && fs::is_directory(target, ec)) target /= base_name(src.path);
  // A folder is copied as a tree; a link to one is not entered (its target is, if named).
  if (guest_type(client, src.path, false) == "dir") {
    Result<protocol::TreeCounts> got = client.download_tree(src.path, target);
    if (!got) throw CommandError(id + ":" + src.path + ": " + got.error());
    print_counts(*got);
    return 0;
  }
  const fs::path tmp = target.string() + ".airlock-part";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw CommandError(tmp.string() + ": " + std::strerror(errno));
  std::string write_error;
  auto got = client.get_file(src.path, [&](std::string_view chunk) {
    try {
      write_all(fd, chunk);
      return true;
    } catch (const CommandError& e) {
      write_error = e.what();
      return false;
    }
  });
  if (!got) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw CommandError(src.vm.value() + ":" + src.path + ": " + (write_error.empty() ? got.error() : write_error));
  }
  ::fchmod(fd, got->second & 0777);
  ::close(fd);
  if (std::rename(tmp.c_str(), target.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw CommandError(target.string() + ": " + std::strerror(err));
  }
  return 0;
}

int cmd_cp(const CpArgs& a) {
  Result<runtime::CopyEndpoint> src = runtime::parse_copy_endpoint(a.src);
  if (!src) throw CommandError(src.error());
  Result<runtime::CopyEndpoint> dst = runtime::parse_copy_endpoint(a.dst);
  if (!dst) throw CommandError(dst.error());
  if (src->vm.has_value() == dst->vm.has_value()) {
    throw CommandError("cp copies between the host and a VM: one side must be ID:/path");
  }
  return dst->vm ? upload(*src, *dst) : download(*src, *dst);
}

}  // namespace

void register_cp_command(CLI::App& app) {
  auto cp = std::make_shared<CpArgs>();
  CLI::App* cmd = app.add_subcommand(
      "cp", "Copy files or folders between the host and a VM (ID:/path); folders keep modes and symlinks");
  cmd->add_option("src", cp->src, "Source: host path or ID:/guest/path")->required();
  cmd->add_option("dst", cp->dst, "Destination: host path or ID:/guest/path")->required();
  cmd->callback([cp] { guarded([&] { return cmd_cp(*cp); }); });
}

}  // namespace airlock::cli
