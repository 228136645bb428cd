// TokenMaskCache: a cached state gives back exactly the flags put for it, an equal state reached
// another way finds them, other states miss, and the oldest entry goes once the cache is full.
#include "runtime/token_mask_cache.h"

#include <gtest/gtest.h>

#include "text/json_schema_grammar.h"

using namespace dsinfer;

namespace {

GrammarState state_after(const Grammar& g, const char* text) {
  GrammarState s(g);
  EXPECT_TRUE(s.accept(text)) << text;
  return s;
}

std::vector<char> flags(size_t n, size_t every) {
  std::vector<char> f(n, 0);
  for (size_t i = 0; i < n; i += every) f[i] = 1;
  return f;
}

}  // namespace

TEST(TokenMaskCache, FindsWhatWasPutForAnEqualState) {
  const Grammar g = json_object_grammar();
  TokenMaskCache cache(4);
  const std::vector<char> put = flags(1000, 7);  // not a multiple of 64: a partial last word
  cache.put(state_after(g, R"({"key": "ab)"), put);
  std::vector<char> got(1000, 0);
  ASSERT_TRUE(cache.find(state_after(g, R"({"key": "abcd)"), got));  // the same in-string state
  EXPECT_EQ(got, put);
  std::vector<char> none(1000, 0);
  EXPECT_FALSE(cache.find(state_after(g, R"({"key": [1)"), none));
  EXPECT_EQ(none, std::vector<char>(1000, 0));
}

TEST(TokenMaskCache, TheOldestEntryGoesWhenFull) {
  const Grammar g = json_object_grammar();
  const char* texts[] = {R"({"ke)", R"({"key": [1)", R"({"key": "x)", R"({"key": tr)"};
  TokenMaskCache cache(3);
  for (int i = 0; i < 4; ++i) cache.put(state_after(g, texts[i]), flags(100, static_cast<size_t>(i) + 2));
  std::vector<char> got(100, 0);
  EXPECT_FALSE(cache.find(state_after(g, texts[0]), got));
  for (int i = 1; i < 4; ++i) {
    std::vector<char> hit(100, 0);
    ASSERT_TRUE(cache.find(state_after(g, texts[i]), hit)) << texts[i];
    EXPECT_EQ(hit, flags(100, static_cast<size_t>(i) + 2)) << texts[i];
  }
}
