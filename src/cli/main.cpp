// dsinfer: the command-line entry point; each subcommand lives in its own cmd_*.cpp.
#include <algorithm>
#include <cstdio>

#include "cli/command.h"
#include "core/error.h"

namespace dsinfer {

std::vector<CommandSpec>& command_registry() {
  static std::vector<CommandSpec> commands;
  return commands;
}

std::vector<int> parse_id_list(const std::string& text) {
  std::vector<int> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    size_t used = 0;
    long v = -1;
    try {
      v = std::stol(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || v < 0 || v > 0x7fffffff)
      fail("bad token id '", item, "' in list '", text, "' (expected non-negative integers separated by commas)");
    ids.push_back(static_cast<int>(v));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return ids;
}

}  // namespace dsinfer

int main(int argc, char** argv) {
  using namespace dsinfer;
  CLI::App app{"dsinfer: inference engine and capacity planner for the DeepSeek model family"};
  app.require_subcommand(1);
  auto& commands = command_registry();
  std::sort(commands.begin(), commands.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (auto& spec : commands) spec.setup(*app.add_subcommand(spec.name, spec.description));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
