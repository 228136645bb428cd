// The copy bandwidth `dsinfer bench` divides its decode bytes by, measured through the CPU
// reference backend: a finite rate within what a memory system can do.
#include <gtest/gtest.h>

#include <cmath>

#include "backend/copy_bandwidth.h"

using namespace dsinfer;

TEST(CopyBandwidth, CpuBackendMeasuresAFiniteRate) {
  auto cpu = make_cpu_backend();
  const double bw = measure_copy_bandwidth(*cpu);
  EXPECT_TRUE(std::isfinite(bw));
  EXPECT_GT(bw, 0.5e9);   // slower than any machine this runs on
  EXPECT_LT(bw, 10e12);   // faster than any CPU's memory
}
