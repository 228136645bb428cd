// StopMatcher on text arriving in arbitrary pieces.
#include <gtest/gtest.h>

#include "text/stop_matcher.h"

using dsinfer::StopMatcher;

namespace {

// Feeds `pieces`, returns everything emitted (with the flush when no stop matched).
std::string run(StopMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += m.push(p);
  if (!m.stopped()) out += m.flush();
  return out;
}

TEST(StopMatcher, TrimsAtTheStopStringAcrossPieces) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(run(m, {"hello S", "TO", "P and more"}), "hello ");
  EXPECT_TRUE(m.stopped());
}

TEST(StopMatcher, HoldsBackAPossibleStartUntilDecided) {
  StopMatcher m({"</end>"});
  EXPECT_EQ(m.push("abc</e"), "abc");
  EXPECT_EQ(m.push("x"), "</ex");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, EarliestOfSeveralStopsWins) {
  StopMatcher m({"world", "lo w"});
  EXPECT_EQ(run(m, {"hello world"}), "hel");
}

TEST(StopMatcher, FlushReturnsHeldTextWhenGenerationEnds) {
  StopMatcher m({"###"});
  EXPECT_EQ(m.push("end #"), "end ");
  EXPECT_EQ(m.flush(), "#");
}

TEST(StopMatcher, NoStopsPassesEverythingThrough) {
  StopMatcher m({});
  EXPECT_EQ(m.push("abc"), "abc");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, NothingAfterTheStop) {
  StopMatcher m({"x"});
  EXPECT_EQ(m.push("axb"), "a");
  EXPECT_EQ(m.push("more"), "");
  EXPECT_EQ(m.flush(), "");
}

}  // namespace
