// Reading a whole file as bytes, with an error that names it.
#pragma once
#include <string>

namespace dsinfer {

// Throws naming `path` when it cannot be opened or read.
std::string read_text_file(const std::string& path);

}  // namespace dsinfer
