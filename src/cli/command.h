// The registry of `dsinfer` subcommands. Each cmd_*.cpp registers one command with a
// static CommandRegistration; main() builds the CLI11 application from the registry.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace dsinfer {

struct CommandSpec {
  std::string name;
  std::string description;
  // Adds the command's options to its subcommand and sets its callback.
  std::function<void(CLI::App&)> setup;
};

std::vector<CommandSpec>& command_registry();

struct CommandRegistration {
  explicit CommandRegistration(CommandSpec spec) { command_registry().push_back(std::move(spec)); }
};

// Parses "1,2,3" into ids; throws naming the bad element.
std::vector<int> parse_id_list(const std::string& text);

}  // namespace dsinfer
