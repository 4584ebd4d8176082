// The message envelope every llmctl connection carries, one per frame:
//   {"v": 1, "type": "doctor.info", "body": {...}}
// `v` is the protocol version; a peer speaking another version is refused
// with an error naming both versions, so mixed installs fail loudly.
// Replies use type "reply" (success) or "error" (body {"message": ...}).
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace llmctl::transport {

constexpr int kProtocolVersion = 1;
constexpr std::string_view kReplyType = "reply";
constexpr std::string_view kErrorType = "error";

struct Message {
  std::string type;
  nlohmann::json body = nlohmann::json::object();
};

std::string encode_message(const Message& message);
// Fails (INVALID_ARGUMENT) on bad JSON, a missing/odd field or another version.
Result<Message> decode_message(std::string_view payload);

Message make_error(std::string message);

}  // namespace llmctl::transport
