// ResponseCache: the cache layer production deployments put in front of a model. A
// deterministic request (greedy, or sampled with a fixed seed) asked again is answered from
// the cache instead of the engine. Two stores behind one interface: in-process memory, or a
// Redis server shared by several replicas. Entries expire after a TTL.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace dsinfer {

class ResponseCache {
 public:
  virtual ~ResponseCache() = default;
  // The value stored under `key`, or nullopt when absent or expired. Throws Error when the store
  // cannot be reached (the caller serves the request without the cache).
  virtual std::optional<std::string> get(const std::string& key) = 0;
  virtual void put(const std::string& key, const std::string& value) = 0;
  virtual std::string describe() const = 0;
};

// "memory" or "redis://HOST:PORT"; throws Error for anything else.
std::unique_ptr<ResponseCache> make_response_cache(const std::string& spec, int ttl_seconds);

// A result stored under a request (canonical JSON text). The key is a 128-bit hash of the request
// and the value repeats the request, so a hash collision reads as a miss, never a wrong answer.
std::optional<nlohmann::json> lookup_response(ResponseCache& cache, const std::string& request);
void store_response(ResponseCache& cache, const std::string& request, const nlohmann::json& result);

std::unique_ptr<ResponseCache> make_memory_cache(int ttl_seconds, size_t max_bytes);
std::unique_ptr<ResponseCache> make_redis_cache(const std::string& host, int port, int ttl_seconds);

}  // namespace dsinfer
