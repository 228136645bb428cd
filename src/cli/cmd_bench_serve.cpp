// dsinfer bench-serve: a serving benchmark in the convention of vLLM's benchmark_serving. It
// sends random prompts of a given length to a running server's /v1/completions (streaming,
// ignore_eos so every request generates exactly --output-len tokens), at a Poisson request
// rate or a fixed concurrency, and reports throughput and TTFT / TPOT / ITL percentiles.
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <thread>

#include "cli/command.h"
#include "core/error.h"

namespace dsinfer {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct BenchOptions {
  std::string url = "http://127.0.0.1:8000";
  std::string model;  // empty: the server's only model
  std::string api_key;
  int num_prompts = 100;
  double request_rate = std::numeric_limits<double>::infinity();
  int concurrency = 0;  // 0: unlimited
  int input_len = 128, output_len = 128;
  int vocab_size = 1000;
  uint64_t seed = 0;
};

struct RequestStats {
  bool ok = false;
  std::string error;
  int prompt_tokens = 0, output_tokens = 0;
  double ttft = 0, latency = 0;
  std::vector<double> itl;  // gaps between streamed chunks after the first
};

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

httplib::Client make_client(const BenchOptions& o) {
  httplib::Client c(o.url);
  c.set_read_timeout(3600, 0);
  c.set_connection_timeout(10, 0);
  if (!o.api_key.empty()) c.set_bearer_token_auth(o.api_key);
  return c;
}

std::string served_model(const BenchOptions& o) {
  auto res = make_client(o).Get("/v1/models");
  if (!res) fail("cannot reach ", o.url, ": ", httplib::to_string(res.error()));
  if (res->status != 200) fail("GET /v1/models: HTTP ", res->status, " ", res->body);
  return json::parse(res->body).at("data").at(0).at("id").get<std::string>();
}

// One streamed request; the SSE chunks are parsed as they arrive to time each one.
RequestStats run_request(const BenchOptions& o, const std::string& model, const std::vector<int>& prompt) {
  RequestStats st;
  json body = {{"model", model}, {"prompt", prompt}, {"max_tokens", o.output_len}, {"temperature", 0},
               {"ignore_eos", true}, {"stream", true}, {"stream_options", {{"include_usage", true}}},
               {"return_token_ids", true}};
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  std::string buffer;
  bool first = true;
  Clock::time_point start = Clock::now(), last;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    buffer.append(data, n);
    size_t end;
    while ((end = buffer.find("\n\n")) != std::string::npos) {
      std::string event = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      if (event.rfind("data: ", 0) != 0 || event == "data: [DONE]") continue;
      json chunk = json::parse(event.substr(6), nullptr, false);
      if (chunk.is_discarded()) continue;
      if (chunk.contains("error")) st.error = chunk["error"].value("message", "error");
      if (chunk.contains("usage") && chunk["usage"].is_object()) {
        st.prompt_tokens = chunk["usage"]["prompt_tokens"];
        st.output_tokens = chunk["usage"]["completion_tokens"];
      }
      if (!chunk.contains("choices") || chunk["choices"].empty() || chunk["choices"][0]["token_ids"].empty()) continue;
      auto now = Clock::now();
      if (first) {
        st.ttft = std::chrono::duration<double>(now - start).count();
        first = false;
      } else {
        st.itl.push_back(std::chrono::duration<double>(now - last).count());
      }
      last = now;
    }
    return true;
  };
  httplib::Client client = make_client(o);
  httplib::Result res = client.send(req);
  st.latency = seconds_since(start);
  if (!res) st.error = httplib::to_string(res.error());
  else if (res->status != 200) st.error = "HTTP " + std::to_string(res->status);
  st.ok = st.error.empty() && !first && st.output_tokens > 0;
  if (!st.ok && st.error.empty()) st.error = "no tokens streamed";
  return st;
}

// Limits requests in flight (--concurrency).
class Slots {
 public:
  explicit Slots(int n) : free_(n) {}
  void acquire() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return free_ > 0; });
    free_--;
  }
  void release() {
    std::lock_guard lock(mutex_);
    free_++;
    cv_.notify_one();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int free_;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  double rank = p / 100.0 * (v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(rank)), hi = static_cast<size_t>(std::ceil(rank));
  return v[lo] + (v[hi] - v[lo]) * (rank - lo);
}

double mean(const std::vector<double>& v) { return v.empty() ? 0 : std::accumulate(v.begin(), v.end(), 0.0) / v.size(); }

void line(const char* name, double value, const char* fmt = "%.2f") {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, value);
  std::printf("%-40s %s\n", name, buf);
}

void latency_block(const char* title, const char* metric, const std::vector<double>& seconds) {
  std::printf("%s\n", title);
  std::vector<double> ms;
  for (double s : seconds) ms.push_back(s * 1000.0);
  for (auto [label, value] : std::vector<std::pair<std::string, double>>{{"Mean", mean(ms)},
                                                                         {"Median", percentile(ms, 50)},
                                                                         {"P90", percentile(ms, 90)},
                                                                         {"P99", percentile(ms, 99)}})
    line((label + " " + metric + " (ms):").c_str(), value);
}

