// Lifecycle: 503 while the model loads; on SIGTERM / SIGINT the server stops accepting (503),
// lets running requests finish within the drain timeout, cancels what is left after it, and
// exits 0.
#include <future>

#include "server_process.h"
#include "../temp_path.h"

using namespace dsinfer::testing;

namespace {

json long_completion(int max_tokens, bool stream) {
  return {{"prompt", "tell me everything"}, {"max_tokens", max_tokens}, {"temperature", 0}, {"ignore_eos", true},
          {"stream", stream}};
}

void wait_running(const ServerProcess& s) {
  for (int i = 0; i < 200 && metric(s.metrics(), "dsinfer_num_requests_running") < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

TEST(Drain, SigtermLetsRunningRequestsFinishAndExitsZero) {
  ServerProcess s("qwen2-tiny", {"--drain-timeout", "60"});
  ASSERT_TRUE(s.ready());
  auto stream = std::async(std::launch::async, [&s] { return s.post("/v1/completions", long_completion(300, true)); });
  wait_running(s);
  kill(s.pid(), SIGTERM);
  // While draining: health and new requests say 503.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto health = s.client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_EQ(json::parse(health->body)["status"], "draining");
  auto refused = s.post("/v1/completions", long_completion(2, false));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(refused->get_header_value("Retry-After"), "1");
  // The running stream completes in full.
  httplib::Result r = stream.get();
  ASSERT_TRUE(r);
  std::vector<json> events = sse_events(r->body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(events[events.size() - 2]["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(s.stop(SIGTERM, std::chrono::seconds(30)), 0) << s.log();
}

TEST(Drain, DrainTimeoutCancelsWhatIsLeftAndExitsZero) {
  ServerProcess s("qwen2-tiny", {"--drain-timeout", "0.3"});
  ASSERT_TRUE(s.ready());
  auto pending = std::async(std::launch::async, [&s] { return s.post("/v1/completions", long_completion(3500, false)); });
  wait_running(s);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(s.stop(SIGINT, std::chrono::seconds(30)), 0) << s.log();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  httplib::Result r = pending.get();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_NE(r->body.find("shutting down"), std::string::npos);
}

}  // namespace

namespace {

TEST(Lifecycle, LoadingAnswers503UntilReady) {
  int port = free_port();
  const dsinfer::testing::TempPath log("loading_" + std::to_string(port) + ".log");
  pid_t pid = spawn({DSINFER_BINARY, "serve", "--model", fixture_dir("qwen2-tiny"), "--port", std::to_string(port)},
                    log.path().string());
  ASSERT_GT(pid, 0);
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(1, 0);
  int loading_health = 0, loading_completion = 0;
  bool ready = false;
  // The socket is open before the model loads (the tokenizer alone takes a good part of a second).
  for (int i = 0; i < 3000 && !ready; ++i) {
    auto h = c.Get("/health");
    if (h && h->status == 503) {
      EXPECT_EQ(json::parse(h->body)["status"], "loading");
      loading_health++;
      auto r = c.Post("/v1/completions", R"({"prompt": "hi", "max_tokens": 1})", "application/json");
      if (r && r->status == 503) loading_completion++;
    }
    ready = h && h->status == 200;
    if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(ready);
  EXPECT_GT(loading_health, 0);
  EXPECT_GT(loading_completion, 0);
  kill(pid, SIGTERM);
  EXPECT_EQ(wait_exit(pid, std::chrono::seconds(30)), 0);
}

}  // namespace
