// Metrics: the server's counters and latency histograms, exposed in the Prometheus text format
// (written by hand: the format is a few lines per metric and needs no library).
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/engine.h"

namespace dsinfer {

// How a completion request ended, the label of dsinfer_requests_total.
enum class Outcome { Success, Cached, Invalid, Unauthorized, Rejected, Unavailable, Timeout, Cancelled, Error, Count };
const char* outcome_name(Outcome o);

class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value);
  // Appends the _bucket, _sum and _count lines of metric `name`.
  void render(const std::string& name, const std::string& help, std::string& out) const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; the last is +Inf
  double sum_ = 0.0;
  uint64_t count_ = 0;
};

class Metrics {
 public:
  Metrics();

  void count_request(Outcome o) { requests_[static_cast<size_t>(o)]++; }
  void count_cache_lookup(bool hit) { (hit ? cache_hits_ : cache_misses_)++; }
  void count_cache_error() { cache_errors_++; }
  // Latencies of one finished generation, in seconds.
  void observe_request(double ttft, double tpot, double e2e, bool has_tpot);

  // The exposition, with the engine's gauges and token counters of this moment.
  std::string render(const EngineStats& engine) const;

 private:
  std::array<std::atomic<uint64_t>, static_cast<size_t>(Outcome::Count)> requests_{};
  std::atomic<uint64_t> cache_hits_{0}, cache_misses_{0}, cache_errors_{0};
  Histogram ttft_, tpot_, e2e_;
};

}  // namespace dsinfer
