// TLS settings for control-plane connections (optional; off unless the head
// is started with --tls-cert/--tls-key). The token handshake (handshake.h)
// still runs inside TLS: TLS hides the traffic, the token decides who may
// join.
//
// The client checks the head's certificate chain against --tls-ca (the
// head's own certificate when self-signed). Host names are not checked: nodes
// are addressed by IP and the mutual token proof already rules out a head
// that does not know the token.
#pragma once

#include <memory>
#include <string>

#include <asio/ssl.hpp>

#include "common/status.h"

namespace llmctl::transport {

using TlsContext = std::shared_ptr<asio::ssl::context>;

// TLS 1.2 or later with `cert_file` (PEM chain) and `key_file` (PEM key).
Result<TlsContext> make_server_tls_context(const std::string& cert_file, const std::string& key_file);
// TLS 1.2 or later, peer verified against the PEM certificates in `ca_file`.
Result<TlsContext> make_client_tls_context(const std::string& ca_file);

}  // namespace llmctl::transport
