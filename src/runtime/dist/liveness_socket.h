// A listening socket that lives exactly as long as its process, so a peer can
// tell "gone" from "slow" after a collective fails: the kernel completes the
// TCP handshake for a listening socket without the process doing anything,
// and refuses it once the process has died and the socket is closed. No
// thread accepts; probes are rare (only after a failure) and the backlog is
// large.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace llmctl::dist {

class LivenessSocket {
 public:
  // Binds `address`, port 0 (any free port).
  static Result<LivenessSocket> open(const std::string& address);
  LivenessSocket() = default;
  LivenessSocket(LivenessSocket&& other) noexcept;
  LivenessSocket& operator=(LivenessSocket&& other) noexcept;
  LivenessSocket(const LivenessSocket&) = delete;
  LivenessSocket& operator=(const LivenessSocket&) = delete;
  ~LivenessSocket();

  std::uint16_t port() const { return port_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

enum class PeerState {
  kAlive,   // the handshake completed: the process holds its socket
  kGone,    // refused: the process has exited (its host answers)
  kSilent,  // no answer within the timeout: host down, cut off or firewalled
};

PeerState probe_peer(const std::string& address, std::uint16_t port, std::chrono::milliseconds timeout);

}  // namespace llmctl::dist
