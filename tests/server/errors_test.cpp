// Every refusal is an OpenAI-style error object with the right status, and no request, however
// malformed, takes the server down.
#include "server_process.h"

using namespace dsinfer::testing;

namespace {

void expect_error(const httplib::Result& res, int status, const std::string& param = "") {
  ASSERT_TRUE(res) << "no response";
  EXPECT_EQ(res->status, status) << res->body;
  json body = json::parse(res->body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << res->body;
  ASSERT_TRUE(body.contains("error")) << res->body;
  const json& e = body["error"];
  EXPECT_TRUE(e["message"].is_string());
  EXPECT_TRUE(e["type"].is_string());
  EXPECT_TRUE(e.contains("param"));
  EXPECT_TRUE(e.contains("code"));
  if (!param.empty()) EXPECT_EQ(e["param"], param) << res->body;
}

json chat(json extra = json::object()) {
  json b = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"max_tokens", 4}};
  b.update(extra);
  return b;
}

class Errors : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new ServerProcess("qwen2-tiny", {"--max-body-bytes", "4096", "--api-key", "sekret"});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(server_->ready()); }

  static httplib::Headers auth() { return {{"Authorization", "Bearer sekret"}}; }
  httplib::Result post(const std::string& path, const std::string& raw) {
    return server_->client().Post(path.c_str(), auth(), raw, "application/json");
  }

  static ServerProcess* server_;
};
ServerProcess* Errors::server_ = nullptr;

