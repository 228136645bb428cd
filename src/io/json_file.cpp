#include "io/json_file.h"

#include "core/error.h"
#include "io/text_file.h"

namespace dsinfer {

nlohmann::json read_json_file(const std::string& path) {
  const std::string text = read_text_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("malformed JSON in '", path, "': ", e.what());
  }
}

}  // namespace dsinfer
