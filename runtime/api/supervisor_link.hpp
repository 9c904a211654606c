// One API server connection to a VM's supervisor (vms/<id>/api.sock), on Asio: the
// asynchronous counterpart of runtime/vm/client.hpp, multiplexing many requests (each
// on a channel of its own) over one socket.
//
// Frames from the supervisor go to the handler of their channel; frames for a channel
// nobody holds (the tail of an exec whose client went away) are dropped. When the
// socket ends, every handler is called once with nullptr: the VM stopped (or the
// supervisor died), and whatever was in flight ends there. Reading can be paused while
// the API client is slow, which pushes back on the supervisor and so on the guest.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/local/stream_protocol.hpp>
#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "protocol/frame.hpp"

namespace airlock::api {

class SupervisorLink : public std::enable_shared_from_this<SupervisorLink> {
 public:
  using Handler = std::function<void(const protocol::Frame* frame)>;  // nullptr: the link is gone

  static Result<std::shared_ptr<SupervisorLink>> connect(boost::asio::io_context& io,
                                                         const std::filesystem::path& api_sock);
  ~SupervisorLink();

  std::uint32_t open(Handler handler);
  void close(std::uint32_t channel);
  void send(protocol::FrameType type, std::uint32_t channel, std::string_view payload);
  void send_control(std::uint32_t channel, const nlohmann::json& message);
  // Bytes split into data frames of at most kMaxPayload (none for an empty view).
  void send_data(protocol::FrameType type, std::uint32_t channel, std::string_view bytes);

  // Called after each write to the supervisor finished (the backlog went down).
  std::function<void()> on_drained;

  bool alive() const { return alive_; }
  std::size_t backlog() const { return queued_; }
  void set_reading(bool enabled);
  void shut_down();

 private:
  explicit SupervisorLink(boost::asio::io_context& io);
  void start_read();
  void flush();
  void lost();

  boost::asio::local::stream_protocol::socket socket_;
  protocol::FrameDecoder decoder_;
  std::array<char, 64 * 1024> buffer_{};
  std::deque<std::string> queue_;
  std::size_t queued_ = 0;
  std::map<std::uint32_t, Handler> handlers_;
  std::uint32_t next_channel_ = 1;
  bool alive_ = true;
  bool reading_ = false;
  bool writing_ = false;
  bool read_enabled_ = true;
};

}  // namespace airlock::api
