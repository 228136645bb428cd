// dsinfer bench: load time, prefill and decode throughput and peak memory of a model on a device.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "backend/copy_bandwidth.h"
#include "cli/command.h"
#include "cli/load_flags.h"
#include "core/error.h"
#include "plan/decode_bytes.h"
#include "runtime/engine.h"
#include "runtime/kv_budget.h"
#include "runtime/loaded_model.h"

namespace dsinfer {
namespace {

struct BenchOptions {
  std::string model;
  LoadOptions load;
  int prompt_len = 128, gen_len = 32;
  std::vector<int> batches{1};  // one decode measurement per size, on one loaded model
  double memory_utilization = 0.9;
  int block_size = 0;  // KV cache slots a block; 0: the model's
  int speculative_tokens = 0;   // > 0: also decode with drafts that are always right
  bool mtp = false;             // the drafts are the MTP layer's instead (at least one a step)
  int mtp_tokens() const { return std::max(1, speculative_tokens); }
};

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::vector<int> synthetic_prompt(int len, int vocab, int salt) {
  std::vector<int> p(len);
  for (int i = 0; i < len; ++i) p[i] = static_cast<int>((1009u * static_cast<unsigned>(i + 1) + 7919u * salt) % (vocab - 2)) + 1;
  return p;
}

// Time of one request's prefill: submit a prompt, stop at its first token.
double time_prefill(Engine& engine, int prompt_len, int vocab) {
  GenerationRequest r;
  r.prompt = synthetic_prompt(prompt_len, vocab, 0);
  r.max_tokens = 1;
  r.ignore_eos = true;
  r.sampling.temperature = 0;
  auto start = Clock::now();
  engine.submit(r, [](const TokenEvent&) { return true; });
  engine.wait_idle();
  return seconds_since(start);
}

// Proposes what each prompt was seen to continue with, so every draft is accepted: the ceiling of
// speculative decoding, what the engine's verification costs with no wrong draft.
class ReplayDrafter final : public Drafter {
 public:
  ReplayDrafter(std::map<std::vector<int>, std::vector<int>> seen, int prompt_len, int max_tokens)
      : seen_(std::move(seen)), prompt_len_(prompt_len), max_tokens_(max_tokens) {}

  std::vector<int> propose(const std::vector<int>& tokens, int max_tokens) const override {
    auto it = seen_.find(std::vector<int>(tokens.begin(), tokens.begin() + std::min<size_t>(tokens.size(), prompt_len_)));
    if (it == seen_.end()) return {};
    const std::vector<int>& out = it->second;
    std::vector<int> d;
    for (size_t p = tokens.size() - prompt_len_; p < out.size() && static_cast<int>(d.size()) < std::min(max_tokens, max_tokens_); ++p)
      d.push_back(out[p]);
    return d;
  }

