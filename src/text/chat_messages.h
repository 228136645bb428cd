// Reading a chat (messages, optional tools) from JSON given on a command line or in a file.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace dsinfer {

struct ChatRequest {
  nlohmann::ordered_json messages;        // a JSON array of messages
  nlohmann::ordered_json tools = nullptr;  // a JSON array of tool schemas, or null
};

// Accepts a list of messages or an object {"messages": [...], "tools": [...]}; key order is
// kept (templates print tools with tojson). `where` names the source in errors.
ChatRequest parse_chat_json(const std::string& text, const std::string& where);
// `argument` is JSON text, or else the path of a JSON file.
ChatRequest parse_chat_argument(const std::string& argument, const std::string& where);
ChatRequest read_chat_file(const std::string& path);

}  // namespace dsinfer
