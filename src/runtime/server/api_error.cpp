#include "runtime/server/api_error.h"

#include <nlohmann/json.hpp>

namespace llmctl::server {
namespace {

const char* type_for(int status) {
  switch (status) {
    case 400: return "BadRequestError";
    case 401: return "AuthenticationError";
    case 404: return "NotFoundError";
    case 405: return "MethodNotAllowedError";
    case 408: return "RequestTimeoutError";
    case 413: return "RequestTooLargeError";
    case 431: return "RequestHeaderFieldsTooLargeError";
    case 501: return "NotImplementedError";
    case 503: return "ServiceUnavailableError";
    default: return "InternalServerError";
  }
}

}  // namespace

std::string error_json(int status, const std::string& message, const std::string& param, const std::string& type) {
  nlohmann::json body = {{"error",
                          {{"message", message},
                           {"type", type.empty() ? type_for(status) : type},
                           {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
                           {"code", status}}}};
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

HttpResponse error_response(int status, const std::string& message, const std::string& param,
                            const std::string& type) {
  HttpResponse r;
  r.status = status;
  r.body = error_json(status, message, param, type);
  return r;
}

int http_status_for(const Status& status) {
  switch (status.code()) {
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kPermissionDenied: return 401;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kUnimplemented: return 501;
    default: return 500;
  }
}

}  // namespace llmctl::server
