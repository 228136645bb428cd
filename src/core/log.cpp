#include "core/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace dsinfer {
namespace {

LogLevel level_from_env() {
  const char* env = std::getenv("DSINFER_LOG");
  if (!env) return LogLevel::Info;
  if (!std::strcmp(env, "error")) return LogLevel::Error;
  if (!std::strcmp(env, "warn")) return LogLevel::Warn;
  if (!std::strcmp(env, "debug")) return LogLevel::Debug;
  return LogLevel::Info;
}

std::atomic<int>& level_storage() {
  static std::atomic<int> level{static_cast<int>(level_from_env())};
  return level;
}

}  // namespace

LogLevel log_level() { return static_cast<LogLevel>(level_storage().load()); }
void set_log_level(LogLevel level) { level_storage() = static_cast<int>(level); }

void log_line(LogLevel level, const std::string& message) {
  static const char* names[] = {"error", "warn", "info", "debug"};
  static std::mutex mu;
  using clock = std::chrono::steady_clock;
  static const auto start = clock::now();
  double t = std::chrono::duration<double>(clock::now() - start).count();
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "[%8.3fs %s] %s\n", t, names[static_cast<int>(level)], message.c_str());
}

}  // namespace dsinfer
