#include "io/text_file.h"

#include <fstream>
#include <sstream>

#include "core/error.h"

namespace dsinfer {

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail("cannot read '", path, "'");
  return ss.str();
}

}  // namespace dsinfer
