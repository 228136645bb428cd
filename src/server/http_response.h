// Writing JSON bodies and OpenAI-style errors into cpp-httplib responses.
#pragma once
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "server/api_error.h"

namespace dsinfer {

void send_json(httplib::Response& res, int status, const nlohmann::json& body);
// The error object with its status; 429 and 503 also say when to come back (Retry-After).
void send_error(httplib::Response& res, const ApiError& e);

}  // namespace dsinfer
