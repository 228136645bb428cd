#include "server/response_cache.h"

#include <cstdio>

#include "core/error.h"

namespace dsinfer {
namespace {

// FNV-1a 64 from two offset bases: a stable 128-bit key (std::hash may change between builds,
// and Redis entries outlive one build of the server).
std::string request_key(const std::string& request) {
  uint64_t a = 0xcbf29ce484222325ull, b = 0x6c62272e07bb0142ull;
  for (unsigned char c : request) {
    a = (a ^ c) * 0x100000001b3ull;
    b = (b ^ c) * 0x100000001b3ull;
  }
  char hex[33];
  std::snprintf(hex, sizeof hex, "%016llx%016llx", static_cast<unsigned long long>(a), static_cast<unsigned long long>(b));
  return std::string("dsinfer:response:") + hex;
}

}  // namespace

std::optional<nlohmann::json> lookup_response(ResponseCache& cache, const std::string& request) {
  std::optional<std::string> stored = cache.get(request_key(request));
  if (!stored) return std::nullopt;
  nlohmann::json entry = nlohmann::json::parse(*stored, nullptr, /*allow_exceptions=*/false);
  if (!entry.is_object() || entry.value("request", "") != request || !entry.contains("result")) return std::nullopt;
  return entry["result"];
}

void store_response(ResponseCache& cache, const std::string& request, const nlohmann::json& result) {
  cache.put(request_key(request), nlohmann::json{{"request", request}, {"result", result}}.dump());
}

// Enough for tens of thousands of typical responses; least recently used entries go first.
constexpr size_t kMemoryCacheBytes = size_t(256) << 20;

std::unique_ptr<ResponseCache> make_response_cache(const std::string& spec, int ttl_seconds) {
  if (ttl_seconds <= 0) fail("--response-cache-ttl must be positive, got ", ttl_seconds);
  if (spec == "memory") return make_memory_cache(ttl_seconds, kMemoryCacheBytes);
  const std::string scheme = "redis://";
  if (spec.rfind(scheme, 0) == 0) {
    std::string rest = spec.substr(scheme.size());
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
    size_t colon = rest.rfind(':');
    std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
    int port = 6379;
    if (colon != std::string::npos) {
      try {
        size_t used = 0;
        port = std::stoi(rest.substr(colon + 1), &used);
        if (used != rest.size() - colon - 1) port = -1;
      } catch (const std::exception&) {
        port = -1;
      }
    }
    if (host.empty() || port <= 0 || port > 65535) fail("bad --response-cache '", spec, "' (expected redis://HOST:PORT)");
    return make_redis_cache(host, port, ttl_seconds);
  }
  fail("bad --response-cache '", spec, "' (expected memory or redis://HOST:PORT)");
}

}  // namespace dsinfer
