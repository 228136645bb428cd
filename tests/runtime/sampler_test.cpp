#include "runtime/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "core/error.h"

using namespace dsinfer;

namespace {

int pick(std::vector<float> logits, const SamplingParams& p, std::mt19937_64& rng,
           const std::vector<int>* generated = nullptr, const std::vector<int>* banned = nullptr) {
  SampleContext ctx;
  ctx.generated = generated;
  ctx.banned = banned;
  return sample_token(logits.data(), static_cast<int>(logits.size()), p, ctx, rng).token;
}

}  // namespace

TEST(Sampler, GreedyPicksTheFirstMaximumAndRespectsBans) {
  std::mt19937_64 rng(1);
  SamplingParams p;
  p.temperature = 0;
  EXPECT_EQ(pick({1, 3, 3, 2}, p, rng), 1);
  std::vector<int> banned = {1, 2};
  EXPECT_EQ(pick({1, 3, 3, 2}, p, rng, nullptr, &banned), 3);
}

TEST(Sampler, TopKAndTopPAndMinPRestrictTheCandidates) {
  std::mt19937_64 rng(7);
  std::vector<float> logits = {2.0f, 1.9f, 0.0f, -1.0f};
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 2;
  for (int i = 0; i < 200; ++i) EXPECT_LT(pick(logits, p, rng), 2);
  p.top_k = 0;
  p.top_p = 0.5f;  // the first token alone has mass ~0.47, so the second is needed too
  for (int i = 0; i < 200; ++i) EXPECT_LT(pick(logits, p, rng), 2);
  p.top_p = 1.0f;
  p.min_p = 0.5f;  // exp(0 - 2) = 0.135 < 0.5: token 2 and 3 are dropped
  for (int i = 0; i < 200; ++i) EXPECT_LT(pick(logits, p, rng), 2);
}

TEST(Sampler, SamplingFollowsTheSoftmaxAndTheSeedMakesItReproducible) {
  std::vector<float> logits = {0.0f, std::log(3.0f)};
  SamplingParams p;
  p.temperature = 1.0f;
  std::mt19937_64 rng(42);
  int ones = 0;
  for (int i = 0; i < 4000; ++i) ones += pick(logits, p, rng);
  EXPECT_NEAR(ones / 4000.0, 0.75, 0.03);
  std::mt19937_64 a(5), b(5);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(pick({0, 0.5f, 1, 0.2f}, p, a), pick({0, 0.5f, 1, 0.2f}, p, b));
}

TEST(Sampler, PenaltiesLowerRepeatedTokens) {
  std::mt19937_64 rng(1);
  SamplingParams p;
  p.temperature = 0;
  std::vector<int> generated = {0, 0};
  p.frequency_penalty = 0.6f;  // 2.0 - 2 * 0.6 = 0.8 < 1.5
  EXPECT_EQ(pick({2.0f, 1.5f}, p, rng, &generated), 1);
  p.frequency_penalty = 0;
  p.repetition_penalty = 2.0f;  // 2.0 / 2 = 1.0 < 1.5
  EXPECT_EQ(pick({2.0f, 1.5f}, p, rng, &generated), 1);
}

TEST(Sampler, LogprobsAreALogSoftmaxWithTheTopAlternatives) {
  std::mt19937_64 rng(1);
  SamplingParams p;
  p.temperature = 0;
  p.top_logprobs = 2;
  std::vector<float> logits = {0.0f, std::log(3.0f), -30.0f};
  SampleResult r = sample_token(logits.data(), 3, p, {}, rng);
  EXPECT_EQ(r.token, 1);
  EXPECT_NEAR(r.logprob, std::log(0.75f), 1e-5);
  ASSERT_EQ(r.top_logprobs.size(), 2u);
  EXPECT_EQ(r.top_logprobs[1].first, 0);
  EXPECT_NEAR(r.top_logprobs[1].second, std::log(0.25f), 1e-5);
}

TEST(Sampler, LogitBiasIsAddedAndNanLogitsAreRefused) {
  std::mt19937_64 rng(1);
  SamplingParams p;
  p.temperature = 0;
  p.logit_bias = {{0, 5.0f}};
  EXPECT_EQ(pick({1, 3, 3, 2}, p, rng), 0);
  p.logit_bias.clear();
  EXPECT_THROW(pick({1, NAN, 3, 2}, p, rng), dsinfer::Error);
}
