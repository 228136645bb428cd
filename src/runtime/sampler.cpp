#include "runtime/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

#include "core/error.h"

namespace dsinfer {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

void apply_penalties(float* logits, const SamplingParams& p, const SampleContext& ctx) {
  if (p.repetition_penalty != 1.0f) {  // HF: over prompt and output, each token once
    std::vector<int> seen;
    if (ctx.prompt) seen.insert(seen.end(), ctx.prompt->begin(), ctx.prompt->end());
    if (ctx.generated) seen.insert(seen.end(), ctx.generated->begin(), ctx.generated->end());
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    for (int t : seen) logits[t] = logits[t] > 0 ? logits[t] / p.repetition_penalty : logits[t] * p.repetition_penalty;
  }
  if ((p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) && ctx.generated) {  // OpenAI: output only
    std::unordered_map<int, int> counts;
    for (int t : *ctx.generated) ++counts[t];
    for (auto [t, n] : counts) logits[t] -= p.presence_penalty + p.frequency_penalty * static_cast<float>(n);
  }
  for (auto [t, bias] : p.logit_bias) logits[t] += bias;
  if (ctx.banned)
    for (int t : *ctx.banned) logits[t] = kNegInf;
}

int argmax(const float* logits, int vocab) {
  return static_cast<int>(std::max_element(logits, logits + vocab) - logits);  // first on ties, as torch
}

float log_sum_exp(const float* x, int n) {
  float mx = *std::max_element(x, x + n);
  if (mx == kNegInf) return kNegInf;
  double s = 0;
  for (int i = 0; i < n; ++i) s += std::exp(static_cast<double>(x[i] - mx));
  return mx + static_cast<float>(std::log(s));
}

void fill_logprobs(const float* logits, int vocab, int top_n, SampleResult& r) {
  const float lse = log_sum_exp(logits, vocab);
  r.logprob = logits[r.token] - lse;
  if (top_n <= 0) return;
  std::vector<int> idx(vocab);
  std::iota(idx.begin(), idx.end(), 0);
  top_n = std::min(top_n, vocab);
  std::partial_sort(idx.begin(), idx.begin() + top_n, idx.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  for (int i = 0; i < top_n; ++i) r.top_logprobs.emplace_back(idx[i], logits[idx[i]] - lse);
}

}  // namespace

SampleResult token_logprob(const float* logits, int vocab, int token, int top_n) {
  SampleResult r;
  r.token = token;
  fill_logprobs(logits, vocab, top_n, r);
  r.rank = 1 + static_cast<int>(std::count_if(logits, logits + vocab, [&](float x) { return x > logits[token]; }));
  return r;
}

namespace {

// Candidates (id, prob) after temperature, top-k, top-p and min-p, sorted by probability.
std::vector<std::pair<int, float>> filtered_candidates(const float* logits, int vocab, const SamplingParams& p) {
  std::vector<int> idx(vocab);
  std::iota(idx.begin(), idx.end(), 0);
  int k = p.top_k > 0 ? std::min(p.top_k, vocab) : vocab;
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) { return logits[a] > logits[b]; });
  idx.resize(k);
  const float mx = logits[idx[0]];
  std::vector<std::pair<int, float>> c;
  double sum = 0;
  for (int i : idx) {
    float e = std::exp((logits[i] - mx) / p.temperature);
    c.emplace_back(i, e);
    sum += e;
  }
  for (auto& x : c) x.second = static_cast<float>(x.second / sum);
  if (p.min_p > 0.0f) {
    const float floor = p.min_p * c.front().second;
    while (c.size() > 1 && c.back().second < floor) c.pop_back();
  }
  if (p.top_p < 1.0f) {  // keep the smallest prefix whose mass reaches top_p
    double mass = 0;
    size_t keep = 0;
    while (keep < c.size() && mass < p.top_p) mass += c[keep++].second;
    c.resize(std::max<size_t>(keep, 1));
  }
  return c;
}

}  // namespace

SampleResult sample_token(float* logits, int vocab, const SamplingParams& p, const SampleContext& ctx,
                          std::mt19937_64& rng) {
  // A NaN would be sampled as whatever a comparison makes of it: broken weights or an overflow
  // must fail the request, not hand it token 0.
  for (int i = 0; i < vocab; ++i)
    if (std::isnan(logits[i])) fail("the model's logits hold NaN (at vocabulary entry ", i, "): broken weights or an overflow");
  apply_penalties(logits, p, ctx);
  SampleResult r;
  if (p.greedy()) {
    r.token = argmax(logits, vocab);
  } else {
    auto c = filtered_candidates(logits, vocab, p);
    double total = 0;
    for (auto& x : c) total += x.second;
    double u = std::uniform_real_distribution<double>(0.0, total)(rng);
    r.token = c.back().first;
    for (auto& x : c) {
      if (u < x.second) {
        r.token = x.first;
        break;
      }
      u -= x.second;
    }
  }
  if (p.top_logprobs >= 0) fill_logprobs(logits, vocab, p.top_logprobs, r);
  return r;
}

}  // namespace dsinfer
