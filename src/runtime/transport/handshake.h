// Mutual authentication over the cluster token; the token never crosses the wire.
//
//   client -> server  auth.hello     {nonce: Nc}
//   server -> client  auth.challenge {nonce: Ns, proof: HMAC(token, "llmctl-server|" Nc "|" Ns)}
//   client -> server  auth.proof     {proof: HMAC(token, "llmctl-client|" Ns "|" Nc)}
//   server -> client  auth.ok        (or "error", then the server closes)
//
// Nonces are 32 random bytes (hex), HMAC is SHA-256, proofs are compared in
// constant time. The two proofs use different labels, so one side's proof can
// never be replayed as the other's. Both sides fail with PERMISSION_DENIED when
// the other does not know the token.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "runtime/transport/framed_connection.h"

namespace llmctl::transport {

using HandshakeHandler = std::function<void(Status)>;

void async_client_handshake(std::shared_ptr<FramedConnection> connection, std::string token, HandshakeHandler handler);
void async_server_handshake(std::shared_ptr<FramedConnection> connection, std::string token, HandshakeHandler handler);

// Lowercase hex of HMAC-SHA256(key, data).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);
// Lowercase hex of `num_bytes` bytes from OpenSSL's CSPRNG.
std::string random_hex(std::size_t num_bytes);

}  // namespace llmctl::transport
