// RankThreads: a host thread for every rank of a group but the first, so that each rank's share
// of a job runs at once with the others' (tensor-parallel ranks meet in collectives and must all
// be running). The caller's thread runs rank 0.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dsinfer {

class RankThreads {
 public:
  explicit RankThreads(int ranks);
  ~RankThreads();
  RankThreads(const RankThreads&) = delete;
  RankThreads& operator=(const RankThreads&) = delete;

  int ranks() const { return static_cast<int>(workers_.size()) + 1; }
  // Runs job(r) for every rank r and returns once all have returned. When a rank throws,
  // on_failure() runs on its thread at once (to release ranks waiting for it), and run rethrows
  // the first failure (the cause; the ranks it released fail after it) once every rank is done.
  void run(const std::function<void(int)>& job, const std::function<void()>& on_failure);

 private:
  void work(int rank);
  void attempt(int rank);

  std::mutex mu_;
  std::condition_variable start_, done_;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
  const std::function<void(int)>* job_ = nullptr;
  const std::function<void()>* on_failure_ = nullptr;
  std::exception_ptr first_error_;
  std::vector<std::thread> workers_;
};

}  // namespace dsinfer
