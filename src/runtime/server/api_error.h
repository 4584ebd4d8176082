// The one error shape every endpoint returns, as vLLM's OpenAI server writes
// it today: {"error": {"message", "type", "param", "code"}} where type is the
// OpenAI client's exception name for the status ("BadRequestError", ...) and
// code is the HTTP status.
#pragma once

#include <string>

#include "common/status.h"
#include "runtime/server/http_message.h"

namespace llmctl::server {

// type: "" picks the name for the status.
HttpResponse error_response(int status, const std::string& message, const std::string& param,
                            const std::string& type);
// The JSON alone (also sent as an SSE event when a stream fails midway).
std::string error_json(int status, const std::string& message, const std::string& param, const std::string& type);
// 400 for INVALID_ARGUMENT, 404 NOT_FOUND, 401 PERMISSION_DENIED,
// 503 UNAVAILABLE, 501 UNIMPLEMENTED, else 500.
int http_status_for(const Status& status);

}  // namespace llmctl::server
