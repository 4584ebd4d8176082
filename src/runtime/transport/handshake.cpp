#include "runtime/transport/handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <fmt/format.h>

namespace llmctl::transport {
namespace {

constexpr std::size_t kNonceBytes = 32;

std::string to_hex(const unsigned char* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xf]);
  }
  return out;
}

bool same_proof(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string server_proof(const std::string& token, const std::string& nc, const std::string& ns) {
  return hmac_sha256_hex(token, "llmctl-server|" + nc + "|" + ns);
}

std::string client_proof(const std::string& token, const std::string& nc, const std::string& ns) {
  return hmac_sha256_hex(token, "llmctl-client|" + ns + "|" + nc);
}

std::string string_field(const Message& m, const char* key) {
  auto it = m.body.find(key);
  return it != m.body.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Status unexpected(const Message& m, std::string_view wanted, const std::string& peer) {
  if (m.type == kErrorType) {
    return Status::permission_denied(fmt::format("{} refused the handshake: {}", peer, string_field(m, "message")));
  }
  return Status::invalid_argument(fmt::format("{} sent {} during the handshake, expected {}", peer, m.type, wanted));
}

}  // namespace

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac, &len);
  return to_hex(mac, len);
}

std::string random_hex(std::size_t num_bytes) {
  std::string bytes(num_bytes, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(bytes.data()), static_cast<int>(num_bytes));
  return to_hex(reinterpret_cast<const unsigned char*>(bytes.data()), num_bytes);
}

void async_client_handshake(std::shared_ptr<FramedConnection> conn, std::string token, HandshakeHandler handler) {
  auto nc = std::make_shared<std::string>(random_hex(kNonceBytes));
  conn->async_write(Message{"auth.hello", {{"nonce", *nc}}}, [conn, token, nc, handler](Status s) {
    if (!s.is_ok()) return handler(s);
    conn->async_read([conn, token, nc, handler](Status s2, Message challenge) {
      if (!s2.is_ok()) return handler(s2);
      if (challenge.type != "auth.challenge") return handler(unexpected(challenge, "auth.challenge", conn->remote_address()));
      std::string ns = string_field(challenge, "nonce");
      if (ns.size() != kNonceBytes * 2 || !same_proof(string_field(challenge, "proof"), server_proof(token, *nc, ns))) {
        Status denied = Status::permission_denied(
            fmt::format("{} does not know the cluster token (its proof is wrong)", conn->remote_address()));
        // Say so before closing, so the server logs a wrong token rather than a dropped connection.
        conn->async_write(make_error("authentication failed: wrong cluster token"),
                          [handler, denied](Status) { handler(denied); });
        return;
      }
      conn->async_write(Message{"auth.proof", {{"proof", client_proof(token, *nc, ns)}}}, [conn, handler](Status s3) {
        if (!s3.is_ok()) return handler(s3);
        conn->async_read([conn, handler](Status s4, Message done) {
          if (!s4.is_ok()) return handler(s4);
          if (done.type != "auth.ok") return handler(unexpected(done, "auth.ok", conn->remote_address()));
          handler(Status::ok());
        });
      });
    });
  });
}

void async_server_handshake(std::shared_ptr<FramedConnection> conn, std::string token, HandshakeHandler handler) {
  conn->async_read([conn, token, handler](Status s, Message hello) {
    if (!s.is_ok()) return handler(s);
    if (hello.type != "auth.hello") return handler(unexpected(hello, "auth.hello", conn->remote_address()));
    std::string nc = string_field(hello, "nonce");
    if (nc.size() != kNonceBytes * 2) {
      return handler(Status::invalid_argument(fmt::format("{} sent a malformed auth.hello", conn->remote_address())));
    }
    std::string ns = random_hex(kNonceBytes);
    Message challenge{"auth.challenge", {{"nonce", ns}, {"proof", server_proof(token, nc, ns)}}};
    conn->async_write(challenge, [conn, token, nc, ns, handler](Status s2) {
      if (!s2.is_ok()) return handler(s2);
      conn->async_read([conn, token, nc, ns, handler](Status s3, Message proof) {
        if (!s3.is_ok()) return handler(s3);
        if (proof.type != "auth.proof") return handler(unexpected(proof, "auth.proof", conn->remote_address()));
        if (!same_proof(string_field(proof, "proof"), client_proof(token, nc, ns))) {
          Status denied = Status::permission_denied(
              fmt::format("{} does not know the cluster token (wrong token)", conn->remote_address()));
          // Tell the client why before closing, so its user sees "wrong token", not a reset.
          conn->async_write(make_error("authentication failed: wrong cluster token"),
                            [handler, denied](Status) { handler(denied); });
          return;
        }
        conn->async_write(Message{"auth.ok", {}}, [handler](Status s4) { handler(s4); });
      });
    });
  });
}

}  // namespace llmctl::transport
