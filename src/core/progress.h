// Progress of long work (loading a model, a benchmark's runs) as log lines: one at most every
// interval, so that a load of minutes shows it moving while a short one stays quiet.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace dsinfer {

class Progress {
 public:
  Progress(std::string what, int64_t total, double interval_s = 2.0);
  // `done` of the total units finished; `detail` follows the count.
  void step(int64_t done, const std::string& detail = "");

 private:
  std::string what_;
  int64_t total_;
  std::chrono::steady_clock::duration interval_;
  std::chrono::steady_clock::time_point start_, last_;
};

}  // namespace dsinfer
