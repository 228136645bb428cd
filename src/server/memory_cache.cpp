// The in-process response cache: a map with LRU eviction under a byte budget, and a TTL.
#include <chrono>
#include <list>
#include <mutex>
#include <unordered_map>

#include "server/response_cache.h"

namespace dsinfer {
namespace {

using Clock = std::chrono::steady_clock;

class MemoryCache : public ResponseCache {
 public:
  MemoryCache(int ttl_seconds, size_t max_bytes) : ttl_(std::chrono::seconds(ttl_seconds)), max_bytes_(max_bytes) {}

  std::optional<std::string> get(const std::string& key) override {
    std::lock_guard lock(mutex_);
    auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    if (it->second->expires <= Clock::now()) {
      erase(it->second);
      return std::nullopt;
    }
    lru_.splice(lru_.begin(), lru_, it->second);
    return it->second->value;
  }

  void put(const std::string& key, const std::string& value) override {
    size_t bytes = key.size() + value.size();
    if (bytes > max_bytes_) return;
    std::lock_guard lock(mutex_);
    if (auto it = index_.find(key); it != index_.end()) erase(it->second);
    lru_.push_front({key, value, Clock::now() + ttl_});
    index_[key] = lru_.begin();
    bytes_ += bytes;
    while (bytes_ > max_bytes_) erase(std::prev(lru_.end()));
  }

  std::string describe() const override { return "memory"; }

 private:
  struct Entry {
    std::string key, value;
    Clock::time_point expires;
  };

  void erase(std::list<Entry>::iterator e) {
    bytes_ -= e->key.size() + e->value.size();
    index_.erase(e->key);
    lru_.erase(e);
  }

  Clock::duration ttl_;
  size_t max_bytes_;
  std::mutex mutex_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  size_t bytes_ = 0;
};

}  // namespace

std::unique_ptr<ResponseCache> make_memory_cache(int ttl_seconds, size_t max_bytes) {
  return std::make_unique<MemoryCache>(ttl_seconds, max_bytes);
}

}  // namespace dsinfer
