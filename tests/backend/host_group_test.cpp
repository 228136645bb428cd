// The CPU tensor-parallel group: all-reduce across host threads, its errors and abort.
#include <gtest/gtest.h>

#include <thread>

#include "backend/backend.h"
#include "backend/cpu/host_group.h"
#include "core/error.h"

using namespace dsinfer;

TEST(HostGroup, EveryRankEndsWithTheSameSumOverRepeatedCalls) {
  constexpr int kRanks = 3, kValues = 1001;  // not a multiple of the ranks: uneven shares
  HostGroup group(kRanks);
  std::vector<std::vector<float>> data(kRanks, std::vector<float>(kValues));
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r)
    threads.emplace_back([&, r] {
      for (int round = 0; round < 20; ++round) {
        for (int i = 0; i < kValues; ++i) data[r][i] = static_cast<float>((r + 1) * i + round);
        group.all_reduce_sum(r, data[r].data(), kValues);
        for (int i = 0; i < kValues; ++i)
          ASSERT_EQ(data[r][i], static_cast<float>(6 * i + 3 * round)) << "rank " << r << " round " << round;
      }
    });
  for (auto& t : threads) t.join();
}

TEST(HostGroup, AllGatherConcatenatesThePartsInRankOrder) {
  constexpr int kRanks = 3;
  HostGroup group(kRanks);
  std::vector<std::vector<float>> out(kRanks, std::vector<float>(2 * kRanks));
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r)
    threads.emplace_back([&, r] {
      const float part[2] = {10.0f * r, 10.0f * r + 1};
      group.all_gather(r, part, 2, out[r].data());
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < kRanks; ++r) EXPECT_EQ(out[r], (std::vector<float>{0, 1, 10, 11, 20, 21})) << "rank " << r;
}

TEST(HostGroup, RanksOfDifferentLengthsAllFail) {
  HostGroup group(2);
  std::vector<float> a(4), b(5);
  int failures = 0;
  std::mutex mu;
  auto call = [&](int r, std::vector<float>& v) {
    try {
      group.all_reduce_sum(r, v.data(), static_cast<int64_t>(v.size()));
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("values"), std::string::npos) << e.what();
      std::lock_guard lock(mu);
      ++failures;
    }
  };
  std::thread t([&] { call(1, b); });
  call(0, a);
  t.join();
  EXPECT_EQ(failures, 2);
}

TEST(HostGroup, AbortReleasesARankWaitingForAnotherAndLaterCallsFail) {
  HostGroup group(2);
  std::vector<float> v(8, 1.0f);
  std::thread waiting([&] { EXPECT_THROW(group.all_reduce_sum(0, v.data(), 8), Error); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  group.abort();
  waiting.join();
  EXPECT_THROW(group.all_reduce_sum(1, v.data(), 8), Error);
}

TEST(BackendGroup, CpuGroupSumsTensorsAndALoneBackendLeavesThem) {
  auto ranks = make_backend_group(Device{}, 2);
  ASSERT_EQ(ranks.size(), 2u);
  std::vector<float> x0 = {1, 2, 3}, x1 = {10, 20, 30};
  Tensor t0{DType::F32, {3}, x0.data(), Device{}}, t1{DType::F32, {3}, x1.data(), Device{}};
  std::thread t([&] { ranks[1]->all_reduce_sum(t1); });
  ranks[0]->all_reduce_sum(t0);
  t.join();
  EXPECT_EQ(x0, (std::vector<float>{11, 22, 33}));
  EXPECT_EQ(x1, x0);
  auto alone = make_backend_group(Device{}, 1);
  ASSERT_EQ(alone.size(), 1u);
  alone[0]->all_reduce_sum(t0);
  EXPECT_EQ(x0, (std::vector<float>{11, 22, 33}));
  EXPECT_THROW(make_backend_group(Device{}, 0), Error);
}
