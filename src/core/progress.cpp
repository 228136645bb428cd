#include "core/progress.h"

#include "core/log.h"

namespace dsinfer {

Progress::Progress(std::string what, int64_t total, double interval_s)
    : what_(std::move(what)),
      total_(total),
      interval_(std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(interval_s))),
      start_(std::chrono::steady_clock::now()),
      last_(start_) {}

void Progress::step(int64_t done, const std::string& detail) {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_ < interval_) return;
  last_ = now;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  log_info(what_, ": ", done, " of ", total_, detail.empty() ? "" : " (" + detail + ")", ", ",
           static_cast<int>(seconds), " s");
}

}  // namespace dsinfer
