// The server under concurrent load: batched greedy equals solo greedy, 64 streams at once all
// complete, a full queue answers 429 with Retry-After, and a client that disconnects mid-stream
// has its sequence cancelled and its KV blocks freed.
#include <atomic>
#include <future>

#include "server_process.h"

using namespace dsinfer::testing;

namespace {

json greedy_completion(const std::string& prompt, int max_tokens, bool stream = false) {
  return {{"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}, {"ignore_eos", true}, {"stream", stream}};
}

TEST(Concurrency, BatchedGreedyEqualsSoloGreedy) {
  ServerProcess s("llama-tiny");
  ASSERT_TRUE(s.ready());
  std::vector<std::string> prompts = {"One two three", "The quick brown fox", "Hello", "In a galaxy far away",
                                      "Once upon a time there was", "A B C D E F G", "Numbers: 1 2 3 4", "Why?"};
  std::vector<std::string> solo;
  for (const auto& p : prompts) {
    auto res = s.post("/v1/completions", greedy_completion(p, 16));
    ASSERT_TRUE(res);
    solo.push_back(json::parse(res->body)["choices"][0]["text"]);
  }
  std::vector<std::future<std::string>> batched;
  for (const auto& p : prompts)
    batched.push_back(std::async(std::launch::async, [&s, p] {
      auto res = s.post("/v1/completions", greedy_completion(p, 16));
      return res ? json::parse(res->body)["choices"][0]["text"].get<std::string>() : std::string("<no response>");
    }));
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(batched[i].get(), solo[i]) << prompts[i];
}

TEST(Concurrency, SixtyFourConcurrentStreamsAllComplete) {
  ServerProcess s("qwen2-tiny", {"--max-running", "64"});
  ASSERT_TRUE(s.ready());
  std::atomic<int> completed{0};
  std::mutex mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> clients;
  for (int i = 0; i < 64; ++i)
    clients.emplace_back([&, i] {
      json body = greedy_completion("stream number " + std::to_string(i), 12, true);
      body["stream_options"] = {{"include_usage", true}};
      auto res = s.post("/v1/completions", body);
      std::vector<json> events = res && res->status == 200 ? sse_events(res->body) : std::vector<json>{};
      if (events.size() >= 3 && events.back() == "[DONE]" && events[events.size() - 2]["usage"]["completion_tokens"] == 12) {
        completed++;
      } else {
        std::lock_guard lock(mutex);
        failures.push_back(!res ? httplib::to_string(res.error()) : std::to_string(res->status) + " " + res->body);
      }
    });
  for (auto& t : clients) t.join();
  EXPECT_EQ(completed.load(), 64) << ::testing::PrintToString(failures);
  std::string m = wait_idle(s);
  EXPECT_EQ(metric(m, "dsinfer_kv_cache_blocks_used"), 0);
  EXPECT_GE(metric(m, "dsinfer_requests_total{outcome=\"success\"}"), 64);
}

TEST(Concurrency, FullQueueGives429WithRetryAfter) {
  ServerProcess s("qwen2-tiny", {"--max-running", "1", "--max-waiting", "1"});
  ASSERT_TRUE(s.ready());
  // Long requests fill the one running slot and the one waiting slot; the rest are refused.
  std::vector<std::future<httplib::Result>> results;
  for (int i = 0; i < 6; ++i) {
    results.push_back(std::async(std::launch::async, [&s] {
      return s.post("/v1/completions", greedy_completion("hello", 200));
    }));
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  int ok = 0, refused = 0;
  for (auto& f : results) {
    httplib::Result r = f.get();
    ASSERT_TRUE(r);
    if (r->status == 200) ok++;
    if (r->status == 429) {
      refused++;
      EXPECT_EQ(r->get_header_value("Retry-After"), "1");
      EXPECT_EQ(json::parse(r->body)["error"]["code"], "rate_limit_exceeded");
    }
  }
  EXPECT_GE(ok, 2);
  EXPECT_GE(refused, 1);
  EXPECT_EQ(ok + refused, 6);
  EXPECT_EQ(metric(s.metrics(), "dsinfer_requests_total{outcome=\"rejected\"}"), refused);
}

TEST(Concurrency, DisconnectMidStreamCancelsAndFreesBlocks) {
  ServerProcess s("qwen2-tiny");
  ASSERT_TRUE(s.ready());
  std::atomic<bool> saw_running{false};
  for (int i = 0; i < 3; ++i) {
    httplib::Client c = s.client();
    httplib::Request req;
    req.method = "POST";
    req.path = "/v1/completions";
    req.body = greedy_completion("a long story", 3500, true).dump();
    req.set_header("Content-Type", "application/json");
    int chunks = 0;
    // Returning false from the receiver closes the connection: the client is gone.
    req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
      if (++chunks == 3) {
        std::string m = s.metrics();
        if (metric(m, "dsinfer_num_requests_running") == 1 && metric(m, "dsinfer_kv_cache_blocks_used") > 0)
          saw_running = true;
      }
      return chunks < 5;
    };
    c.send(req);
  }
  EXPECT_TRUE(saw_running.load());
  std::string m = wait_idle(s);
  EXPECT_EQ(metric(m, "dsinfer_num_requests_running"), 0);
  EXPECT_EQ(metric(m, "dsinfer_kv_cache_blocks_used"), 0);
  EXPECT_EQ(metric(m, "dsinfer_requests_total{outcome=\"cancelled\"}"), 3);
  // Far fewer tokens than the 3 x 3500 asked for were generated.
  EXPECT_LT(metric(m, "dsinfer_generation_tokens_total"), 1000);
}


// A raw HTTP POST of `body` whose client closes its socket after `wait`, without reading.
void post_and_leave(int port, const std::string& body, std::chrono::milliseconds wait) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string req = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(write(fd, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  std::this_thread::sleep_for(wait);
  close(fd);
}

// Clients that leave before anything is written to them (a non-streaming request running, a
// stream still queued behind it) are noticed from the connection, not at a write that never
// comes: both are cancelled well before the running one's 3500 tokens.
TEST(Concurrency, ClientsThatLeaveBeforeAnyWriteAreCancelled) {
  ServerProcess s("qwen2-tiny", {"--max-running", "1", "--kv-cache-tokens", "4096"});
  ASSERT_TRUE(s.ready());
  std::thread whole([&] { post_and_leave(s.port(), greedy_completion("a long story", 3500).dump(), std::chrono::milliseconds(800)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  post_and_leave(s.port(), greedy_completion("queued", 3500, true).dump(), std::chrono::milliseconds(300));
  whole.join();
  std::string m = wait_idle(s);
  EXPECT_EQ(metric(m, "dsinfer_requests_total{outcome=\"cancelled\"}"), 2) << m;
  EXPECT_EQ(metric(m, "dsinfer_requests_total{outcome=\"success\"}"), 0);
  EXPECT_EQ(metric(m, "dsinfer_kv_cache_blocks_used"), 0);
  EXPECT_LT(metric(m, "dsinfer_generation_tokens_total"), 3400);
}

}  // namespace
