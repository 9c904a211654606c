// file.*: file operations in a sandbox; see session.hpp.
//
// file.write and file.read carry the bytes (base64) in the message and stream them to or
// from the guest in frames; file.list pages through the guest's replies (one frame
// each) until it has every entry. file.upload and file.download move a host file or a
// whole folder without the bytes passing through JSON: they run as jobs with the
// blocking client, whose tree transfer follows no symlink on either side.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "protocol/messages.hpp"
#include "runtime/api/base64.hpp"
#include "runtime/api/session_state.hpp"
#include "runtime/vm/client.hpp"
#include "runtime/vm/sandboxes.hpp"

namespace airlock::api {

namespace fs = std::filesystem;
using nlohmann::json;
using protocol::Frame;
using protocol::FrameType;

json stat_result(const json& g) {
  json out = {{"name", protocol::get_string(g, "name").value_or("")},
              {"size", protocol::get_int(g, "size").value_or(0)},
              {"mode", protocol::get_int(g, "mode").value_or(0)},
              {"mod_time", protocol::get_int(g, "mod_time").value_or(0)},
              {"is_dir", protocol::get_bool(g, "is_dir").value_or(false)}};
  if (auto type = protocol::get_string(g, "type")) out["type"] = type->substr(0, 16);
  return out;
}

namespace {

// A request on a fresh channel of link, whose frames go to on_frame until it returns
// true (done); the channel is closed then, or when the link is lost (frame == nullptr).
void request(const std::shared_ptr<SupervisorLink>& link, const json& message,
             std::function<bool(const Frame*)> on_frame) {
  auto channel = std::make_shared<std::uint32_t>(0);
  std::weak_ptr<SupervisorLink> weak = link;
  *channel = link->open([weak, channel, on_frame = std::move(on_frame)](const Frame* frame) {
    if (on_frame(frame) && frame != nullptr) {
      if (auto l = weak.lock()) l->close(*channel);
    }
  });
  link->send_control(*channel, message);
}

ApiError lost() {
  return ApiError{ErrorKind::vm_not_running, "the sandbox stopped during the operation", "vm_stopped", nullptr, 0};
}

}  // namespace

void Session::file_write(FileWriteParams p, Reply reply) {
  auto link = link_for(p.id);
  if (auto* e = std::get_if<ApiError>(&link)) return reply(*e);
  auto& l = std::get<std::shared_ptr<SupervisorLink>>(link);
  auto channel = std::make_shared<std::uint32_t>(0);
  std::weak_ptr<SupervisorLink> weak = l;
  const std::string path = p.path;
  *channel = l->open([weak, channel, path, reply = std::move(reply)](const Frame* frame) {
    if (frame == nullptr) return reply(lost());
    if (frame->type != FrameType::control) return;
    auto r = protocol::parse_control(frame->payload);
    if (!r) return;
    if (protocol::op_of(*r) == "ok") {
      reply(json{{"size", protocol::get_int(*r, "size").value_or(0)}});
    } else {
      reply(guest_error(*r, "file.write " + path));
    }
    if (auto still = weak.lock()) still->close(*channel);
  });
  l->send_control(*channel, {{"op", "file.write"}, {"path", p.path}, {"mode", p.mode}, {"size", p.data.size()},
                             {"parents", p.parents}});
  l->send_data(FrameType::file_data, *channel, p.data);
  l->send(FrameType::file_data, *channel, {});
}

void Session::file_read(const FilePathParams& p, Reply reply) {
  auto link = link_for(p.id);
  if (auto* e = std::get_if<ApiError>(&link)) return reply(*e);
  struct Read {
    std::string data;
    std::int64_t mode = 0;
    bool too_large = false;
  };
  auto state = std::make_shared<Read>();
  const std::string path = p.path;
  request(std::get<std::shared_ptr<SupervisorLink>>(link), {{"op", "file.read"}, {"path", p.path}},
          [state, path, reply = std::move(reply)](const Frame* frame) {
            if (frame == nullptr) {
              reply(lost());
              return true;
            }
            if (frame->type == FrameType::file_data) {
              if (!frame->payload.empty()) {
                if (state->data.size() + frame->payload.size() > kMaxReadBytes) {
                  state->too_large = true;
                } else if (!state->too_large) {
                  state->data += frame->payload;
                }
                return false;
              }
              if (state->too_large) {
                reply(ApiError{ErrorKind::invalid_config,
                               path + " is larger than file.read returns (" + std::to_string(kMaxReadBytes >> 20) +
                                   " MiB): use file.download",
                               "too_large", nullptr, 0});
              } else {
                reply(json{{"data", base64_encode(state->data)}, {"size", state->data.size()}, {"mode", state->mode}});
              }
              return true;
            }
            auto r = protocol::parse_control(frame->payload);
            if (!r) return false;
            if (protocol::op_of(*r) == "ok") {
              state->mode = protocol::get_int(*r, "mode").value_or(0);
              return false;
            }
            reply(guest_error(*r, "file.read " + path));
            return true;
          });
}

void Session::file_list(const FilePathParams& p, Reply reply) {
  auto link = link_for(p.id);
  if (auto* e = std::get_if<ApiError>(&link)) return reply(*e);
  struct Listing {
    json entries = json::array();
    std::weak_ptr<SupervisorLink> link;
    std::string path;
    Reply reply;
    std::function<void(std::int64_t)> page;
  };
  auto state = std::make_shared<Listing>();
  state->link = std::get<std::shared_ptr<SupervisorLink>>(link);
  state->path = p.path;
  state->reply = std::move(reply);
  // Each page is one guest reply; a directory too big for one frame takes several.
  state->page = [weak_state = std::weak_ptr<Listing>(state)](std::int64_t offset) {
    auto s = weak_state.lock();
    if (!s) return;
    auto l = s->link.lock();
    if (!l) return s->reply(lost());
    request(l, {{"op", "file.list"}, {"path", s->path}, {"offset", offset}}, [s](const Frame* frame) {
      if (frame == nullptr) {
        s->reply(lost());
        s->page = nullptr;
        return true;
      }
      auto r = protocol::parse_control(frame->payload);
      if (frame->type != FrameType::control || !r) return false;
      if (protocol::op_of(*r) != "ok") {
        s->reply(guest_error(*r, "file.list " + s->path));
        s->page = nullptr;
        return true;
      }
      if (auto it = r->find("entries"); it != r->end() && it->is_array()) {
        for (const auto& e : *it) s->entries.push_back(stat_result(e));
      }
      const auto next = protocol::get_int(*r, "next_offset");
      if (protocol::get_bool(*r, "truncated").value_or(false) && next && *next > 0) {
        auto page = s->page;
        page(*next);
      } else {
        s->reply(std::move(s->entries));
        s->page = nullptr;  // ends the cycle state -> page -> state
      }
      return true;
    });
  };
  auto first = state->page;
  first(0);
}

void Session::file_one_reply(const std::string& id, json message, std::function<json(const json&)> shape, Reply reply) {
  auto link = link_for(id);
  if (auto* e = std::get_if<ApiError>(&link)) return reply(*e);
  const std::string context = protocol::op_of(message) + " " + protocol::get_string(message, "path").value_or("");
  request(std::get<std::shared_ptr<SupervisorLink>>(link), message,
          [context, shape = std::move(shape), reply = std::move(reply)](const Frame* frame) {
            if (frame == nullptr) {
              reply(lost());
              return true;
            }
            auto r = protocol::parse_control(frame->payload);
            if (frame->type != FrameType::control || !r) return false;
            if (protocol::op_of(*r) == "ok") {
              reply(shape(*r));
            } else {
              reply(guest_error(*r, context));
            }
            return true;
          });
}

void Session::file_transfer(const TransferParams& p, bool upload, Reply reply) {
  std::filesystem::path api_sock;
  auto id = running_sandbox(p.id, api_sock);
  if (auto* e = std::get_if<ApiError>(&id)) return reply(*e);
  jobs_.run(
      [api_sock, p, upload]() -> ApiResult {
        Result<runtime::ApiClient> client = runtime::ApiClient::connect(api_sock);
        if (!client) return ApiError{ErrorKind::vm_not_running, client.error(), "", nullptr, 0};
        auto failed = [&](const std::string& message) {
          // The guest's code travels in the message as "(code)": map it back to a kind.
          ApiError e{ErrorKind::internal, message, "", nullptr, 0};
          for (const char* code : {"not_found", "permission_denied", "invalid", "too_large", "busy", "io"}) {
            if (message.find(std::string("(") + code + ")") != std::string::npos) {
              e.kind = runtime::kind_for_guest_code(code);
              e.code = code;
              break;
            }
          }
          return e;
        };
        if (upload) {
          struct stat st {};
          if (::stat(p.src.c_str(), &st) != 0) {
            return ApiError{ErrorKind::invalid_config, p.src + ": no such file or folder on the host", "not_found", nullptr, 0};
          }
          if (S_ISDIR(st.st_mode)) {
            auto counts = client->upload_tree(p.src, p.dst);
            if (!counts) return failed(counts.error());
            return protocol::counts_json(*counts);
          }
          if (!S_ISREG(st.st_mode)) {
            return ApiError{ErrorKind::invalid_config, p.src + ": only files and folders can be uploaded", "invalid", nullptr, 0};
          }
          const int fd = ::open(p.src.c_str(), O_RDONLY | O_CLOEXEC);
          if (fd < 0) return ApiError{ErrorKind::invalid_config, p.src + ": can't read it", "permission_denied", nullptr, 0};
          auto sent = client->put_file(p.dst, fd, static_cast<std::uint64_t>(st.st_size), st.st_mode & 0777);
          ::close(fd);
          if (!sent) return failed(sent.error());
          return protocol::counts_json({1, 0, 0, *sent, 0});
        }
        auto st = client->call({{"op", "file.stat"}, {"path", p.src}, {"nofollow", true}});
        if (!st) return failed(st.error());
        if (protocol::get_string(*st, "type") == "dir") {
          auto counts = client->download_tree(p.src, p.dst);
          if (!counts) return failed(counts.error());
          return protocol::counts_json(*counts);
        }
        const std::string tmp = p.dst + ".airlock-part";
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) return ApiError{ErrorKind::invalid_config, p.dst + ": can't write there", "permission_denied", nullptr, 0};
        bool write_failed = false;
        auto got = client->get_file(p.src, [&](std::string_view chunk) {
          while (!chunk.empty()) {
            const ssize_t n = ::write(fd, chunk.data(), chunk.size());
            if (n <= 0) {
              write_failed = true;
              return false;
            }
            chunk.remove_prefix(static_cast<std::size_t>(n));
          }
          return true;
        });
        if (got) ::fchmod(fd, got->second & 0777);
        ::close(fd);
        if (!got || write_failed || std::rename(tmp.c_str(), p.dst.c_str()) != 0) {
          ::unlink(tmp.c_str());
          return got ? ApiError{ErrorKind::internal, p.dst + ": write failed", "io", nullptr, 0} : failed(got.error());
        }
        return protocol::counts_json({1, 0, 0, got->first, 0});
      },
      std::move(reply));
}

}  // namespace airlock::api
