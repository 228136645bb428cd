// Logging to stderr; level from DSINFER_LOG (error, warn, info, debug; default info).
#pragma once
#include <string>

#include "core/error.h"

namespace dsinfer {

enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3 };

LogLevel log_level();
void set_log_level(LogLevel level);
void log_line(LogLevel level, const std::string& message);

template <typename... Args>
void log_info(const Args&... args) {
  if (log_level() >= LogLevel::Info) log_line(LogLevel::Info, cat(args...));
}
template <typename... Args>
void log_warn(const Args&... args) {
  if (log_level() >= LogLevel::Warn) log_line(LogLevel::Warn, cat(args...));
}
template <typename... Args>
void log_debug(const Args&... args) {
  if (log_level() >= LogLevel::Debug) log_line(LogLevel::Debug, cat(args...));
}

}  // namespace dsinfer
