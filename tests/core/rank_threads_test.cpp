// RankThreads: every rank's share runs at once, failures release the others and come back.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "core/error.h"
#include "core/rank_threads.h"

using namespace dsinfer;

TEST(RankThreads, RunsEveryRankTogetherManyTimes) {
  RankThreads threads(4);
  EXPECT_EQ(threads.ranks(), 4);
  std::barrier meet(4);  // passes only with all four ranks running at once
  for (int round = 0; round < 50; ++round) {
    std::vector<int> seen(4, -1);
    threads.run(
        [&](int r) {
          meet.arrive_and_wait();
          seen[r] = round;
        },
        [] {});
    EXPECT_EQ(seen, std::vector<int>(4, round));
  }
}

TEST(RankThreads, AFailureReleasesTheOthersAndRethrowsTheCause) {
  RankThreads threads(3);
  std::mutex mu;
  std::condition_variable cv;
  bool aborted = false;
  int released = 0;
  try {
    threads.run(
        [&](int r) {
          if (r == 2) throw std::runtime_error("rank 2 ran out of memory");
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return aborted; });  // as a collective waits for rank 2
          ++released;
          throw Error("aborted");
        },
        [&] {
          std::lock_guard lock(mu);
          aborted = true;
          cv.notify_all();
        });
    FAIL() << "run returned";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "rank 2 ran out of memory");
  }
  EXPECT_EQ(released, 2);
  std::atomic<int> ran{0};  // the threads still serve jobs after a failure
  threads.run([&](int) { ++ran; }, [] {});
  EXPECT_EQ(ran.load(), 3);
}

TEST(RankThreads, OneRankRunsOnTheCaller) {
  RankThreads threads(1);
  int ran = 0;
  threads.run([&](int r) { ran += r + 1; }, [] {});
  EXPECT_EQ(ran, 1);
  EXPECT_THROW(RankThreads(0), Error);
}