TEST_F(Errors, MissingOrWrongApiKeyIs401) {
  expect_error(server_->post("/v1/chat/completions", chat()), 401);
  expect_error(server_->post("/v1/chat/completions", chat(), {{"Authorization", "Bearer wrong"}}), 401);
  expect_error(server_->client().Get("/v1/models"), 401);
  auto ok = server_->post("/v1/chat/completions", chat(), auth());
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  // Probes stay open: a load balancer has no key.
  auto health = server_->client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(Errors, MalformedJsonIs400) {
  expect_error(post("/v1/chat/completions", "{\"messages\": [}"), 400);
  expect_error(post("/v1/chat/completions", "[1, 2]"), 400);
  expect_error(post("/v1/completions", ""), 400);
  expect_error(post("/v1/completions", std::string("{\"prompt\": \"\xff\xfe\"}")), 400);
}

TEST_F(Errors, BadFieldValuesNameTheField) {
  struct Case {
    json patch;
    std::string param;
  };
  std::vector<Case> cases = {
      {{{"temperature", -1}}, "temperature"},
      {{{"temperature", "hot"}}, "temperature"},
      {{{"top_p", 0}}, "top_p"},
      {{{"top_p", 1.5}}, "top_p"},
      {{{"top_k", -5}}, "top_k"},
      {{{"min_p", 2}}, "min_p"},
      {{{"presence_penalty", 3}}, "presence_penalty"},
      {{{"frequency_penalty", -3}}, "frequency_penalty"},
      {{{"max_tokens", 0}}, "max_tokens"},
      {{{"max_tokens", 1.5}}, "max_tokens"},
      {{{"max_completion_tokens", -1}}, "max_completion_tokens"},
      {{{"tool_choice", "required"}}, "tool_choice"},
      {{{"tool_choice", {{"type", "function"}, {"function", {{"name", "f"}}}}}}, "tool_choice"},
      {{{"stop_token_ids", "x"}}, "stop_token_ids"},
      {{{"stop_token_ids", {-1}}}, "stop_token_ids[0]"},
      {{{"min_tokens", -1}}, "min_tokens"},
      {{{"n", 0}}, "n"},
      {{{"n", 129}}, "n"},
      {{{"n", 2}, {"best_of", 3}}, "best_of"},
      {{{"seed", "x"}}, "seed"},
      {{{"stop", 5}}, "stop"},
      {{{"stop", {""}}}, "stop"},
      {{{"logprobs", "yes"}}, "logprobs"},
      {{{"top_logprobs", 3}}, "top_logprobs"},
      {{{"logprobs", true}, {"top_logprobs", 50}}, "top_logprobs"},
      {{{"stream", "yes"}}, "stream"},
      {{{"stream_options", {{"include_usage", true}}}}, "stream_options"},
      {{{"messages", json::array()}}, "messages"},
      {{{"messages", "hi"}}, "messages"},
      {{{"messages", {{{"role", "wizard"}, {"content", "x"}}}}}, "messages[0].role"},
      {{{"messages", {{{"role", "user"}}}}}, "messages[0].content"},
      {{{"messages", {{{"role", "user"}, {"content", {{{"type", "image_url"}}}}}}}}, "messages[0].content[0]"},
      {{{"model", 7}}, "model"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.patch.dump());
    expect_error(post("/v1/chat/completions", chat(c.patch).dump()), 400, c.param);
  }
  expect_error(post("/v1/completions", json{{"prompt", json::array()}}.dump()), 400, "prompt");
  expect_error(post("/v1/completions", json{{"prompt", {"a", "b"}}}.dump()), 400, "prompt");
  expect_error(post("/v1/completions", json{{"prompt", {1, -2}}}.dump()), 400, "prompt[1]");
  expect_error(post("/v1/completions", json{{"prompt", {1, 999999999}}}.dump()), 400, "prompt");
  expect_error(post("/v1/completions", json{{"max_tokens", 3}}.dump()), 400, "prompt");
  expect_error(post("/v1/completions", json{{"prompt", "x"}, {"logprobs", 21}}.dump()), 400, "logprobs");
}

TEST_F(Errors, PromptPlusMaxTokensOverTheContextIs400) {
  auto models = server_->client().Get("/v1/models", auth());
  ASSERT_TRUE(models);
  int context = json::parse(models->body)["data"][0]["max_model_len"];
  auto over = post("/v1/completions", json{{"prompt", "hello"}, {"max_tokens", context}}.dump());
  expect_error(over, 400, "max_tokens");
  EXPECT_EQ(json::parse(over->body)["error"]["code"], "context_length_exceeded");
  std::vector<int> long_prompt(context, 15);
  // The body limit of this server is 4 KiB, so the over-long prompt goes to a server without it.
  ServerProcess big("qwen2-tiny");
  ASSERT_TRUE(big.ready());
  expect_error(big.post("/v1/completions", {{"prompt", long_prompt}, {"max_tokens", 1}}), 400, "prompt");
}

TEST_F(Errors, BodyOverTheLimitIs413) {
  std::string huge = chat({{"messages", {{{"role", "user"}, {"content", std::string(8000, 'a')}}}}}).dump();
  expect_error(post("/v1/chat/completions", huge), 413);
}

TEST_F(Errors, UnknownModelIs404) {
  expect_error(post("/v1/chat/completions", chat({{"model", "gpt-17"}}).dump()), 404, "model");
  expect_error(server_->client().Get("/v1/models/gpt-17", auth()), 404);
}

TEST_F(Errors, UnknownRouteIs404AndAWrongMethod405Json) {
  expect_error(server_->client().Get("/v2/nothing"), 404);
  auto wrong = server_->client().Get("/v1/chat/completions", auth());
  expect_error(wrong, 405);
  EXPECT_EQ(wrong->get_header_value("Allow"), "POST");
}

TEST_F(Errors, GarbageOnTheSocketDoesNotKillTheServer) {
  const std::vector<std::string> garbage = {
      "\x00\x01\x02\x03 nonsense\r\n\r\n",
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"prompt\":",  // body cut short
      "GET / HTTP/1.1\r\nHost: x\r\n" + std::string(20000, 'A') + "\r\n\r\n",
      "POST /v1/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
      "POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  };
  for (const auto& g : garbage) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(server_->port());
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    (void)!write(fd, g.data(), g.size());
    shutdown(fd, SHUT_WR);
    char buf[4096];
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
  }
  auto ok = server_->post("/v1/completions", {{"prompt", "hi"}, {"max_tokens", 2}}, auth());
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST(ErrorsWithoutTokenizer, ChatOnAModelWithoutTokenizerIs400ButIdsWork) {
  ServerProcess s("ds2-lite-tiny");
  ASSERT_TRUE(s.ready());
  expect_error(s.post("/v1/chat/completions", chat()), 400, "messages");
  expect_error(s.post("/v1/completions", {{"prompt", "text"}, {"max_tokens", 2}}), 400, "prompt");
  auto ok = s.post("/v1/completions", {{"prompt", {1, 2, 3}}, {"max_tokens", 3}, {"return_token_ids", true},
                                       {"temperature", 0}, {"ignore_eos", true}});
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(json::parse(ok->body)["choices"][0]["token_ids"].size(), 3u);
}

TEST(ErrorsTimeout, RequestTimeoutIs408AndFreesTheSequence) {
  ServerProcess s("qwen2-tiny", {"--request-timeout", "0.3"});
  ASSERT_TRUE(s.ready());
  json body = {{"prompt", "hello"}, {"max_tokens", 3000}, {"ignore_eos", true}};
  expect_error(s.post("/v1/completions", body), 408);
  body["stream"] = true;
  auto res = s.post("/v1/completions", body);
  ASSERT_TRUE(res);
  std::vector<json> events = sse_events(res->body);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[events.size() - 2]["error"]["code"], "request_timeout");
  std::string m = wait_idle(s);
  EXPECT_EQ(metric(m, "dsinfer_num_requests_running"), 0);
  EXPECT_EQ(metric(m, "dsinfer_kv_cache_blocks_used"), 0);
  EXPECT_EQ(metric(m, "dsinfer_requests_total{outcome=\"timeout\"}"), 2);
}

}  // namespace

// Every choice of a request waits in the engine's queue: more than it holds is a 400 (a 429 would
// ask the client to retry what can never fit).
TEST(ErrorsQueue, MoreChoicesThanTheQueueHoldsAre400) {
  ServerProcess s("qwen2-tiny", {"--max-waiting", "2"});
  ASSERT_TRUE(s.ready());
  json body = {{"prompt", "hi"}, {"max_tokens", 2}, {"n", 3}};
  auto res = s.post("/v1/completions", body);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body;
  EXPECT_EQ(json::parse(res->body)["error"]["param"], "n");
  body["n"] = 2;
  auto ok = s.post("/v1/completions", body);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
}
