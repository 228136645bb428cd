// ApiError: a request that fails with an HTTP status and an OpenAI-style error object
// {"error": {"message", "type", "param", "code"}}, so clients written for OpenAI's API can
// read why (and which field) without parsing text.
#pragma once
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace dsinfer {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string type, std::string message, std::string param = "", std::string code = "")
      : std::runtime_error(message), status(status), type(std::move(type)), param(std::move(param)),
        code(std::move(code)) {}

  int status;
  std::string type;   // invalid_request_error, authentication_error, ...
  std::string param;  // the offending field, empty when none
  std::string code;   // a machine-readable code, empty when none
};

// The error object of the response body; empty param / code become null as OpenAI writes them.
nlohmann::json error_json(const ApiError& e);

// 400 naming the field that is wrong.
ApiError invalid_field(const std::string& param, const std::string& message);

}  // namespace dsinfer
