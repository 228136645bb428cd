#include "server/tokenize_handler.h"

#include "server/api_error.h"
#include "server/engine_request.h"
#include "server/http_response.h"

namespace dsinfer {
namespace {

using nlohmann::json;

json body_of(const httplib::Request& req) {
  json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object())
    throw ApiError(400, "invalid_request_error", "request body must be a JSON object", "", "invalid_json");
  return body;
}

const ServedModel& loaded_model(ServerContext& ctx) {
  if (ctx.state.load() == ServerState::Loading) throw ApiError(503, "service_unavailable", "the model is still loading");
  return *ctx.model;
}

template <typename Fn>
void answer(const httplib::Request& req, httplib::Response& res, Fn fn) {
  try {
    send_json(res, 200, fn(body_of(req)));
  } catch (const ApiError& e) {
    send_error(res, e);
  }
}

}  // namespace

void handle_tokenize(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  answer(req, res, [&](const json& body) {
    const ServedModel& m = loaded_model(ctx);
    // The same prompt building as a completion: chat messages through the template, else a prompt.
    const ApiRequest r = parse_api_request(body.contains("messages") ? Endpoint::Chat : Endpoint::Completion, req.body);
    check_model_name(r.model, m);
    const std::vector<int> ids = prompt_tokens(r, m);
    return json{{"count", ids.size()}, {"max_model_len", m.engine->max_model_len()}, {"tokens", ids}};
  });
}

void handle_detokenize(ServerContext& ctx, const httplib::Request& req, httplib::Response& res) {
  answer(req, res, [&](const json& body) {
    const ServedModel& m = loaded_model(ctx);
    const auto model = body.find("model");
    check_model_name(model != body.end() && model->is_string() ? model->get<std::string>() : "", m);
    const auto tokens = body.find("tokens");
    if (tokens == body.end() || !tokens->is_array()) throw invalid_field("tokens", "must be an array of token ids");
    if (!m.tokenizer()) throw invalid_field("tokens", "model '" + m.name + "' has no tokenizer");
    const int vocab = m.tokenizer()->vocab_size();
    std::vector<int> ids;
    for (const json& t : *tokens) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= vocab)
        throw invalid_field("tokens", "token id " + t.dump() + " is outside the vocabulary (size " + std::to_string(vocab) + ")");
      ids.push_back(t.get<int>());
    }
    return json{{"prompt", m.tokenizer()->decode(ids, /*skip_special_tokens=*/false)}};
  });
}

}  // namespace dsinfer
