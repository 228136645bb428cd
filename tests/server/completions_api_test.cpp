// The OpenAI endpoints end to end against the real binary: chat and completions, usage, finish
// reasons, stop strings, logprobs, streaming equal to non-streaming, models and health.
#include <algorithm>
#include <set>

#include "../mtp_checkpoint_util.h"
#include "../temp_path.h"
#include "server_process.h"
#include "text/utf8.h"

using namespace dsinfer::testing;

namespace {

json chat_body(int max_tokens, json extra = json::object()) {
  json b = {{"messages", {{{"role", "user"}, {"content", "Hello, who are you?"}}}},
            {"max_tokens", max_tokens},
            {"temperature", 0},
            {"ignore_eos", true}};
  b.update(extra);
  return b;
}

json completion_body(int max_tokens, json extra = json::object()) {
  json b = {{"prompt", "The capital of France is"}, {"max_tokens", max_tokens}, {"temperature", 0}, {"ignore_eos", true}};
  b.update(extra);
  return b;
}

// Bytes [start, start + n) widened to whole UTF-8 characters (the text of random weights is
// often not ASCII, and a request body must be valid UTF-8).
std::string utf8_slice(const std::string& s, size_t start, size_t n) {
  auto continuation = [&](size_t i) { return i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80; };
  while (continuation(start)) --start;
  size_t end = std::min(s.size(), start + n);
  while (continuation(end)) ++end;
  return s.substr(start, end - start);
}

class CompletionsApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new ServerProcess("qwen2-tiny", {"--served-model-name", "tiny"}); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(server_->ready()); }

  json post_ok(const std::string& path, const json& body) {
    auto res = server_->post(path, body);
    EXPECT_TRUE(res);
    if (!res) return json();
    EXPECT_EQ(res->status, 200) << res->body;
    return json::parse(res->body);
  }

  // The events of `body` streamed with include_usage (empty, with a failure, when not a 200 stream).
  std::vector<json> stream_with_usage(const std::string& path, json body) {
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
    auto res = server_->post(path, body);
    EXPECT_TRUE(res);
    if (!res) return {};
    EXPECT_EQ(res->status, 200) << res->body;
    EXPECT_NE(res->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
    return res->status == 200 ? sse_events(res->body) : std::vector<json>{};
  }

  static ServerProcess* server_;
};
ServerProcess* CompletionsApi::server_ = nullptr;

