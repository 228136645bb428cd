// Progress: a line per step once its interval has passed, none before.
#include <gtest/gtest.h>

#include "core/progress.h"

using namespace dsinfer;

TEST(Progress, QuietWithinItsIntervalThenOneLinePerStep) {
  ::testing::internal::CaptureStderr();
  Progress slow("loading layers", 61, 3600.0);
  for (int i = 1; i <= 61; ++i) slow.step(i, "detail");
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  ::testing::internal::CaptureStderr();
  Progress every("loading layers", 61, 0.0);
  every.step(12, "3072 MiB of weights");
  every.step(13);
  const std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(out.find("loading layers: 12 of 61 (3072 MiB of weights), 0 s"), std::string::npos) << out;
  EXPECT_NE(out.find("loading layers: 13 of 61, 0 s"), std::string::npos) << out;
}
