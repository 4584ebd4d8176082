// libFuzzer target: the control plane's frame and message decoding.
// Each input is decoded twice: as one message payload (decode_message), and
// as a raw byte stream arriving on a Channel (framing, envelope, ids,
// request/reply dispatch) through a socketpair, until the channel closes.
// Any crash, hang or sanitizer report is a bug; errors are expected.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <asio.hpp>

#include "runtime/transport/channel.h"
#include "runtime/transport/message.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace llmctl::transport;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  (void)decode_message(bytes);

  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return 0;
  // The writer end gets everything at once, then EOF.
  std::size_t off = 0;
  while (off < size) {
    ssize_t n = ::write(fds[1], data + off, size - off);
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
  ::shutdown(fds[1], SHUT_WR);
  {
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    asio::error_code ec;
    socket.assign(asio::ip::tcp::v4(), fds[0], ec);
    if (ec) {
      ::close(fds[0]);
      ::close(fds[1]);
      return 0;
    }
    ChannelOptions options;
    options.max_frame_bytes = 64 * 1024;
    auto channel = std::make_shared<Channel>(std::make_shared<FramedConnection>(std::move(socket), options.max_frame_bytes),
                                             options);
    bool closed = false;
    channel->start(
        [&](const Message& m, std::uint64_t id) {
          if (id > 0) channel->reply(id, m.body);  // exercise the reply path too
        },
        [&](const llmctl::Status&) { closed = true; });
    channel->request("probe", {}, std::chrono::milliseconds(1), [](llmctl::Result<nlohmann::json>) {});
    for (int i = 0; i < 1000 && !closed; ++i) io.run_one_for(std::chrono::milliseconds(10));
    channel->close(llmctl::Status::ok());
    io.poll();
  }
  ::close(fds[1]);
  return 0;
}