void report(const BenchOptions& o, const std::vector<RequestStats>& all, double duration) {
  std::vector<double> ttft, tpot, itl, e2e;
  int ok = 0;
  int64_t in_tokens = 0, out_tokens = 0;
  std::string first_error;
  for (const auto& s : all) {
    if (!s.ok) {
      if (first_error.empty()) first_error = s.error;
      continue;
    }
    ok++;
    in_tokens += s.prompt_tokens;
    out_tokens += s.output_tokens;
    ttft.push_back(s.ttft);
    e2e.push_back(s.latency);
    if (s.output_tokens > 1) tpot.push_back((s.latency - s.ttft) / (s.output_tokens - 1));
    itl.insert(itl.end(), s.itl.begin(), s.itl.end());
  }
  std::printf("============ Serving Benchmark Result ============\n");
  line("Successful requests:", ok, "%.0f");
  line("Failed requests:", static_cast<double>(all.size() - ok), "%.0f");
  line("Request rate (req/s):", o.request_rate, "%.2f");
  line("Max concurrency:", o.concurrency > 0 ? o.concurrency : o.num_prompts, "%.0f");
  line("Benchmark duration (s):", duration);
  line("Total input tokens:", static_cast<double>(in_tokens), "%.0f");
  line("Total generated tokens:", static_cast<double>(out_tokens), "%.0f");
  line("Request throughput (req/s):", ok / duration);
  line("Output token throughput (tok/s):", out_tokens / duration);
  line("Total token throughput (tok/s):", (in_tokens + out_tokens) / duration);
  latency_block("---------------Time to First Token----------------", "TTFT", ttft);
  latency_block("-----Time per Output Token (excl. 1st token)------", "TPOT", tpot);
  latency_block("---------------Inter-token Latency----------------", "ITL", itl);
  latency_block("----------------End-to-end Latency----------------", "E2EL", e2e);
  std::printf("==================================================\n");
  if (!first_error.empty()) std::printf("first error: %s\n", first_error.c_str());
}

void run_bench(const BenchOptions& o) {
  if (o.num_prompts < 1 || o.input_len < 1 || o.output_len < 1 || o.vocab_size < 1)
    fail("--num-prompts, --input-len, --output-len and --vocab-size must be positive");
  if (!(o.request_rate > 0)) fail("--request-rate must be positive (inf: all at once)");
  std::string model = o.model.empty() ? served_model(o) : o.model;
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int> token(0, o.vocab_size - 1);
  std::vector<std::vector<int>> prompts(o.num_prompts);
  for (auto& p : prompts)
    for (int i = 0; i < o.input_len; ++i) p.push_back(token(rng));
  std::exponential_distribution<double> gap(std::isinf(o.request_rate) ? 1.0 : o.request_rate);

  std::printf("bench-serve: %d prompts of %d tokens -> %d tokens, model '%s' at %s\n", o.num_prompts, o.input_len,
              o.output_len, model.c_str(), o.url.c_str());
  std::vector<RequestStats> stats(o.num_prompts);
  Slots slots(o.concurrency > 0 ? o.concurrency : o.num_prompts);
  std::vector<std::thread> threads;
  Clock::time_point start = Clock::now(), next = start;
  for (int i = 0; i < o.num_prompts; ++i) {
    // Poisson arrivals: exponential gaps at the request rate (none at rate inf).
    if (!std::isinf(o.request_rate)) {
      std::this_thread::sleep_until(next);
      next += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap(rng)));
    }
    slots.acquire();
    threads.emplace_back([&, i] {
      stats[i] = run_request(o, model, prompts[i]);
      slots.release();
    });
  }
  for (auto& t : threads) t.join();
  report(o, stats, seconds_since(start));
}

CommandRegistration reg({"bench-serve", "Benchmark a running server (vLLM benchmark_serving style)", [](CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  app.add_option("--url", o->url, "Server base URL")->capture_default_str();
  app.add_option("--model", o->model, "Model name (default: the server's)");
  app.add_option("--api-key", o->api_key, "Bearer token for the server");
  app.add_option("--num-prompts", o->num_prompts, "Requests to send")->capture_default_str();
  app.add_option("--request-rate", o->request_rate, "Poisson arrival rate in requests/s (inf: all at once)")
      ->capture_default_str();
  app.add_option("--concurrency", o->concurrency, "Most requests in flight (0: unlimited)")->capture_default_str();
  app.add_option("--input-len", o->input_len, "Prompt tokens per request")->capture_default_str();
  app.add_option("--output-len", o->output_len, "Generated tokens per request")->capture_default_str();
  app.add_option("--vocab-size", o->vocab_size, "Random prompt ids are drawn from [0, this)")->capture_default_str();
  app.add_option("--seed", o->seed, "Seed of the random prompts and arrivals")->capture_default_str();
  app.callback([o] { run_bench(*o); });
}});

}  // namespace
}  // namespace dsinfer
