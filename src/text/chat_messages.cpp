#include "text/chat_messages.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace dsinfer {

ChatRequest parse_chat_json(const std::string& text, const std::string& where) {
  nlohmann::ordered_json j;
  try {
    j = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("malformed JSON in ", where, ": ", e.what());
  }
  ChatRequest chat;
  if (j.is_object()) {
    if (!j.contains("messages")) fail(where, ": expected a list of messages or an object with \"messages\"");
    chat.messages = j["messages"];
    if (j.contains("tools")) chat.tools = j["tools"];
  } else {
    chat.messages = j;
  }
  if (!chat.messages.is_array()) fail(where, ": \"messages\" must be a JSON array");
  for (size_t i = 0; i < chat.messages.size(); ++i)
    if (!chat.messages[i].is_object()) fail(where, ": message ", i, " is not a JSON object");
  if (!chat.tools.is_null() && !chat.tools.is_array()) fail(where, ": \"tools\" must be a JSON array");
  return chat;
}

ChatRequest read_chat_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open messages file '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_chat_json(ss.str(), "'" + path + "'");
}

ChatRequest parse_chat_argument(const std::string& argument, const std::string& where) {
  size_t first = argument.find_first_not_of(" \t\r\n");
  bool looks_like_json = first != std::string::npos && (argument[first] == '[' || argument[first] == '{');
  if (!looks_like_json && std::filesystem::is_regular_file(argument)) return read_chat_file(argument);
  return parse_chat_json(argument, where);
}

}  // namespace dsinfer
