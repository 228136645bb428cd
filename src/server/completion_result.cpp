#include "server/completion_result.h"

namespace dsinfer {

namespace {

nlohmann::json logprobs_json(const std::vector<TokenLogprob>& lps) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& lp : lps) out.push_back({lp.token, lp.logprob, lp.top, lp.rank});
  return out;
}

std::vector<TokenLogprob> logprobs_from_json(const nlohmann::json& j) {
  std::vector<TokenLogprob> out;
  for (const auto& lp : j)
    out.push_back({lp.at(0).get<int>(), lp.at(1).get<float>(), lp.at(2).get<std::vector<std::pair<int, float>>>(),
                   lp.size() > 3 ? lp.at(3).get<int>() : 0});
  return out;
}

}  // namespace

nlohmann::json result_to_json(const CompletionResult& r) {
  nlohmann::json calls = nlohmann::json::array();
  for (const ToolCall& c : r.tool_calls) calls.push_back({c.name, c.arguments});
  return {{"content", r.content},
          {"tool_calls", calls},
          {"reasoning", r.reasoning},
          {"prompt_ids", r.prompt_ids},
          {"output_ids", r.output_ids},
          {"logprobs", logprobs_json(r.logprobs)},
          {"prompt_logprobs", logprobs_json(r.prompt_logprobs)},
          {"finish_reason", r.finish_reason},
          {"prompt_tokens", r.prompt_tokens},
          {"completion_tokens", r.completion_tokens},
          {"cached_prompt_tokens", r.cached_prompt_tokens}};
}

CompletionResult result_from_json(const nlohmann::json& j) {
  CompletionResult r;
  r.content = j.at("content").get<std::string>();
  r.reasoning = j.at("reasoning").get<std::string>();
  for (const auto& c : j.at("tool_calls")) r.tool_calls.push_back({c.at(0).get<std::string>(), c.at(1).get<std::string>()});
  r.prompt_ids = j.at("prompt_ids").get<std::vector<int>>();
  r.output_ids = j.at("output_ids").get<std::vector<int>>();
  r.logprobs = logprobs_from_json(j.at("logprobs"));
  if (j.contains("prompt_logprobs")) r.prompt_logprobs = logprobs_from_json(j["prompt_logprobs"]);  // older entries lack it
  r.finish_reason = j.at("finish_reason").get<std::string>();
  r.prompt_tokens = j.at("prompt_tokens").get<int>();
  r.completion_tokens = j.at("completion_tokens").get<int>();
  r.cached_prompt_tokens = j.at("cached_prompt_tokens").get<int>();
  return r;
}

}  // namespace dsinfer
