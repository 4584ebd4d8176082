#include "runtime/transport/tls_context.h"

#include <fmt/format.h>

namespace llmctl::transport {
namespace {

Result<TlsContext> new_context(asio::ssl::context::method method) {
  auto context = std::make_shared<asio::ssl::context>(method);
  asio::error_code ec;
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                           asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                           asio::ssl::context::no_tlsv1_1,
                       ec);
  if (ec) return Status::internal(fmt::format("TLS options: {}", ec.message()));
  return context;
}

}  // namespace

Result<TlsContext> make_server_tls_context(const std::string& cert_file, const std::string& key_file) {
  if (cert_file.empty() || key_file.empty()) {
    return Status::invalid_argument("TLS needs both a certificate (--tls-cert) and its key (--tls-key)");
  }
  ASSIGN_OR_RETURN(TlsContext context, new_context(asio::ssl::context::tls_server));
  asio::error_code ec;
  context->use_certificate_chain_file(cert_file, ec);
  if (ec) return Status::invalid_argument(fmt::format("--tls-cert {}: {}", cert_file, ec.message()));
  context->use_private_key_file(key_file, asio::ssl::context::pem, ec);
  if (ec) return Status::invalid_argument(fmt::format("--tls-key {}: {}", key_file, ec.message()));
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    return Status::invalid_argument(fmt::format("--tls-key {} does not match --tls-cert {}", key_file, cert_file));
  }
  return context;
}

Result<TlsContext> make_client_tls_context(const std::string& ca_file) {
  ASSIGN_OR_RETURN(TlsContext context, new_context(asio::ssl::context::tls_client));
  asio::error_code ec;
  context->load_verify_file(ca_file, ec);
  if (ec) return Status::invalid_argument(fmt::format("--tls-ca {}: {}", ca_file, ec.message()));
  context->set_verify_mode(asio::ssl::verify_peer, ec);
  if (ec) return Status::internal(fmt::format("TLS verify mode: {}", ec.message()));
  return context;
}

}  // namespace llmctl::transport