 private:
  std::map<std::vector<int>, std::vector<int>> seen_;  // prompt -> its greedy output
  size_t prompt_len_;
  int max_tokens_;
};

// Decode throughput at a full batch: the clock runs from the step where the last of `batch`
// sequences got its first token to the first sequence's end, so every step in the window
// decodes all of them. Prompts are admitted one step after another, so each sequence may
// generate up to `batch` more tokens than --gen-len before the window opens, (K + 1) x `batch`
// with K drafts a step (`tokens_per_step`). `outputs`, when given, receives each prompt's tokens.
double decode_tokens_per_s(Engine& engine, int prompt_len, int gen_len, int batch, int vocab,
                           std::map<std::vector<int>, std::vector<int>>* outputs = nullptr, int tokens_per_step = 1) {
  std::mutex mu;
  int first_tokens = 0;
  bool window_closed = false;
  int64_t tokens_in_window = 0;
  Clock::time_point start, end;
  for (int b = 0; b < batch; ++b) {
    GenerationRequest r;
    r.prompt = synthetic_prompt(prompt_len, vocab, b + 1);
    r.max_tokens = gen_len + batch * tokens_per_step;
    r.ignore_eos = true;
    r.sampling.temperature = 0;
    std::vector<int>* out = outputs ? &(*outputs)[r.prompt] : nullptr;
    engine.submit(r, [&, out](const TokenEvent& ev) {
      std::lock_guard<std::mutex> lock(mu);
      if (out && ev.token >= 0) out->push_back(ev.token);
      if (ev.token < 0 || window_closed) return true;
      if (ev.completion_tokens == 1 && ++first_tokens == batch) start = Clock::now();
      else if (first_tokens == batch) ++tokens_in_window;
      if (ev.finished && first_tokens == batch) {
        window_closed = true;
        end = Clock::now();
      }
      return true;
    });
  }
  engine.wait_idle();
  if (!window_closed) end = Clock::now();
  return static_cast<double>(tokens_in_window) / std::chrono::duration<double>(end - start).count();
}

// Decode with drafts that are always right (each prompt's own greedy tokens, recorded above):
// what speculative decoding at K drafts gains at most, its verification steps' cost included.
void bench_speculation_ceiling(LoadedModel& m, const BenchOptions& o, EngineOptions eo, const std::vector<double>& decode,
                               std::vector<std::map<std::vector<int>, std::vector<int>>>& outputs) {
  const int vocab = m.model->config().vocab_size, k = o.speculative_tokens;
  std::printf("\nspeculative decoding, %d drafts a step, every draft right (the ceiling: each prompt's greedy output "
              "replayed as drafts)\n",
              k);
  std::printf("| batch | decode tok/s | with drafts tok/s | speed-up | drafts accepted | preemptions |\n"
              "| --- | --- | --- | --- | --- | --- |\n");
  for (size_t i = 0; i < o.batches.size(); ++i) {
    eo.drafter = std::make_shared<ReplayDrafter>(std::move(outputs[i]), o.prompt_len, k);
    Engine engine(*m.model, *m.backend, eo);
    std::fprintf(stderr, "decode of %d tokens at batch %d with %d drafts...\n", o.gen_len, o.batches[i], k);
    decode_tokens_per_s(engine, o.prompt_len, o.gen_len, o.batches[i], vocab, nullptr, 1 + k);  // warm-up
    const double tps = decode_tokens_per_s(engine, o.prompt_len, o.gen_len, o.batches[i], vocab, nullptr, 1 + k);
    const EngineStats s = engine.stats();
    std::printf("| %d | %.1f | %.1f | %.2fx | %lld of %lld | %lld |\n", o.batches[i], decode[i], tps, tps / decode[i],
                static_cast<long long>(s.accepted_draft_tokens), static_cast<long long>(s.draft_tokens),
                static_cast<long long>(s.preemptions));
  }
}

// Each draft position's acceptance between two snapshots of an engine's stats: "80 / 41 %".
std::string by_position(const EngineStats& before, const EngineStats& after) {
  std::string out;
  for (size_t p = 0; p < after.drafted_at.size(); ++p) {
    const int64_t drafted = after.drafted_at[p] - (p < before.drafted_at.size() ? before.drafted_at[p] : 0);
    const int64_t accepted = after.accepted_at[p] - (p < before.accepted_at.size() ? before.accepted_at[p] : 0);
    out += cat(p ? " / " : "", drafted > 0 ? static_cast<int>(100.0 * accepted / drafted + 0.5) : 0);
  }
  return out.empty() ? "-" : out + " %";
}

// Decode with the model's MTP layer drafting K tokens a step: its real drafts, so the speed-up is
// the checkpoint's (random weights draft almost nothing right, which leaves the cost of the MTP
// passes and of the wider steps). With one draft a step, a step that keeps it makes two tokens for
// about the cost of one that does not, so the rate at acceptance a is about the measured one
// x (1 + a) / (1 + the measured acceptance): the estimate at DeepSeek's reported rate.
void bench_mtp(LoadedModel& m, const BenchOptions& o, EngineOptions eo, const std::vector<double>& decode) {
  const int vocab = m.model->config().vocab_size, k = o.mtp_tokens();
  constexpr double kReported = 0.85;  // DeepSeek-V3 report: 85-90 % of the second tokens accepted
  std::printf("\nspeculative decoding with the model's multi-token-prediction layer, %d draft%s a step\n", k,
              k > 1 ? "s" : "");
  std::printf("| batch | decode tok/s | with MTP drafts tok/s | speed-up | drafts accepted | by position | at %.0f %% "
              "accepted tok/s (estimate, one draft) |\n| --- | --- | --- | --- | --- | --- | --- |\n",
              100 * kReported);
  eo.mtp_drafts = k;
  for (size_t i = 0; i < o.batches.size(); ++i) {
    Engine engine(*m.model, *m.backend, eo);
    std::fprintf(stderr, "decode of %d tokens at batch %d with MTP drafts...\n", o.gen_len, o.batches[i]);
    decode_tokens_per_s(engine, o.prompt_len, o.gen_len, o.batches[i], vocab, nullptr, 1 + k);  // warm-up
    const EngineStats before = engine.stats();
    const double tps = decode_tokens_per_s(engine, o.prompt_len, o.gen_len, o.batches[i], vocab, nullptr, 1 + k);
    const EngineStats s = engine.stats();
    const int64_t drafted = s.draft_tokens - before.draft_tokens;
    const int64_t accepted = s.accepted_draft_tokens - before.accepted_draft_tokens;
    const double rate = drafted > 0 ? static_cast<double>(accepted) / drafted : 0.0;
    const std::string estimate = k == 1 ? cat(tps * (1 + kReported) / (1 + rate)) : "-";
    std::printf("| %d | %.1f | %.1f | %.2fx | %lld of %lld | %s | %s |\n", o.batches[i], decode[i], tps, tps / decode[i],
                static_cast<long long>(accepted), static_cast<long long>(drafted), by_position(before, s).c_str(),
                estimate.c_str());
  }
}

void run_bench(const BenchOptions& o) {
  std::fprintf(stderr, "loading %s on %s...\n", o.model.c_str(), o.load.device.c_str());
  LoadOptions load = o.load;
  load.model.mtp = o.mtp;
  LoadedModel m = load_for_generation(o.model, load);
  const int vocab = m.model->config().vocab_size;
  const int max_batch = *std::max_element(o.batches.begin(), o.batches.end());
  EngineOptions eo;
  eo.cuda_graphs = !o.load.enforce_eager;
  eo.block_size = cache_block_size(o.block_size, *m.model);  // the room below is counted in its blocks
  // Room for every sequence at its longest (the lead before the window included), so no
  // measurement is slowed by preemption.
  const int64_t lead = static_cast<int64_t>(max_batch) * (1 + (o.mtp ? o.mtp_tokens() : o.speculative_tokens));
  eo.kv_cache_tokens = static_cast<int64_t>(max_batch + 1) * (o.prompt_len + o.gen_len + lead + eo.block_size);
  eo.max_running = max_batch;
  eo.max_batched_tokens = std::max(o.prompt_len, 512);
  eo.prefix_caching = false;  // every prompt is computed in full
  std::optional<Engine> plain_engine(std::in_place, *m.model, *m.backend, eo);
  Engine& engine = *plain_engine;
  // Warm-up: a prefill at full length and a short decode at each batch size, so first-use costs
  // (GEMM plans, scratch growth, re-recorded decode graphs) stay out of the figures.
  std::fprintf(stderr, "warming up...\n");
  time_prefill(engine, o.prompt_len, vocab);
  for (int batch : o.batches) decode_tokens_per_s(engine, std::min(o.prompt_len, 16), 2, batch, vocab);
  std::fprintf(stderr, "prefill of %d tokens (median of 3)...\n", o.prompt_len);
  std::vector<double> prefills;
  for (int i = 0; i < 3; ++i) prefills.push_back(time_prefill(engine, o.prompt_len, vocab));
  std::sort(prefills.begin(), prefills.end());
  const double prefill_s = prefills[1];
  std::vector<double> decode;
  std::vector<std::map<std::vector<int>, std::vector<int>>> outputs(o.batches.size());
  for (size_t i = 0; i < o.batches.size(); ++i) {
    std::fprintf(stderr, "decode of %d tokens at batch %d...\n", o.gen_len, o.batches[i]);
    // Long enough for the drafting run's lead too, whose drafts are these outputs.
    decode.push_back(decode_tokens_per_s(engine, o.prompt_len, o.gen_len, o.batches[i], vocab, &outputs[i],
                                         1 + (o.mtp ? o.mtp_tokens() : o.speculative_tokens)));
  }
  plain_engine.reset();  // its cache's memory goes back before any other engine starts
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);  // before the copy's buffers
  std::fprintf(stderr, "copy bandwidth...\n");
  const double copy = measure_copy_bandwidth(*m.backend);
  std::printf("copy bandwidth %.0f GB/s (device to device through the backend, read + written); roofline = the "
              "bytes a decode step reads on a device (weights its tokens touch + KV cache, as dsinfer plan counts "
              "them) / it\n",
              copy / 1e9);
  KvBudget kv = plan_kv_cache(*m.model, *m.backend, o.memory_utilization, eo.max_batched_tokens, eo.max_running,
                              eo.block_size);
  std::printf("KV capacity at memory utilization %.2f: %lld tokens in blocks of %d (%s)\n", o.memory_utilization,
              static_cast<long long>(kv.tokens), eo.block_size, kv.derivation.c_str());
  std::printf(
      "| model | device | load s | prefill tok/s (%d) | batch | decode tok/s | ms per step | peak RSS MiB | roofline ms | "
      "of roofline |\n",
      o.prompt_len);
  std::printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
  const plan::Layout layout = m.model->layout();
  const std::string device = layout.tp > 1 ? cat(o.load.device, " x", layout.tp, layout.ep > 1 ? " (experts whole)" : "")
                                           : o.load.device;
  // Bytes a cached value takes: the cache's dtype, or an FP8 latent row's bytes over its values.
  const KvCacheSpec spec = m.model->kv_spec();
  const ModelConfig& c = m.model->config();
  const double kv_value_bytes = spec.dtype == DType::U8
                                    ? static_cast<double>(spec.k_width) / (c.kv_lora_rank + c.qk_rope_head_dim)
                                    : static_cast<double>(dtype_size(spec.dtype));
  for (size_t i = 0; i < o.batches.size(); ++i) {
    const double step_ms = 1e3 * o.batches[i] / decode[i];
    // The window's mean context: the prompt and about half of each sequence's generated tokens.
    const int64_t context = o.prompt_len + (o.gen_len + o.batches[i]) / 2;
    const double roofline_ms =
        1e3 * plan::decode_step_bytes(c, o.batches[i], context, kv_value_bytes, layout) / copy;
    std::printf("| %s | %s | %.3f | %.1f | %d | %.1f | %.3f | %.0f | %.3f | %.0f %% |\n",
                m.model->config().architecture.c_str(), device.c_str(), m.load_seconds, o.prompt_len / prefill_s,
                o.batches[i], decode[i], step_ms, ru.ru_maxrss / 1024.0, roofline_ms, 100.0 * roofline_ms / step_ms);
  }
  if (o.mtp) bench_mtp(m, o, eo, decode);
  else if (o.speculative_tokens > 0) bench_speculation_ceiling(m, o, eo, decode, outputs);
}

CommandRegistration reg({"bench", "Measure load time, prefill and decode throughput, and peak memory",
                         [](CLI::App& app) {
                           auto o = std::make_shared<BenchOptions>();
                           app.add_option("--model", o->model, "Hugging Face model directory")->required();
                           add_load_flags(app, o->load, true);
                           app.add_option("--prompt-len", o->prompt_len, "Prompt tokens")->check(CLI::Range(1, INT_MAX));
                           app.add_option("--gen-len", o->gen_len, "Generated tokens per sequence")
                               ->check(CLI::Range(2, 1 << 20));
                           add_block_size_flag(app, o->block_size);
                           app.add_option("--gpu-memory-utilization", o->memory_utilization,
                                          "Share of device memory for the KV-capacity line (as dsinfer plan --mem-util)");
                           app.add_option("--batch", o->batches,
                                          "Concurrent sequences in decode; several (--batch 1,32,128) measure each "
                                          "on the same loaded model")
                               ->delimiter(',')
                               ->check(CLI::Range(1, 1 << 16));
                           app.add_option("--num-speculative-tokens", o->speculative_tokens,
                                          "Also decode with K drafts a step that are always right (each prompt's "
                                          "greedy output replayed): speculative decoding's ceiling")
                               ->check(CLI::Range(0, 64));
                           app.add_option_function<std::string>(
                                  "--speculative-method",
                                  [o](const std::string& m) {
                                    if (m != "mtp") fail("bench --speculative-method: only mtp (got '", m, "')");
                                    o->mtp = true;
                                  },
                                  "mtp: decode again with the model's multi-token-prediction layer drafting "
                                  "--num-speculative-tokens (at least 1) a step, instead of the ceiling "
                                  "(DeepSeek-V3 / R1)");
                           app.callback([o] { run_bench(*o); });
                         }});

}  // namespace
}  // namespace dsinfer
