// The response cache: identical deterministic requests are answered from memory or from a real
// Redis server (a Debian redis-server started on loopback), shared between server processes,
// with a TTL; sampled requests without a seed are never cached; a Redis that is down costs only
// the cache.
#include <filesystem>
#include <memory>

#include "server_process.h"
#include "../temp_path.h"

using namespace dsinfer::testing;

namespace {

json greedy_chat(const std::string& content) {
  return {{"messages", {{{"role", "user"}, {"content", content}}}}, {"max_tokens", 10}, {"temperature", 0}, {"ignore_eos", true}};
}

std::string content_of(const httplib::Result& r) {
  EXPECT_TRUE(r);
  if (!r) return "";
  EXPECT_EQ(r->status, 200) << r->body;
  return json::parse(r->body)["choices"][0]["message"]["content"];
}

double hits(const ServerProcess& s) { return metric(s.metrics(), "dsinfer_response_cache_hits_total"); }

// redis-server on a free loopback port, without persistence, stopped with the test.
class RedisServer {
 public:
  RedisServer() {
    port_ = free_port();
    log_ = std::make_unique<dsinfer::testing::TempPath>("redis_" + std::to_string(port_) + ".log");
    pid_ = spawn({"/usr/bin/redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
                  "--appendonly", "no"},
                 log_->path().string());
    for (int i = 0; i < 200 && !accepting(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ~RedisServer() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      if (wait_exit(pid_, std::chrono::seconds(10)) == -1) kill(pid_, SIGKILL);
    }
  }
  int port() const { return port_; }
  bool accepting() const {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port_);
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    return ok;
  }

 private:
  int port_ = 0;
  pid_t pid_ = -1;
  std::unique_ptr<dsinfer::testing::TempPath> log_;  // removed after the server has stopped
};

TEST(ResponseCache, MemoryCacheAnswersRepeatedDeterministicRequests) {
  ServerProcess s("qwen2-tiny", {"--response-cache", "memory"});
  ASSERT_TRUE(s.ready());
  std::string first = content_of(s.post("/v1/chat/completions", greedy_chat("cache me")));
  double generated = metric(wait_idle(s), "dsinfer_generation_tokens_total");
  EXPECT_EQ(hits(s), 0);
  EXPECT_EQ(content_of(s.post("/v1/chat/completions", greedy_chat("cache me"))), first);
  EXPECT_EQ(hits(s), 1);
  // The hit did not run the engine.
  EXPECT_EQ(metric(wait_idle(s), "dsinfer_generation_tokens_total"), generated);
  // A streaming request is served from the same entry, as a stream.
  json stream = greedy_chat("cache me");
  stream["stream"] = true;
  auto r = s.post("/v1/chat/completions", stream);
  ASSERT_TRUE(r);
  std::vector<json> events = sse_events(r->body);
  EXPECT_EQ(streamed_text(events), first);
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(hits(s), 2);
  // A different request, and a sampled one without a seed, are not answered from the cache.
  content_of(s.post("/v1/chat/completions", greedy_chat("something else")));
  json sampled = greedy_chat("cache me");
  sampled["temperature"] = 0.8;
  content_of(s.post("/v1/chat/completions", sampled));
  content_of(s.post("/v1/chat/completions", sampled));
  EXPECT_EQ(hits(s), 2);
  // A fixed seed makes sampling deterministic, so it is cached.
  sampled["seed"] = 7;
  std::string seeded = content_of(s.post("/v1/chat/completions", sampled));
  EXPECT_EQ(content_of(s.post("/v1/chat/completions", sampled)), seeded);
  EXPECT_EQ(hits(s), 3);
  EXPECT_EQ(metric(s.metrics(), "dsinfer_requests_total{outcome=\"cached\"}"), 3);
}

TEST(ResponseCache, RedisIsSharedBetweenServersAndExpires) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/redis-server")) << "redis-server missing: run scripts/setup.sh";
  RedisServer redis;
  ASSERT_TRUE(redis.accepting());
  std::string url = "redis://127.0.0.1:" + std::to_string(redis.port());
  ServerProcess a("qwen2-tiny", {"--response-cache", url, "--response-cache-ttl", "2"});
  ServerProcess b("qwen2-tiny", {"--response-cache", url, "--response-cache-ttl", "2"});
  ASSERT_TRUE(a.ready() && b.ready());
  std::string first = content_of(a.post("/v1/chat/completions", greedy_chat("shared")));
  EXPECT_EQ(hits(a), 0);
  // Another replica answers from what the first stored.
  EXPECT_EQ(content_of(b.post("/v1/chat/completions", greedy_chat("shared"))), first);
  EXPECT_EQ(hits(b), 1);
  // After the TTL Redis has dropped the entry.
  std::this_thread::sleep_for(std::chrono::milliseconds(2600));
  EXPECT_EQ(content_of(b.post("/v1/chat/completions", greedy_chat("shared"))), first);
  EXPECT_EQ(hits(b), 1);
  EXPECT_EQ(metric(b.metrics(), "dsinfer_response_cache_misses_total"), 1);
}

TEST(ResponseCache, RedisDownCostsOnlyTheCache) {
  ServerProcess s("qwen2-tiny", {"--response-cache", "redis://127.0.0.1:" + std::to_string(free_port())});
  ASSERT_TRUE(s.ready());
  std::string a = content_of(s.post("/v1/chat/completions", greedy_chat("no redis")));
  EXPECT_EQ(content_of(s.post("/v1/chat/completions", greedy_chat("no redis"))), a);
  EXPECT_GE(metric(s.metrics(), "dsinfer_response_cache_errors_total"), 2);
}

}  // namespace
