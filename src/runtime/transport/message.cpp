#include "runtime/transport/message.h"

#include <fmt/format.h>

namespace llmctl::transport {

std::string encode_message(const Message& message) {
  nlohmann::json doc = {{"v", kProtocolVersion}, {"type", message.type}, {"body", message.body}};
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<Message> decode_message(std::string_view payload) {
  nlohmann::json doc = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Status::invalid_argument("message is not a JSON object");
  auto v = doc.find("v");
  if (v == doc.end() || !v->is_number_integer()) return Status::invalid_argument("message has no integer \"v\"");
  if (v->get<int>() != kProtocolVersion) {
    return Status::invalid_argument(
        fmt::format("peer speaks protocol version {}, this llmctl speaks {}", v->get<int>(), kProtocolVersion));
  }
  auto type = doc.find("type");
  if (type == doc.end() || !type->is_string()) return Status::invalid_argument("message has no string \"type\"");
  Message m;
  m.type = type->get<std::string>();
  if (auto body = doc.find("body"); body != doc.end()) m.body = *body;
  return m;
}

Message make_error(std::string message) {
  return Message{std::string(kErrorType), {{"message", std::move(message)}}};
}

}  // namespace llmctl::transport
