#include "server/metrics.h"

#include <cstdio>

namespace dsinfer {
namespace {

std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void header(std::string& out, const std::string& name, const char* type, const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void scalar(std::string& out, const std::string& name, const char* type, const std::string& help, double v) {
  header(out, name, type, help);
  out += name + " " + number(v) + "\n";
}

}  // namespace

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::Success: return "success";
    case Outcome::Cached: return "cached";
    case Outcome::Invalid: return "invalid";
    case Outcome::Unauthorized: return "unauthorized";
    case Outcome::Rejected: return "rejected";
    case Outcome::Unavailable: return "unavailable";
    case Outcome::Timeout: return "timeout";
    case Outcome::Cancelled: return "cancelled";
    case Outcome::Error: return "error";
    case Outcome::Count: break;
  }
  return "unknown";
}

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  std::lock_guard lock(mutex_);
  counts_[i]++;
  sum_ += value;
  count_++;
}

void Histogram::render(const std::string& name, const std::string& help, std::string& out) const {
  std::lock_guard lock(mutex_);
  header(out, name, "histogram", help);
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    std::string le = i < bounds_.size() ? number(bounds_[i]) : "+Inf";
    out += name + "_bucket{le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_sum " + number(sum_) + "\n" + name + "_count " + std::to_string(count_) + "\n";
}

// Buckets reach down to a millisecond: tiny models on a CPU produce tokens that fast, and the
// same buckets still resolve a large model's seconds.
Metrics::Metrics()
    : ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80}),
      tpot_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5}),
      e2e_({0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120}) {}

void Metrics::observe_request(double ttft, double tpot, double e2e, bool has_tpot) {
  ttft_.observe(ttft);
  if (has_tpot) tpot_.observe(tpot);
  e2e_.observe(e2e);
}

std::string Metrics::render(const EngineStats& s) const {
  std::string out;
  header(out, "dsinfer_requests_total", "counter", "Completion requests by outcome.");
  for (size_t i = 0; i < requests_.size(); ++i)
    out += std::string("dsinfer_requests_total{outcome=\"") + outcome_name(static_cast<Outcome>(i)) + "\"} " +
           std::to_string(requests_[i].load()) + "\n";
  scalar(out, "dsinfer_num_requests_running", "gauge", "Sequences in the running batch.", s.running);
  scalar(out, "dsinfer_num_requests_waiting", "gauge", "Sequences queued for the running batch.", s.waiting);
  scalar(out, "dsinfer_kv_cache_blocks_used", "gauge", "KV cache blocks held by sequences.", s.kv_blocks_used);
  scalar(out, "dsinfer_kv_cache_blocks_total", "gauge", "KV cache blocks in all.", s.kv_blocks_total);
  double hit_rate = s.prefix_cache_queries > 0 ? double(s.prefix_cache_hits) / double(s.prefix_cache_queries) : 0.0;
  scalar(out, "dsinfer_prefix_cache_hit_rate", "gauge", "Prompt tokens served from the prefix cache / prompt tokens looked up.", hit_rate);
  scalar(out, "dsinfer_prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.", double(s.prefix_cache_queries));
  scalar(out, "dsinfer_prefix_cache_hits_total", "counter", "Prompt tokens found in the prefix cache.", double(s.prefix_cache_hits));
  scalar(out, "dsinfer_prompt_tokens_total", "counter", "Prompt tokens processed.", double(s.prompt_tokens));
  scalar(out, "dsinfer_generation_tokens_total", "counter", "Tokens generated.", double(s.generated_tokens));
  scalar(out, "dsinfer_preemptions_total", "counter", "Sequences preempted for KV cache space.", double(s.preemptions));
  scalar(out, "dsinfer_spec_decode_draft_tokens_total", "counter", "Tokens drafted for speculative decoding.", double(s.draft_tokens));
  scalar(out, "dsinfer_spec_decode_accepted_tokens_total", "counter", "Drafted tokens the model's sampling accepted.",
         double(s.accepted_draft_tokens));
  header(out, "dsinfer_spec_decode_draft_tokens_per_position_total", "counter",
         "Tokens drafted at each position of a step's drafts (1: the first).");
  for (size_t p = 0; p < s.drafted_at.size(); ++p)
    out += cat("dsinfer_spec_decode_draft_tokens_per_position_total{position=\"", p + 1, "\"} ", s.drafted_at[p], "\n");
  header(out, "dsinfer_spec_decode_accepted_tokens_per_position_total", "counter",
         "Drafted tokens accepted at each position of a step's drafts (1: the first).");
  for (size_t p = 0; p < s.accepted_at.size(); ++p)
    out += cat("dsinfer_spec_decode_accepted_tokens_per_position_total{position=\"", p + 1, "\"} ", s.accepted_at[p],
               "\n");
  scalar(out, "dsinfer_response_cache_hits_total", "counter", "Requests answered from the response cache.", double(cache_hits_.load()));
  scalar(out, "dsinfer_response_cache_misses_total", "counter", "Cacheable requests not found in the response cache.", double(cache_misses_.load()));
  scalar(out, "dsinfer_response_cache_errors_total", "counter", "Response cache operations that failed (the request was served without it).", double(cache_errors_.load()));
  ttft_.render("dsinfer_time_to_first_token_seconds", "Time from arrival to the first generated token.", out);
  tpot_.render("dsinfer_time_per_output_token_seconds", "Mean time per output token after the first, per request.", out);
  e2e_.render("dsinfer_e2e_request_latency_seconds", "Time from arrival to the last token.", out);
  return out;
}

}  // namespace dsinfer