TEST_F(CompletionsApi, ChatCompletionHasMessageUsageAndLengthFinish) {
  json r = post_ok("/v1/chat/completions", chat_body(12));
  EXPECT_EQ(r["object"], "chat.completion");
  EXPECT_EQ(r["model"], "tiny");
  EXPECT_EQ(r["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  ASSERT_EQ(r["choices"].size(), 1u);
  EXPECT_EQ(r["choices"][0]["message"]["role"], "assistant");
  EXPECT_TRUE(r["choices"][0]["message"]["content"].is_string());
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r["usage"]["completion_tokens"], 12);
  EXPECT_GT(r["usage"]["prompt_tokens"].get<int>(), 5);
  EXPECT_EQ(r["usage"]["total_tokens"], r["usage"]["prompt_tokens"].get<int>() + 12);
}

TEST_F(CompletionsApi, CompletionWithTextAndTokenIdPrompts) {
  json text = post_ok("/v1/completions", completion_body(8, {{"return_token_ids", true}}));
  EXPECT_EQ(text["object"], "text_completion");
  EXPECT_EQ(text["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(text["usage"]["completion_tokens"], 8);
  // The same prompt as ids gives the same greedy continuation.
  json ids = post_ok("/v1/completions", completion_body(8, {{"prompt", text["choices"][0]["prompt_token_ids"]}}));
  EXPECT_EQ(ids["choices"][0]["text"], text["choices"][0]["text"]);
  EXPECT_EQ(text["choices"][0]["token_ids"].size(), 8u);
}

TEST_F(CompletionsApi, CompletionsDefaultToSixteenTokens) {
  json body = completion_body(1);
  body.erase("max_tokens");
  json r = post_ok("/v1/completions", body);
  EXPECT_EQ(r["usage"]["completion_tokens"], 16);
}

TEST_F(CompletionsApi, StreamingEqualsNonStreaming) {
  for (const char* path : {"/v1/chat/completions", "/v1/completions"}) {
    bool chat = std::string(path).find("chat") != std::string::npos;
    json body = chat ? chat_body(20) : completion_body(20);
    json full = post_ok(path, body);
    std::vector<json> events = stream_with_usage(path, body);
    ASSERT_GE(events.size(), 3u);
    EXPECT_EQ(events.back(), "[DONE]");
    std::string expected = chat ? full["choices"][0]["message"]["content"] : full["choices"][0]["text"];
    EXPECT_EQ(streamed_text(events), expected) << path;
    if (chat) EXPECT_EQ(events[0]["choices"][0]["delta"]["role"], "assistant");
    // The closing chunk carries the finish reason, then the usage chunk with no choices.
    const json& usage = events[events.size() - 2];
    EXPECT_TRUE(usage["choices"].empty());
    EXPECT_EQ(usage["usage"]["completion_tokens"], 20);
    EXPECT_EQ(usage["usage"]["prompt_tokens"], full["usage"]["prompt_tokens"]);
    EXPECT_EQ(events[events.size() - 3]["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(events[1]["object"], chat ? "chat.completion.chunk" : "text_completion");
  }
}

TEST_F(CompletionsApi, StreamWithoutIncludeUsageHasNoUsage) {
  json body = completion_body(5, {{"stream", true}});
  auto res = server_->post("/v1/completions", body);
  ASSERT_TRUE(res);
  for (const auto& e : sse_events(res->body))
    if (e.is_object()) EXPECT_FALSE(e.contains("usage"));
}

TEST_F(CompletionsApi, StopStringTrimsTextAndFinishesWithStop) {
  json full = post_ok("/v1/completions", completion_body(24));
  std::string text = full["choices"][0]["text"];
  ASSERT_GT(text.size(), 12u);
  // A stop string from the middle of the greedy text: the answer ends right before it.
  std::string stop = utf8_slice(text, text.size() / 2, 3);
  size_t at = text.find(stop);
  json r = post_ok("/v1/completions", completion_body(24, {{"stop", {stop}}}));
  EXPECT_EQ(r["choices"][0]["text"], text.substr(0, at));
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  EXPECT_LT(r["usage"]["completion_tokens"].get<int>(), 24);
  // Streaming holds back partial matches, so the stream shows exactly the same text.
  auto res = server_->post("/v1/completions", completion_body(24, {{"stop", stop}, {"stream", true}}));
  ASSERT_TRUE(res);
  std::vector<json> events = sse_events(res->body);
  EXPECT_EQ(streamed_text(events), text.substr(0, at));
  EXPECT_EQ(events[events.size() - 2]["choices"][0]["finish_reason"], "stop");
}

TEST_F(CompletionsApi, ChatLogprobsHaveTopAlternatives) {
  json r = post_ok("/v1/chat/completions", chat_body(4, {{"logprobs", true}, {"top_logprobs", 3}}));
  const json& content = r["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 4u);
  for (const auto& t : content) {
    EXPECT_TRUE(t["token"].is_string());
    EXPECT_LE(t["logprob"].get<double>(), 0.0);
    EXPECT_TRUE(t["bytes"].is_array());
    ASSERT_EQ(t["top_logprobs"].size(), 3u);
    // Greedy: the chosen token is the most likely one.
    EXPECT_NEAR(t["top_logprobs"][0]["logprob"].get<double>(), t["logprob"].get<double>(), 1e-5);
  }
}

TEST_F(CompletionsApi, CompletionLogprobsUseTheLegacyShape) {
  json r = post_ok("/v1/completions", completion_body(3, {{"logprobs", 2}}));
  const json& lp = r["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"].size(), 3u);
  EXPECT_EQ(lp["token_logprobs"].size(), 3u);
  EXPECT_EQ(lp["top_logprobs"].size(), 3u);
  EXPECT_EQ(lp["top_logprobs"][0].size(), 2u);
  EXPECT_EQ(lp["text_offset"][0], 0);
  // Offsets count characters, as Python's str does: each is the last plus its token's length.
  for (size_t i = 1; i < 3; ++i) {
    std::u32string prev = dsinfer::utf8_decode(lp["tokens"][i - 1].get<std::string>());
    EXPECT_EQ(lp["text_offset"][i].get<size_t>(), lp["text_offset"][i - 1].get<size_t>() + prev.size());
  }
}

TEST_F(CompletionsApi, SeededSamplingIsReproducible) {
  json body = completion_body(12, {{"temperature", 1.0}, {"top_p", 0.9}, {"top_k", 50}, {"seed", 1234},
                                   {"presence_penalty", 0.5}, {"frequency_penalty", 0.5}, {"min_p", 0.01}});
  json a = post_ok("/v1/completions", body);
  json b = post_ok("/v1/completions", body);
  EXPECT_EQ(a["choices"][0]["text"], b["choices"][0]["text"]);
}

// n choices: each sampled on its own (seeded: choice i with seed + i, so a request reproduces
// and its choices differ), indexed 0..n-1, usage counting the prompt once.
TEST_F(CompletionsApi, NChoicesAreSampledApartAndCountedTogether) {
  for (const char* path : {"/v1/chat/completions", "/v1/completions"}) {
    const bool chat = std::string(path).find("chat") != std::string::npos;
    json extra = {{"n", 3}, {"temperature", 1.0}, {"seed", 77}};
    json body = chat ? chat_body(10, extra) : completion_body(10, extra);
    json a = post_ok(path, body), b = post_ok(path, body);
    ASSERT_EQ(a["choices"].size(), 3u) << path;
    std::set<std::string> texts;
    for (int i = 0; i < 3; ++i) {
      const json& c = a["choices"][i];
      EXPECT_EQ(c["index"], i);
      EXPECT_EQ(c["finish_reason"], "length");
      const std::string text = chat ? c["message"]["content"] : c["text"];
      texts.insert(text);
      EXPECT_EQ(text, chat ? b["choices"][i]["message"]["content"] : b["choices"][i]["text"]) << path << " choice " << i;
    }
    EXPECT_GT(texts.size(), 1u) << path << ": every choice sampled the same text";
    EXPECT_EQ(a["usage"]["completion_tokens"], 30);
    json one = post_ok(path, chat ? chat_body(10) : completion_body(10));
    EXPECT_EQ(a["usage"]["prompt_tokens"], one["usage"]["prompt_tokens"]);
    // Choice 0 is what the same request with n = 1 gives.
    body["n"] = 1;
    json single = post_ok(path, body);
    EXPECT_EQ(chat ? single["choices"][0]["message"]["content"] : single["choices"][0]["text"],
              chat ? a["choices"][0]["message"]["content"] : a["choices"][0]["text"]);
  }
}

// Streamed, every choice gets its role chunk (chat), its text and its own closing chunk; the
// stream ends once, after the last, with the usage of all.
TEST_F(CompletionsApi, NChoicesStreamEachToItsEnd) {
  for (const char* path : {"/v1/chat/completions", "/v1/completions"}) {
    const bool chat = std::string(path).find("chat") != std::string::npos;
    json extra = {{"n", 2}, {"temperature", 1.0}, {"seed", 5}};
    json body = chat ? chat_body(8, extra) : completion_body(8, extra);
    json full = post_ok(path, body);
    std::vector<json> events = stream_with_usage(path, body);
    ASSERT_GE(events.size(), 4u);
    EXPECT_EQ(events.back(), "[DONE]");
    std::vector<std::string> text(2);
    std::vector<int> roles(2, 0), finishes(2, 0);
    for (const json& e : events) {
      if (!e.is_object() || e["choices"].empty()) continue;
      const json& c = e["choices"][0];
      const int i = c["index"];
      ASSERT_TRUE(i == 0 || i == 1);
      EXPECT_EQ(finishes[i], 0) << "choice " << i << " streamed after its end";
      if (chat && c["delta"].contains("role")) ++roles[i];
      if (chat && c["delta"].contains("content")) text[i] += c["delta"]["content"].get<std::string>();
      if (!chat) text[i] += c["text"].get<std::string>();
      if (!c["finish_reason"].is_null()) ++finishes[i];
    }
    for (int i = 0; i < 2; ++i) {
      if (chat) EXPECT_EQ(roles[i], 1) << path;
      EXPECT_EQ(finishes[i], 1) << path;
      EXPECT_EQ(text[i], chat ? full["choices"][i]["message"]["content"] : full["choices"][i]["text"]) << path;
    }
    const json& usage = events[events.size() - 2];
    EXPECT_TRUE(usage["choices"].empty());
    EXPECT_EQ(usage["usage"]["completion_tokens"], 16);
  }
}

// vLLM's stop_token_ids end the answer as EOS does; min_tokens bars them (and EOS) until reached.
TEST_F(CompletionsApi, StopTokenIdsEndTheAnswerAndMinTokensDefersThem) {
  json free = post_ok("/v1/completions", completion_body(8, {{"return_token_ids", true}}));
  const std::vector<int> ids = free["choices"][0]["token_ids"];
  ASSERT_EQ(ids.size(), 8u);
  size_t at = 1;  // the first token not seen before it
  while (at < ids.size() && std::count(ids.begin(), ids.begin() + at, ids[at])) ++at;
  ASSERT_LT(at, ids.size());
  json body = completion_body(8, {{"ignore_eos", false}, {"stop_token_ids", {ids[at]}}});
  json stopped = post_ok("/v1/completions", body);
  EXPECT_EQ(stopped["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(stopped["usage"]["completion_tokens"], static_cast<int>(at) + 1);
  body["min_tokens"] = 8;
  json full = post_ok("/v1/completions", body);
  EXPECT_EQ(full["usage"]["completion_tokens"], 8);
  EXPECT_EQ(full["choices"][0]["finish_reason"], "length");
  body["min_tokens"] = 9;  // past max_tokens
  auto bad = server_->post("/v1/completions", body);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_EQ(json::parse(bad->body)["error"]["param"], "min_tokens");
}

TEST_F(CompletionsApi, ReasoningContentIsAbsentWithoutAParser) {
  json r = post_ok("/v1/chat/completions", chat_body(4));
  EXPECT_FALSE(r["choices"][0]["message"].contains("reasoning_content"));
}

TEST(ReasoningParserFlag, ForcedParserAddsReasoningContentAndKeepsStreamingEqual) {
  ServerProcess s("qwen2-tiny", {"--reasoning-parser", "deepseek-r1"});
  ASSERT_TRUE(s.ready());
  auto full = s.post("/v1/chat/completions", chat_body(12));
  ASSERT_TRUE(full);
  json r = json::parse(full->body);
  // The random model writes no <think>, so all of its text is the answer.
  EXPECT_TRUE(r["choices"][0]["message"].contains("reasoning_content"));
  EXPECT_TRUE(r["choices"][0]["message"]["reasoning_content"].is_null());
  auto stream = s.post("/v1/chat/completions", chat_body(12, {{"stream", true}}));
  ASSERT_TRUE(stream);
  std::vector<json> events = sse_events(stream->body);
  EXPECT_EQ(streamed_text(events), r["choices"][0]["message"]["content"]);
  EXPECT_EQ(streamed_text(events, "reasoning_content"), "");
}

TEST_F(CompletionsApi, ModelsAndHealth) {
  auto res = server_->client().Get("/v1/models");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  json models = json::parse(res->body);
  EXPECT_EQ(models["object"], "list");
  ASSERT_EQ(models["data"].size(), 1u);
  EXPECT_EQ(models["data"][0]["id"], "tiny");
  EXPECT_GT(models["data"][0]["max_model_len"].get<int>(), 0);
  auto one = server_->client().Get("/v1/models/tiny");
  ASSERT_TRUE(one);
  EXPECT_EQ(one->status, 200);
  auto health = server_->client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(CompletionsApi, MetricsCountRequestsAndTokens) {
  post_ok("/v1/completions", completion_body(6));
  std::string m = wait_idle(*server_);
  EXPECT_GE(metric(m, "dsinfer_requests_total{outcome=\"success\"}"), 1);
  EXPECT_GE(metric(m, "dsinfer_generation_tokens_total"), 6);
  EXPECT_GT(metric(m, "dsinfer_prompt_tokens_total"), 0);
  EXPECT_GT(metric(m, "dsinfer_kv_cache_blocks_total"), 0);
  EXPECT_GE(metric(m, "dsinfer_time_to_first_token_seconds_count"), 1);
  EXPECT_GE(metric(m, "dsinfer_time_per_output_token_seconds_count"), 1);
  EXPECT_GE(metric(m, "dsinfer_e2e_request_latency_seconds_bucket{le=\"+Inf\"}"), 1);
  EXPECT_NE(m.find("# TYPE dsinfer_time_to_first_token_seconds histogram"), std::string::npos);
  EXPECT_GE(metric(m, "dsinfer_prefix_cache_hit_rate"), 0);
}

TEST_F(CompletionsApi, ToolsReachTheChatTemplate) {
  json plain = post_ok("/v1/chat/completions", chat_body(1));
  json tools = post_ok("/v1/chat/completions",
                       chat_body(1, {{"tools", {{{"type", "function"},
                                                 {"function", {{"name", "get_weather"}, {"parameters", {{"type", "object"}}}}}}}}}));
  // The Qwen template writes the tool schemas into the system turn.
  EXPECT_GT(tools["usage"]["prompt_tokens"].get<int>(), plain["usage"]["prompt_tokens"].get<int>() + 10);
}

// A second server on a port in use fails at start instead of sharing the port's traffic.
TEST_F(CompletionsApi, ASecondServerOnTheSamePortFails) {
  const std::string log = ::testing::TempDir() + "dsinfer_second_server.log";
  pid_t pid = spawn({DSINFER_BINARY, "serve", "--model", fixture_dir("qwen2-tiny"), "--port", std::to_string(server_->port())},
                    log);
  int status = 0;
  for (int i = 0; i < 300 && waitpid(pid, &status, WNOHANG) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  if (waitpid(pid, &status, WNOHANG) == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    FAIL() << "the second server kept running";
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
}

TEST_F(CompletionsApi, LogitBiasSteersTheTokens) {
  json r = post_ok("/v1/completions", completion_body(4, {{"logit_bias", {{"1000", 100}}}, {"return_token_ids", true}}));
  EXPECT_EQ(r["choices"][0]["token_ids"], json({1000, 1000, 1000, 1000}));
  auto bad = server_->post("/v1/completions", completion_body(4, {{"logit_bias", {{"99999999", 1}}}}));
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400) << bad->body;
}

TEST_F(CompletionsApi, TokenizeCountsWhatACompletionWouldAndDetokenizeInverts) {
  json chat = post_ok("/v1/chat/completions", chat_body(1));
  json t = post_ok("/tokenize", {{"messages", chat_body(1)["messages"]}});
  EXPECT_EQ(t["count"], chat["usage"]["prompt_tokens"]);
  EXPECT_EQ(t["tokens"].size(), t["count"].get<size_t>());
  EXPECT_GT(t["max_model_len"].get<int>(), 0);
  json text = post_ok("/tokenize", {{"prompt", "The capital of France is"}});
  EXPECT_EQ(post_ok("/detokenize", {{"tokens", text["tokens"]}})["prompt"], "The capital of France is");
  auto bad = server_->post("/detokenize", {{"tokens", {-1}}});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
}

// Echo's text is the prompt's, then the completion's.
TEST_F(CompletionsApi, EchoPutsThePromptTextFirst) {
  const std::string prompt = "The capital of France is";
  auto res = server_->post("/v1/completions", {{"prompt", prompt}, {"max_tokens", 3}, {"echo", true}, {"temperature", 0}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json c = json::parse(res->body)["choices"][0];
  EXPECT_EQ(c["text"].get<std::string>().rfind(prompt, 0), 0u) << c.dump();
  EXPECT_GT(c["text"].get<std::string>().size(), prompt.size());
  EXPECT_TRUE(c["logprobs"].is_null());  // not asked for
}

// Streamed echo, as vLLM streams it: each choice's first chunk begins with the prompt's text and
// logprobs; the chunks put together are the non-streamed response, offsets included.
TEST_F(CompletionsApi, StreamedEchoEqualsTheWholeResponse) {
  for (int max_tokens : {0, 6}) {
    const json body = {{"prompt", "The capital of France is"}, {"max_tokens", max_tokens}, {"echo", true},
                       {"logprobs", 1},   {"temperature", 0},                {"n", 2}};
    const json whole = post_ok("/v1/completions", body)["choices"][0];
    std::vector<json> events = stream_with_usage("/v1/completions", body);
    ASSERT_GE(events.size(), 3u);
    json lps = {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"text_offset", json::array()}};
    std::string text;
    for (const json& e : events) {
      if (!e.is_object() || e["choices"].empty() || e["choices"][0]["index"] != 0) continue;
      const json& c = e["choices"][0];
      text += c["text"].get<std::string>();
      if (c["logprobs"].is_null()) continue;
      for (const char* f : {"tokens", "token_logprobs", "text_offset"})
        for (const json& v : c["logprobs"][f]) lps[f].push_back(v);
    }
    EXPECT_EQ(text, whole["text"]) << max_tokens;
    for (const char* f : {"tokens", "token_logprobs", "text_offset"}) EXPECT_EQ(lps[f], whole["logprobs"][f]) << f;
    EXPECT_TRUE(lps["token_logprobs"][0].is_null());
  }
}

// A chat response gives its prompt's logprobs once, beside the choices (as vLLM).
TEST_F(CompletionsApi, ChatPromptLogprobsComeOnceForTheResponse) {
  json r = post_ok("/v1/chat/completions", chat_body(2, {{"prompt_logprobs", 0}, {"n", 2}}));
  ASSERT_TRUE(r.contains("prompt_logprobs")) << r.dump();
  EXPECT_EQ(r["prompt_logprobs"].size(), r["usage"]["prompt_tokens"].get<size_t>());
  EXPECT_TRUE(r["prompt_logprobs"][0].is_null());
  EXPECT_FALSE(r["choices"][0].contains("prompt_logprobs"));
}

// The drafting server answers a 40-token completion of `prompt` with the plain server's tokens;
// returns its metrics once idle ("" when either failed).
std::string drafted_like_plain(ServerProcess& plain, ServerProcess& drafting, const std::vector<int>& prompt) {
  if (!plain.ready() || !drafting.ready()) {
    ADD_FAILURE() << "a server did not start";
    return "";
  }
  json body = completion_body(40, {{"prompt", prompt}, {"return_token_ids", true}});
  auto want = plain.post("/v1/completions", body), got = drafting.post("/v1/completions", body);
  if (!want || !got || got->status != 200) {
    ADD_FAILURE() << (got ? got->body : "no answer");
    return "";
  }
  EXPECT_EQ(json::parse(got->body)["choices"][0]["token_ids"], json::parse(want->body)["choices"][0]["token_ids"]);
  return wait_idle(drafting);
}

// A server drafting by prompt lookup answers as one that does not, and counts its drafts (the
// small vocabulary of ds2-lite-tiny makes its output repeat tokens, which drafts).
TEST(SpeculativeServer, AnswersAsWithoutDraftsAndCountsThem) {
  ServerProcess plain("ds2-lite-tiny"),
      drafting("ds2-lite-tiny", {"--num-speculative-tokens", "4", "--prompt-lookup-min", "1"});
  const std::string m = drafted_like_plain(plain, drafting, {7, 8, 9, 7, 8, 9, 7, 8});
  EXPECT_GT(metric(m, "dsinfer_spec_decode_draft_tokens_total"), 0);
  EXPECT_GE(metric(m, "dsinfer_spec_decode_accepted_tokens_total"), 0);
}

// Drafting with a V3 checkpoint's MTP layer (one that repeats the last token, so some drafts hold).
TEST(SpeculativeServer, MtpDraftsAnswerAsWithoutThem) {
  TempPath dir("serve_mtp");
  make_mtp_checkpoint("ds3-tiny", MtpWeights::HiddenOnly, dir.path());
  ServerProcess plain(dir.path().string()),
      drafting(dir.path().string(), {"--speculative-method", "mtp", "--num-speculative-tokens", "2"});
  const std::string m = drafted_like_plain(plain, drafting, {77});
  EXPECT_GT(metric(m, "dsinfer_spec_decode_draft_tokens_total"), 0);
  EXPECT_GT(metric(m, "dsinfer_spec_decode_accepted_tokens_per_position_total{position=\"1\"}"), 0);
  EXPECT_GT(metric(m, "dsinfer_spec_decode_accepted_tokens_total"), 0);
}

}  // namespace

namespace {

double log_softmax(const std::vector<float>& logits, size_t row, int vocab, int token) {
  const float* x = logits.data() + row * vocab;
  double mx = *std::max_element(x, x + vocab), sum = 0;
  for (int v = 0; v < vocab; ++v) sum += std::exp(x[v] - mx);
  return x[token] - mx - std::log(sum);
}

}  // namespace

// Scoring a prompt: ds2-lite-tiny's reference holds the logits of every position of its prompts.
class PromptScoring : public ::testing::Test {
 protected:
  static constexpr int vocab = 1024;
  PromptScoring()
      : seq(fixture_ref("ds2-lite-tiny")["sequences"][1]),
        ids(seq["input_ids"].get<std::vector<int>>()),
        ref(fixture_logits("ds2-lite-tiny", seq, vocab)) {}
  void SetUp() override { ASSERT_TRUE(server.ready()); }

  ServerProcess server{"ds2-lite-tiny"};
  const json seq;
  const std::vector<int> ids;
  const std::vector<float> ref;
};

// Completions' echo (lm-evaluation-harness scores prompts so): the prompt's text and logprobs
// before the completion's, each prompt token's from transformers' logits at the position before.
TEST_F(PromptScoring, EchoReturnsThePromptAndItsLogprobs) {
  for (int max_tokens : {0, 3}) {
    auto res = server.post("/v1/completions", {{"prompt", ids}, {"max_tokens", max_tokens}, {"echo", true},
                                               {"logprobs", 2}, {"temperature", 0}, {"ignore_eos", true}});
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const json c = json::parse(res->body)["choices"][0];
    const json& lp = c["logprobs"];
    ASSERT_EQ(lp["tokens"].size(), ids.size() + max_tokens) << res->body;
    EXPECT_TRUE(lp["token_logprobs"][0].is_null());
    EXPECT_TRUE(lp["top_logprobs"][0].is_null());
    for (size_t p = 1; p < ids.size(); ++p) {
      EXPECT_NEAR(lp["token_logprobs"][p].get<double>(), log_softmax(ref, p - 1, vocab, ids[p]), 1e-3) << p;
      EXPECT_EQ(lp["top_logprobs"][p].size(), 2u) << p;
    }
    EXPECT_EQ(c["finish_reason"], "length");
    EXPECT_EQ(c["text"], "");  // a model without a tokenizer has ids, no text
  }
  // A one-token prompt: its token, with nothing to score it by.
  auto one = server.post("/v1/completions", {{"prompt", {ids[0]}}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 1}});
  ASSERT_TRUE(one);
  ASSERT_EQ(one->status, 200) << one->body;
  const json lp = json::parse(one->body)["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 1u) << one->body;
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  auto bad = server.post("/v1/completions", {{"prompt", "x"}, {"max_tokens", 0}});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
}

// vLLM's prompt_logprobs: per completions choice (once in a chat response), null first, then each
// prompt token's logprob and rank beside the alternatives'.
TEST_F(PromptScoring, PromptLogprobsGiveEachTokensLogprobAndRank) {
  auto res = server.post("/v1/completions", {{"prompt", ids}, {"max_tokens", 2}, {"prompt_logprobs", 2}, {"temperature", 0}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json lps = json::parse(res->body)["choices"][0]["prompt_logprobs"];
  ASSERT_EQ(lps.size(), ids.size()) << res->body;
  EXPECT_TRUE(lps[0].is_null());
  for (size_t p = 1; p < ids.size(); ++p) {
    const json& at = lps[p];
    ASSERT_TRUE(at.contains(std::to_string(ids[p]))) << at.dump();
    const json& mine = at[std::to_string(ids[p])];
    const float* row = ref.data() + (p - 1) * vocab;
    const int rank = 1 + static_cast<int>(std::count_if(row, row + vocab, [&](float x) { return x > row[ids[p]]; }));
    EXPECT_NEAR(mine["logprob"].get<double>(), log_softmax(ref, p - 1, vocab, ids[p]), 1e-3) << p;
    EXPECT_EQ(mine["rank"], rank) << p;
    EXPECT_GE(at.size(), 2u);  // the alternatives (the token itself may be one)
  }
  for (const json& bad : {json{{"prompt", ids}, {"prompt_logprobs", 21}}, json{{"prompt", ids}, {"prompt_logprobs", 1}, {"stream", true}}}) {
    auto r = server.post("/v1/completions", bad);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << bad.dump();
  }
}
