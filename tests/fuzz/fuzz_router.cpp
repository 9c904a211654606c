// libFuzzer target for the supervisor's control-message router (runtime/vm/router.hpp):
// arbitrary interleavings of client frames, guest frames, client disconnects and a lost
// guest.
//
// The input is a script of steps: [kind][client][channel][type][len][payload...]. kind
// picks on_client_frame / on_guest_frame (guest channel taken from what the router
// allocated, or raw) / on_client_closed / on_tick after seconds pass / on_guest_lost. Invariants: nothing throws;
// nothing goes to the guest on channel 0 from a client; no frame is larger than the
// protocol's cap; audit bodies are objects with a type; a client that disconnected gets
// nothing until it sends again; the route table stays within its cap and is empty after
// the guest is lost.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "runtime/vm/router.hpp"

using namespace airlock::runtime;
using airlock::protocol::Frame;
using airlock::protocol::FrameType;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

// Payloads the fuzzer would take long to find on its own.
const char* const kSeeds[] = {
    R"({"op":"exec","argv":["sh","-c","echo hi"],"env":{"A":"1"}})",
    R"({"op":"exec","shell":"x","env":"bad"})",
    R"({"op":"file.read","path":"/a"})",
    R"({"op":"file.write","path":"/a","size":3})",
    R"({"op":"file.upload","path":"/d"})",
    R"({"op":"file.download","path":"/d"})",
    R"({"op":"entry","path":"a","type":"file","mode":420,"size":1})",
    R"({"op":"end"})",
    R"({"op":"events","from_seq":"x","follow":"yes"})",
    R"({"op":"status"})",
    R"({"op":"started","pid":1})",
    R"({"op":"exit","exit_code":0,"duration_ms":5})",
    R"({"op":"ok","size":1})",
    R"({"op":"error","code":"not_found","message":"m"})",
    R"({"op":"hello","boot_ms":1,"kernel":"k"})",
    R"({"op":"event","file":{"op":"write","path":"/workspace/x","size":3}})",
    R"({"op":"log","level":"warn","message":"m"})",
    R"({"op":"signal","signal":9})",
    R"({"op":"cancel"})",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Router router;
  router.set_base_env({{"BASE", "1"}});
  std::vector<std::uint32_t> guest_channels;
  std::set<ClientId> gone;
  std::size_t at = 0;
  std::int64_t now = 0;
  while (at + 5 <= size) {
    const std::uint8_t kind = data[at] % 8;
    const ClientId client = data[at + 1] % 4 + 1;
    const std::uint8_t channel_byte = data[at + 2];
    const auto type = static_cast<FrameType>(data[at + 3] % 6);
    std::size_t len = data[at + 4];
    at += 5;
    std::string payload;
    if (len >= 200 && (len - 200) < sizeof kSeeds / sizeof kSeeds[0]) {
      payload = kSeeds[len - 200];
    } else {
      len = std::min(len, size - at);
      payload.assign(reinterpret_cast<const char*>(data + at), len);
      at += len;
    }
    now += 7;
    Router::Outputs out;
    if (kind <= 3) {
      out = router.on_client_frame(client, Frame{type, channel_byte % 6u, payload}, now);
      gone.erase(client);
    } else if (kind <= 5) {
      const std::uint32_t channel = !guest_channels.empty() && (channel_byte & 1)
                                        ? guest_channels[channel_byte % guest_channels.size()]
                                        : channel_byte % 4u;
      out = router.on_guest_frame(Frame{type, channel, payload}, now);
    } else if (kind == 6) {
      out = router.on_client_closed(client);
      gone.insert(client);
    } else if (channel_byte & 1) {
      now += 5000 * (1 + channel_byte % 7);  // seconds pass: the liveness probe
      out = router.on_tick(now);
    } else {
      out = router.on_guest_lost("lost", now);
      check(router.open_routes() == 0);
    }
    for (const RouterOutput& o : out) {
      check(o.frame.payload.size() <= airlock::protocol::kMaxPayload + 64 * 1024);
      switch (o.kind) {
        case RouterOutput::Kind::to_guest:
          if (kind <= 3) check(o.frame.channel != 0);
          guest_channels.push_back(o.frame.channel);
          break;
        case RouterOutput::Kind::to_client:
          check(gone.count(o.client) == 0);
          break;
        case RouterOutput::Kind::audit:
          check(o.json.is_object() && o.json.contains("type"));
          break;
        default:
          break;
      }
    }
    if (guest_channels.size() > 64) guest_channels.erase(guest_channels.begin(), guest_channels.begin() + 32);
    check(router.open_routes() <= Router::kMaxChannels);
  }
  return 0;
}
