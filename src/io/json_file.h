// Reading JSON files with errors that name the file and the parse position.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace dsinfer {

nlohmann::json read_json_file(const std::string& path);

}  // namespace dsinfer
